"""Checking the composed config before any work, and turning our errors into one line on the CLI.

``validate(cfg)`` raises :class:`ConfigError` (a ``ValueError``) whose message is one line naming
the key, the value given and what is allowed, e.g. ``data.batch_size=0: must be a positive
integer``. It checks

- values: batch size, learning rates, noise size, the iteration counts, D/G steps, the digit
  filter, the update schedule (and a few more, see ``_check_values``);
- what the loss needs from the model: a loss config may carry ``requires``, a mapping of dotted
  paths under ``model`` to the value needed (or a list of accepted values), e.g.
  ``requires: {schedule: alternating}``; a list of paths instead means "must be set";
- unknown keys: top-level keys against an allow-list (``RUN_KEYS``, ``GROUPS`` and
  ``EXTRA_TOP_LEVEL_KEYS``, which new features extend), and every node with a ``_target_``
  (data, model, loss, trainer, each callback and logger, and the nodes nested in them) against
  the signature of what it builds, minus the arguments ``gan.train`` passes itself. Hydra already
  rejects a plain ``model.d_step=2`` (struct mode); this catches ``+model.d_step=2`` and
  suggests the close match.

``main_guard`` wraps the Hydra main: our own errors (``USER_ERRORS``) end a run with
``error: <message>`` on stderr and a non-zero exit status, without a traceback unless
``HYDRA_FULL_ERROR=1``; in ``-m`` mode a failing job is logged and recorded instead
(:mod:`gan.sweep`), so the other jobs still run and the sweep ends non-zero.
"""

from __future__ import annotations

import difflib
import functools
import importlib
import inspect
import logging
import os
import sys
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf

from gan.data import DATASETS, DataNotFoundError
from gan.idx import DataFileError
from gan.module import NONFINITE_POLICIES, SCHEDULES, NonFiniteError
from gan.runs import RunError

log = logging.getLogger(__name__)


class ConfigError(ValueError):
    """A composed config that asks for something the template cannot do."""


# ---------------------------------------------------------------------------------- allow-lists
# Top-level keys the template reads itself.
RUN_KEYS = ("seed", "iterations", "checkpoint_every", "sample_every", "log_every", "ckpt_path", "optimized_metric")
# The config groups composed by conf/train.yaml that land as top-level nodes.
GROUPS = ("data", "model", "loss", "trainer", "logger", "callbacks", "paths")
# Top-level keys added by other features: a feature that reads a new top-level key adds it here.
EXTRA_TOP_LEVEL_KEYS: tuple[str, ...] = ("eval_every", "eval_samples", "on_nonfinite")

# Groups whose node has a fixed builder, used when the node names no ``_target_``.
DEFAULT_TARGETS = {
    "data": "gan.data.MNISTDataModule",
    "model": "gan.module.GAN",
    "loss": "gan.losses.AdversarialLoss",
    "trainer": "pytorch_lightning.Trainer",
}
# Constructor arguments gan.train passes itself (so a config value would be silently overridden),
# with where the value comes from instead.
SET_BY_TRAIN = {
    "model": {"loss": "the loss group", "max_iterations": "iterations", "log_every": "log_every",
              "fixed_noise_seed": "seed", "on_nonfinite": "on_nonfinite"},
    "trainer": {"callbacks": "the callbacks group", "logger": "the logger group"},
}
# Groups holding named entries, each a node with a ``_target_`` or null (null switches it off).
ENTRY_GROUPS = ("callbacks", "logger")
# Hydra's own keys in a node it instantiates.
HYDRA_KEYS = frozenset({"_target_", "_partial_", "_convert_", "_recursive_", "_args_"})
# Listing the allowed keys in a message only when there are at most this many.
MAX_LISTED = 25

_ABSENT = object()


