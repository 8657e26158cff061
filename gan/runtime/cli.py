"""Arguments of the small command lines (``gan.sample``, ``gan.evaluate``): ``key=value`` words,
checked before any work starts, each bad one refused with a single line that names it.

:class:`UsageError` is a wrong command line (exit status 2, the usage printed after the line); the
checks here raise it. Hydra's own command line (``gan.train``) is checked by :mod:`gan.runtime.config`.
"""

from __future__ import annotations

import contextlib
import difflib
import os
import sys
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from gan.runtime.files import file_in_the_way
from gan.runtime.values import ConfigError


# the largest seed= a torch generator takes (torch.Generator.manual_seed)
MAX_SEED = 2**64 - 1


class UsageError(ValueError):
    """A command line the tool cannot run as written (status 2)."""


def run_tool(argv: list[str], check: Callable[[list[str]], Any], work: Callable[[Any], None], usage: str,
             refused: tuple[type[BaseException], ...]) -> int:
    """A small tool's main: ``check(argv)`` turns the command line into its arguments, refusing a
    wrong one (``error:`` and ``usage`` on stderr, status 2) before any work; ``work(args)`` does
    the job, and an error of ``refused`` (the user's to fix) is one ``error:`` line, status 1."""
    try:
        args = check(argv)
    except (UsageError, ConfigError) as err:
        print(f"error: {err}\n{usage}", file=sys.stderr)
        return 2
    try:
        work(args)
    except refused as err:
        print(f"error: {' '.join(str(err).split())}", file=sys.stderr)
        return 1
    return 0


def parse_args(argv: list[str], keys: Iterable[str]) -> DictConfig:
    """``key=value`` words as a config; an unknown key is refused with the nearest known one."""
    try:
        args = OmegaConf.from_dotlist(list(argv))
    except OmegaConfBaseException as err:
        raise UsageError(f"cannot read the arguments {' '.join(argv)!r}: write them as key=value ({err})") from None
    known = sorted(keys)
    for key in args:
        if key not in known:
            near = difflib.get_close_matches(str(key), known, n=1, cutoff=0.5)
            hint = f"did you mean {near[0]}=?" if near else f"known: {', '.join(known)}"
            raise UsageError(f"unknown argument {key}={args[key]}: {hint}")
    return args


def whole_number(args: DictConfig, key: str, default: int | None, least: int | None = None,
                 most: int | None = None) -> int | None:
    """``args[key]`` as an int (``default`` when absent), from ``least`` to ``most``; else one line naming it."""
    value = args.get(key, default)
    if value is None:
        return None
    if isinstance(value, bool) or not (isinstance(value, int) or (isinstance(value, str) and value.strip().lstrip("-").isdigit())):
        raise UsageError(f"{key}={value} is not a whole number")
    value = int(value)
    if least is not None and value < least:
        raise UsageError(f"{key}={value} must be at least {least}")
    if most is not None and value > most:
        raise UsageError(f"{key}={value} must be at most {most}")
    return value


def device_arg(args: DictConfig, default: str = "cpu") -> str:
    """``device=``: ``cpu``, or ``cuda``/``cuda:N`` where torch sees that GPU."""
    import torch  # here, not at the top: the tools that take no device= start without it

    device = str(args.get("device", default))
    try:
        parsed = torch.device(device)
    except RuntimeError:
        raise UsageError(f"device={device} is not a device: use cpu, cuda or cuda:N") from None
    if parsed.type == "cuda":
        if not torch.cuda.is_available():
            raise UsageError(f"device={device}: torch sees no CUDA GPU on this machine (use device=cpu)")
        if parsed.index is not None and parsed.index >= torch.cuda.device_count():
            raise UsageError(f"device={device}: this machine has {torch.cuda.device_count()} CUDA GPU(s)")
    elif parsed.type != "cpu":
        raise UsageError(f"device={device}: the tools run on cpu or cuda")
    return device


def writable_output(key: str, value: str, suffixes: tuple[str, ...]) -> Path:
    """Check now, before any work, that ``value`` has one of ``suffixes`` and that a file can be
    written there (its folder exists or can be made, and takes a new file). Folders made for the
    check are removed again: the writer makes them when it writes, so a run refused later leaves none."""
    path = Path(str(value)).expanduser()
    if path.suffix not in suffixes:
        raise UsageError(f"{key}={value} must end in {' or '.join(suffixes)}")
    if path.is_dir():
        raise UsageError(f"{key}={value} is a folder; name a file in it")
    folder = path.parent
    blocker = file_in_the_way(folder)
    if blocker is not None:
        raise UsageError(f"{key}={value} cannot be written: {blocker} is a file, not a folder")
    made = [p for p in (folder, *folder.parents) if not p.exists()]
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=folder, prefix=f".{path.name}.probe-")
        os.close(fd)
        os.unlink(probe)
    except OSError as err:
        raise UsageError(f"{key}={value} cannot be written: {err.strerror or err} ({folder})") from None
    finally:
        for new in made:  # deepest first
            with contextlib.suppress(OSError):
                new.rmdir()
    return path
