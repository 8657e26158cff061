"""Run folders: the files written beside the checkpoints so that a run can be rebuilt and read, the
lock that keeps one writer per folder, and the console log kept in the run's own folder."""

from __future__ import annotations

import json
import logging
import os
import platform
import socket
import sys
import time
from importlib import metadata
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from gan.runtime.errors import RunError
from gan.runtime.files import file_in_the_way, write_atomically

log = logging.getLogger(__name__)

CONFIG_FILE = "config.yaml"
METRICS_FILE = "metrics.json"  # how the run ended and its figures (gan.callbacks.report)
# a run's status in METRICS_FILE: its budget reached; stopped before it (a signal, a trainer limit:
# it can be resumed); ended by an error. Only finished runs are results.
FINISHED, INTERRUPTED, FAILED = "finished", "interrupted", "failed"
VERSIONS_FILE = "versions.json"
PARENT_FILE = "parent.json"  # a run resumed from another run's checkpoint: where it came from
PACKAGES = ("torch", "torchvision", "pytorch-lightning", "hydra-core", "omegaconf", "torchmetrics", "tensorboard", "numpy")


def flatten(node: Any, prefix: str = "") -> dict[str, Any]:
    """A run's resolved config (nested dicts) as ``{"a.b.c": value}``, its keys as on the command
    line; None, lists and empty sections are leaves."""
    if isinstance(node, Mapping) and node:
        out: dict[str, Any] = {}
        for key, value in node.items():
            out.update(flatten(value, f"{prefix}.{key}" if prefix else str(key)))
        return out
    return {prefix: node} if prefix else {}


def package_versions() -> dict[str, str]:
    versions = {"python": sys.version.split()[0], "platform": platform.platform()}
    for name in (*PACKAGES, "gan"):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return versions


def write_run_files(run_dir: Path, cfg: DictConfig, resumed_at: int | None) -> None:
    """Save the resolved config (and, for a resume, the resumed one beside it) and package versions."""
    run_dir.mkdir(parents=True, exist_ok=True)
    name = CONFIG_FILE if resumed_at is None else f"config.resume-{resumed_at}.yaml"
    write_atomically(run_dir / name, lambda p: p.write_text(OmegaConf.to_yaml(cfg, resolve=True)))
    write_atomically(run_dir / VERSIONS_FILE, lambda p: p.write_text(json.dumps(package_versions(), indent=2) + "\n"))


def write_parent(run_dir: Path, checkpoint: Path, parent_run: Path | None, iteration: int) -> None:
    """Record, in a run resumed from another run's checkpoint, the checkpoint, its run (None for a
    file outside any run folder) and its iteration."""
    record = {"checkpoint": str(checkpoint.resolve()), "run": str(parent_run.resolve()) if parent_run else None,
              "iteration": int(iteration)}
    write_atomically(run_dir / PARENT_FILE, lambda p: p.write_text(json.dumps(record, indent=2) + "\n"))


# ---------------------------------------------------------------------------------- one writer
LOCK_FILE = ".lock"