# ---------------------------------------------------------------------------------- validation
def validate(cfg: DictConfig) -> None:
    """Raise :class:`ConfigError` (one line: key, value, what is allowed) for a config the
    template cannot run; return None for a good one."""
    _check_top_level_keys(cfg)
    _check_target_keys(cfg)
    _check_values(cfg)
    _check_loss_requirements(cfg)


def _check_top_level_keys(cfg: DictConfig) -> None:
    allowed = set(RUN_KEYS) | set(GROUPS) | set(EXTRA_TOP_LEVEL_KEYS) | {"hydra"}
    for key in cfg.keys():
        if key not in allowed:
            _unknown_key(cfg, str(key), "", sorted(allowed - {"hydra"}), "the top level")


def _check_target_keys(cfg: DictConfig) -> None:
    for group in GROUPS:
        node = cfg.get(group)
        if not isinstance(node, DictConfig):
            continue
        if group in ENTRY_GROUPS:
            for name in node.keys():
                entry = _raw(node, name)
                where = f"{group}.{name}"
                if entry is None:
                    continue
                if not isinstance(entry, DictConfig) or "_target_" not in entry:
                    raise ConfigError(
                        f"{where}={_fmt(entry)}: has no _target_, so nothing builds it; give it a "
                        f"_target_ or set {where}=null to switch it off"
                    )
                _check_node(entry, where)
        elif group in DEFAULT_TARGETS:
            _check_node(node, group, DEFAULT_TARGETS[group], SET_BY_TRAIN.get(group, {}))


def _check_node(
    node: DictConfig, where: str, default_target: str | None = None, set_by_train: Mapping[str, str] | None = None
) -> None:
    """Check ``node``'s keys against the signature of its ``_target_``, then its nested nodes."""
    set_by_train = set_by_train or {}
    target = node["_target_"] if "_target_" in node else default_target
    if target is not None:
        accepted = _accepted_arguments(str(target), where)
        if accepted is not None:
            for key in node.keys():
                key = str(key)
                if key in HYDRA_KEYS:
                    continue
                if key in set_by_train:
                    raise ConfigError(
                        f"{_path(where, key)}={_fmt(_raw(node, key))}: not read from here; gan.train "
                        f"sets it from {set_by_train[key]}"
                    )
                if key not in accepted:
                    shown = sorted(accepted - set(set_by_train))
                    what = f"{where} takes: {', '.join(shown)}" if len(shown) <= MAX_LISTED else f"not an argument of {target}"
                    _unknown_key(node, key, where, shown, what)
    for key in node.keys():
        child = _raw(node, key)
        if isinstance(child, DictConfig) and "_target_" in child:
            _check_node(child, _path(where, str(key)))


def _accepted_arguments(target: str, where: str) -> set[str] | None:
    """The keyword arguments ``target`` accepts, or None if it takes any (``**kwargs``)."""
    built = _import(target, where)
    try:
        params = inspect.signature(built).parameters.values()
    except (TypeError, ValueError):  # a builtin without a signature: nothing to compare against
        return None
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        return None
    return {p.name for p in params if p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)}


def _import(target: str, where: str) -> Any:
    """The object a dotted ``_target_`` names (the longest importable module, then attributes)."""
    parts = target.split(".")
    if not all(part.isidentifier() for part in parts):
        raise ConfigError(f"{where}._target_={_fmt(target)}: must be a dotted import path, e.g. gan.nets.mlp.MLPGenerator")
    for cut in range(len(parts), 0, -1):
        module_name = ".".join(parts[:cut])
        try:
            obj = importlib.import_module(module_name)
        except ModuleNotFoundError as err:
            if err.name is not None and not module_name.startswith(err.name):
                raise  # the module exists but one of its own imports is missing: a real error
            continue
        for i, attr in enumerate(parts[cut:], start=cut):
            if not hasattr(obj, attr):
                raise ConfigError(
                    f"{where}._target_={target}: cannot be imported ({'.'.join(parts[:i])} has no {attr!r})"
                ) from None
            obj = getattr(obj, attr)
        return obj
    raise ConfigError(f"{where}._target_={target}: cannot be imported (no module {parts[0]!r})")


def _unknown_key(node: DictConfig, key: str, where: str, allowed: Iterable[str], what: str) -> None:
    allowed = list(allowed)
    close = difflib.get_close_matches(key, allowed, n=1)
    given = f"{_path(where, key)}={_fmt(_raw(node, key))}"
    if close:
        raise ConfigError(f"{given}: unknown key; did you mean {_path(where, close[0])}?")
    if what == "the top level":
        what = f"the top level takes: {', '.join(allowed)}"
    raise ConfigError(f"{given}: unknown key; {what}")


def _check_values(cfg: DictConfig) -> None:
    _positive_int(cfg, "data.batch_size")
    _positive_number(cfg, "model.optimizer_g.lr")
    _positive_number(cfg, "model.optimizer_d.lr")
    _positive_int(cfg, "model.noise.dim")
    _positive_int(cfg, "iterations", nullable=True)
    for key in ("checkpoint_every", "sample_every", "log_every"):
        _positive_int(cfg, key)
    for key in ("model.d_steps", "model.g_steps"):
        value = _select(cfg, key)
        if value is not _ABSENT and not (_is_int(value) and value >= 1):
            raise ConfigError(f"{key}={_fmt(value)}: must be an integer >= 1")

    digits = _select(cfg, "data.digits")
    if digits is not _ABSENT and digits is not None:
        ok = isinstance(digits, (ListConfig, list, tuple)) and len(digits) > 0
        ok = ok and all(_is_int(d) and 0 <= d <= 9 for d in digits)
        if not ok:
            raise ConfigError(f"data.digits={_fmt(digits)}: must be null (all ten) or a non-empty list of digits 0-9, e.g. [7]")

    _one_of(cfg, "model.schedule", SCHEDULES)
    _one_of(cfg, "data.dataset", DATASETS)
    _one_of(cfg, "model.on_nonfinite", NONFINITE_POLICIES)
    _one_of(cfg, "on_nonfinite", NONFINITE_POLICIES)


def _check_loss_requirements(cfg: DictConfig) -> None:
    """What the loss config declares under ``requires``, checked against ``cfg.model``."""
    loss, model = cfg.get("loss"), cfg.get("model")
    if not isinstance(loss, DictConfig) or not isinstance(model, DictConfig):
        return
    name = loss.get("name") or "this loss"
    requires = loss.get("requires")
    if requires is None:
        requires = {}
    elif isinstance(requires, ListConfig):
        requires = {str(k): _ABSENT for k in requires}  # only "must be set"
    elif isinstance(requires, DictConfig):
        requires = {str(k): requires[k] for k in requires.keys()}
    else:
        raise ConfigError(
            f"loss.requires={_fmt(requires)}: must be a mapping of model settings to the values "
            "needed, e.g. {schedule: alternating}, or a list of model settings that must be set"
        )
    # A D regulariser (gradient penalty) is applied by the alternating D phase only.
    if loss.get("penalty") is not None and "schedule" not in requires:
        requires["schedule"] = "alternating"

    for key, wanted in requires.items():
        have = _select(model, key)
        if wanted is _ABSENT:
            if have is _ABSENT or have is None:
                raise ConfigError(f"model.{key}={_fmt(None if have is _ABSENT else have)}: loss={name} needs model.{key} to be set")
            continue
        accepted = list(wanted) if isinstance(wanted, (ListConfig, list, tuple)) else [wanted]
        if have is _ABSENT or have not in accepted:
            needed = f"={_fmt(accepted[0])}" if len(accepted) == 1 else f" to be one of {', '.join(_fmt(a) for a in accepted)}"
            given = f"model.{key} is not set" if have is _ABSENT else f"model.{key}={_fmt(have)}"
            raise ConfigError(f"{given}: loss={name} needs model.{key}{needed}")