def _process_start(pid: int) -> str | None:
    """The start time of process ``pid`` (Linux: field 22 of /proc/<pid>/stat), so a lock whose pid
    was reused by a later process is told apart from a live one; None where that cannot be read."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[-1].split()[19]


def _alive(pid: int, start: str | None) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, owned by another user
    now = _process_start(pid)
    return start is None or now is None or now == start


def lock_owner(run_dir: str | Path) -> dict | None:
    """The owner named in ``<run_dir>/.lock`` (pid, host, start, since) while it may still write the
    run: a live process on this host, or any process on another host (which cannot be checked from
    here; :class:`RunLock` refuses those too). None without a lock, and for a lock that the next
    writer would take over (its process no longer runs, or the file is unreadable)."""
    try:
        owner = json.loads((Path(run_dir) / LOCK_FILE).read_text())
        pid, host = int(owner["pid"]), str(owner["host"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return owner if host != socket.gethostname() or _alive(pid, owner.get("start")) else None


class RunLock:
    """One writer per run folder: ``<run>/.lock``, created exclusively, names the process that
    writes the run (pid, host, start). A second run into the folder is refused with one line; a
    lock left by a process that no longer runs (killed) is taken over, and the log says so."""

    def __init__(self, run_dir: str | Path) -> None:
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / LOCK_FILE
        self.held = False
        self.made_dir = False

    def acquire(self) -> None:
        if not self.run_dir.exists():
            self.run_dir.mkdir(parents=True)
            self.made_dir = True
        mine = {"pid": os.getpid(), "host": socket.gethostname(), "start": _process_start(os.getpid()),
                "since": time.strftime("%Y-%m-%d %H:%M:%S")}
        for _ in range(2):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                self._take_over_if_stale()
                continue
            with os.fdopen(fd, "w") as f:
                json.dump(mine, f)
            self.held = True
            return
        raise RunError(f"{self.run_dir} is being written by another run that started at the same moment; "
                       "choose another folder with paths.output_dir=...")

    def check_free(self) -> None:
        """Refuse now, naming the other process, if a live run holds the folder (a stale lock is
        left for :meth:`acquire` to take over), and a folder that is a file or lies under one."""
        blocker = file_in_the_way(self.run_dir)
        if blocker is not None:
            raise RunError(f"{self.run_dir} cannot hold a run: {blocker} is a file, not a folder; "
                           "choose a folder with paths.output_dir=...")
        if self.path.exists():
            self._take_over_if_stale(dry_run=True)

    def _take_over_if_stale(self, dry_run: bool = False) -> None:
        try:
            owner = json.loads(self.path.read_text())
            pid, host, start = int(owner["pid"]), str(owner["host"]), owner.get("start")
        except (OSError, ValueError, KeyError, TypeError):
            owner, pid, host, start = None, None, None, None
        if owner is not None and host != socket.gethostname():
            raise RunError(f"{self.run_dir} is locked by process {pid} on host {host} (since {owner.get('since')}); "
                           f"if that run is over, delete {self.path}; else choose another folder with paths.output_dir=...")
        if owner is not None and _alive(pid, start):
            raise RunError(f"{self.run_dir} is being written by another run (process {pid}, since "
                           f"{owner.get('since')}); wait for it to end, or choose another folder with paths.output_dir=...")
        if dry_run:
            return
        who = f"process {pid}, which no longer runs" if pid is not None else "an unreadable lock file"
        log.warning("taking over the lock of %s: it was left by %s", self.run_dir, who)
        self.path.unlink(missing_ok=True)

    def release(self) -> None:
        if self.held:
            self.path.unlink(missing_ok=True)
            self.held = False
        if self.made_dir and self.run_dir.is_dir() and not any(self.run_dir.iterdir()):
            self.run_dir.rmdir()  # a refused run leaves no empty folder behind

    def __enter__(self) -> RunLock:  # noqa: PYI034
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


# ---------------------------------------------------------------------------------- Hydra's record
def write_hydra_record(run_dir: Path) -> None:
    """Hydra's own record of the run (``.hydra/hydra.yaml``, ``.hydra/overrides.yaml``; the composed
    config is ``config.yaml`` beside it), written by the run once its folder is its own: Hydra's ``output_subdir`` is off
    (conf/hydra/default.yaml), so a refused run leaves an existing run's record untouched."""
    if not HydraConfig.initialized():
        return
    hydra_cfg = HydraConfig.get()
    folder = run_dir / ".hydra"
    task = OmegaConf.to_container(hydra_cfg.overrides.task, resolve=False)
    write_atomically(folder / "hydra.yaml", lambda p: p.write_text(OmegaConf.to_yaml({"hydra": hydra_cfg})))
    write_atomically(folder / "overrides.yaml", lambda p: p.write_text(OmegaConf.to_yaml(task)))


def move_log_file(run_dir: Path, hydra_dir: str | Path | None = None, name: str = "train.log") -> None:
    """Point the console log's file, ``<hydra_dir>/<name>`` (Hydra's fresh folder; default: this
    Hydra job's), at ``<run_dir>/<name>`` when the run writes elsewhere (a resume continues its run's
    folder): what was logged so far is appended there, and Hydra's folder, left empty, is removed.
    No other handler or file is touched."""
    if hydra_dir is None:
        if not HydraConfig.initialized():
            return
        hydra_dir = HydraConfig.get().runtime.output_dir
    source = (Path(hydra_dir) / name).resolve()
    target = (run_dir / name).resolve()
    if source == target:
        return
    for handler in logging.getLogger().handlers:
        if not isinstance(handler, logging.FileHandler) or Path(handler.baseFilename).resolve() != source:
            continue
        handler.acquire()
        try:
            handler.close()
            target.parent.mkdir(parents=True, exist_ok=True)
            with open(target, "a") as out:
                if source.is_file():
                    out.write(source.read_text())
            handler.baseFilename, handler.mode = str(target), "a"
            handler.stream = handler._open()
        finally:
            handler.release()
        source.unlink(missing_ok=True)
        if source.parent.is_dir() and not any(source.parent.iterdir()):
            source.parent.rmdir()