# ---------------------------------------------------------------------------------- small checks
def _select(cfg: DictConfig, key: str) -> Any:
    return OmegaConf.select(cfg, key, default=_ABSENT)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _positive_int(cfg: DictConfig, key: str, nullable: bool = False) -> None:
    value = _select(cfg, key)
    if value is _ABSENT or (nullable and value is None):
        return
    if not (_is_int(value) and value > 0):
        raise ConfigError(f"{key}={_fmt(value)}: must be a positive integer" + (" or null" if nullable else ""))


def _positive_number(cfg: DictConfig, key: str) -> None:
    value = _select(cfg, key)
    if value is _ABSENT:
        return
    if not (isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0 and value != float("inf")):
        raise ConfigError(f"{key}={_fmt(value)}: must be a positive number")


def _one_of(cfg: DictConfig, key: str, choices: Iterable[str]) -> None:
    value = _select(cfg, key)
    choices = tuple(choices)
    if value is not _ABSENT and value not in choices:
        raise ConfigError(f"{key}={_fmt(value)}: must be one of {', '.join(choices)}")


def _path(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def _raw(node: DictConfig, key: Any) -> Any:
    """``node[key]``, or its unresolved form when an interpolation cannot be resolved here."""
    try:
        return node[key]
    except Exception:
        return OmegaConf.to_container(node, resolve=False).get(key)


def _fmt(value: Any) -> str:
    """A value as one would write it on the command line."""
    if isinstance(value, (DictConfig, ListConfig)):
        try:
            value = OmegaConf.to_container(value, resolve=True)
        except Exception:
            value = OmegaConf.to_container(value, resolve=False)
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{k}: {_fmt(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_fmt(v) for v in value) + "]"
    if isinstance(value, str):
        return repr(value) if value == "" or value.strip() != value else value
    return str(value)


# ---------------------------------------------------------------------------------- the CLI guard
# Errors that are the user's to fix: one line, no traceback. Other features may add theirs.
USER_ERRORS: tuple[type[BaseException], ...] = (ConfigError, RunError, DataFileError, DataNotFoundError, NonFiniteError, ValueError)


def full_error() -> bool:
    """Hydra's switch for full tracebacks."""
    return os.environ.get("HYDRA_FULL_ERROR", "") not in ("", "0")


def error_line(err: BaseException) -> str:
    """One line for ``err``: its message (ours are one line already), or its type for an empty one."""
    text = " ".join(str(err).split()) if str(err).strip() else ""
    return text if isinstance(err, USER_ERRORS) and text else f"{type(err).__name__}: {text}".rstrip(": ")


def main_guard(task: Callable[[DictConfig], Any]) -> Callable[[DictConfig], Any]:
    """Decorate the Hydra main (below ``@hydra.main``) so that

    - a single run that raises one of ``USER_ERRORS`` exits with ``error: <message>`` on stderr
      and status 1, no traceback (with ``HYDRA_FULL_ERROR=1`` the error propagates unchanged);
      any other exception propagates (it is a bug: Hydra prints its traceback);
    - a job of a ``-m`` sweep that raises anything is logged (with its traceback if it is not
      one of ours, or if ``HYDRA_FULL_ERROR=1``), recorded under ``<sweep dir>/failures/`` and
      returns None, so the sweep goes on; :class:`gan.sweep.SweepFailures` lists the failures
      at the end and exits non-zero.
    """

    @functools.wraps(task)
    def guarded(cfg: DictConfig) -> Any:
        try:
            return task(cfg)
        except Exception as err:
            from gan.sweep import in_multirun, record_failure

            if in_multirun():
                line = error_line(err)
                if isinstance(err, USER_ERRORS) and not full_error():
                    log.error("job failed: %s", line)
                else:
                    log.exception("job failed: %s", line)
                record_failure(line, err)
                return None
            if isinstance(err, USER_ERRORS) and not full_error():
                sys.exit(f"error: {error_line(err)}")
            raise

    return guarded
