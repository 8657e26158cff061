"""Checks of a composed config's *keys* before anything is built.

The values are checked where they are used: each constructor (the data module, the GAN, the noise
prior, the callbacks) raises :class:`gan.runtime.errors.ConfigError` naming its key, with the helpers
of :mod:`gan.runtime.values` (re-exported here), and :func:`gan.runtime.build.instantiate` lets that
error through unwrapped. What is left here is what no constructor can see:

- unknown keys, against the signature of the node's ``_target_`` (with "did you mean"), and against
  the keys of the root config ``conf/train.yaml`` at the top level: a new top-level setting is
  declared there, once, and reaches its users by interpolation (``${iterations}``);
- keys gan.train sets itself (``trainer.callbacks`` and ``trainer.logger``, from their groups);
- what a loss declares it ``requires`` of the model config;
- learning rates, which torch checks only inside ``fit``.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf

from gan.runtime.errors import ConfigError
# the value checks need no config library (the networks import them); re-exported here beside the key checks
from gan.runtime.values import boolean, fmt, is_int, one_of, positive_int, weight  # noqa: F401

# The root config: its keys (and the groups of its defaults list) are the top level's allowed keys.
ROOT_CONFIG = Path(__file__).resolve().parents[2] / "conf" / "train.yaml"
# Groups holding named entries, each a node with a ``_target_`` or null (null switches it off).
ENTRY_GROUPS = ("callbacks", "logger")
# Constructor arguments gan.train passes itself, with where the value comes from instead.
SET_BY_TRAIN = {"trainer": {"callbacks": "the callbacks group", "logger": "the logger group"}}
# Hydra's own keys in a node it instantiates.
HYDRA_KEYS = frozenset({"_target_", "_partial_", "_convert_", "_recursive_", "_args_"})
# Listing the allowed keys in a message only when there are at most this many.
MAX_LISTED = 30

_ABSENT = object()
# iterations=auto: gan.train fixes the count at start-up from the measured rate (gan/runtime/budget.py)
AUTO_ITERATIONS = "auto"


# ---------------------------------------------------------------------------------- validation
def check_group_choices(argv: Iterable[str], conf_dir: Path = ROOT_CONFIG.parent) -> None:
    """Refuse a ``group=option`` word of the command line whose option ``conf/<group>/`` lacks
    (``loss=hing``), naming the nearest one: Hydra would fail on it while composing, in many
    lines, before anything of the template runs. Values of a sweep (``model=mlp,dcgan``) are each
    checked; sweeper expressions (``choice(...)``), ``null`` and nested groups (``hydra/launcher``)
    are left to Hydra, and so is everything when the command line adds config folders."""
    argv = list(argv)
    if any(w.startswith(("--config-dir", "-cd", "--config-path", "-cp", "hydra.searchpath")) for w in argv):
        return
    for word in argv:
        if word.startswith("-") or "=" not in word:
            continue
        key, value = word.split("=", 1)
        group = key.lstrip("+~").split("@", 1)[0]
        folder = conf_dir / group
        if not group or "/" in group or "." in group or not folder.is_dir() or "(" in value:
            continue
        options = sorted(p.stem for p in folder.glob("*.yaml"))
        for option in (o.strip() for o in value.split(",")):
            if option in ("", "null") or option in options:
                continue
            near = difflib.get_close_matches(option, options, n=1, cutoff=0.5)
            hint = f"did you mean {group}={near[0]}? " if near else ""
            raise ConfigError(f"{group}={option}: conf/{group}/ has no such option; {hint}(options: {', '.join(options)})")


def validate(cfg: DictConfig) -> None:
    """Raise :class:`ConfigError` (one line: key, value, what is allowed) for a config whose keys
    the template cannot run; return None for a good one. The values are the constructors' to check."""
    _check_top_level_keys(cfg)
    _check_target_keys(cfg)
    _check_values(cfg)
    _check_loss_requirements(cfg)


def top_level_keys() -> list[str]:
    """The keys of the root config and the groups of its defaults list (``hydra`` aside)."""
    root = OmegaConf.load(ROOT_CONFIG)
    groups = []
    for entry in root.get("defaults", []):
        if isinstance(entry, (DictConfig, Mapping)):
            groups += [str(k).split("@")[0].split("/")[-1] for k in entry.keys()]
    keys = [str(k) for k in root.keys() if k != "defaults"] + groups
    return sorted(set(keys) - {"hydra", "_self_"})


def _check_top_level_keys(cfg: DictConfig) -> None:
    allowed = top_level_keys()
    for key in cfg.keys():
        if key != "hydra" and key not in allowed:
            _unknown_key(cfg, str(key), "", allowed, "the top level")


def _check_target_keys(cfg: DictConfig) -> None:
    for group in cfg.keys():
        node = cfg.get(group)
        if group == "hydra" or not isinstance(node, DictConfig):
            continue
        if group in ENTRY_GROUPS:
            for name in node.keys():
                entry = _raw(node, name)
                where = f"{group}.{name}"
                if entry is None:
                    continue
                if not isinstance(entry, DictConfig) or "_target_" not in entry:
                    raise ConfigError(
                        f"{where}={fmt(entry)}: has no _target_, so nothing builds it; give it a "
                        f"_target_ or set {where}=null to switch it off"
                    )
                _check_node(entry, where)
        elif "_target_" in node:
            _check_node(node, str(group), SET_BY_TRAIN.get(str(group), {}))


def _check_node(node: DictConfig, where: str, set_by_train: Mapping[str, str] | None = None) -> None:
    """Check ``node``'s keys against the signature of its ``_target_``, then its nested nodes."""
    set_by_train = set_by_train or {}
    target = node["_target_"]
    accepted = _accepted_arguments(str(target), where)
    if accepted is not None:
        for key in node.keys():
            key = str(key)
            if key in HYDRA_KEYS:
                continue
            if key in set_by_train:
                raise ConfigError(
                    f"{_path(where, key)}={fmt(_raw(node, key))}: not read from here; gan.train "
                    f"sets it from {set_by_train[key]}"
                )
            if key not in accepted:
                shown = sorted(accepted - set(set_by_train))
                what = f"{where} takes: {', '.join(shown)}" if len(shown) <= MAX_LISTED else f"not an argument of {target}"
                _unknown_key(node, key, where, shown, what, _grouped_keys(node))
    for key in node.keys():
        if OmegaConf.is_interpolation(node, str(key)):  # a node checked where it is defined (model.loss: ${loss})
            continue
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
        raise ConfigError(f"{where}._target_={fmt(target)}: must be a dotted import path, e.g. gan.nets.mlp.MLPGenerator")
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


def _grouped_keys(node: DictConfig) -> dict[str, str]:
    """The keys of ``node``'s grouped settings (child nodes with a ``_target_``, e.g. ``model.updates``),
    each to its path from ``node``: where a key that moved into a group is now found."""
    grouped = {}
    for name in node.keys():
        child = None if OmegaConf.is_interpolation(node, str(name)) else _raw(node, name)
        if isinstance(child, DictConfig) and "_target_" in child:
            grouped.update({str(k): f"{name}.{k}" for k in child.keys() if str(k) not in HYDRA_KEYS})
    return grouped


def _unknown_key(node: DictConfig, key: str, where: str, allowed: Iterable[str], what: str,
                 grouped: Mapping[str, str] | None = None) -> None:
    allowed, grouped = list(allowed), dict(grouped or {})
    close = difflib.get_close_matches(key, allowed, n=1)
    given = f"{_path(where, key)}={fmt(_raw(node, key))}"
    if not close:
        close = [grouped[k] for k in difflib.get_close_matches(key, list(grouped), n=1)]
    if close:
        raise ConfigError(f"{given}: unknown key; did you mean {_path(where, close[0])}?")
    if what == "the top level":
        what = f"the top level takes: {', '.join(allowed)}"
    raise ConfigError(f"{given}: unknown key; {what}")


def _check_values(cfg: DictConfig) -> None:
    """Values no constructor sees before training starts (torch checks a learning rate only when
    ``configure_optimizers`` builds the optimizer, inside ``fit``)."""
    # run-level counts are checked here even where no callback reads them (evaluation off, say)
    for key in ("iterations", "checkpoint_every", "sample_every", "eval_every", "eval_points", "eval_samples",
                "eval_final_samples", "log_every"):
        value = _select(cfg, key)
        if key == "iterations" and value == AUTO_ITERATIONS:
            continue  # fixed at start-up from the measured rate (gan/runtime/budget.py)
        if value is not _ABSENT:
            positive_int(key, value, nullable=key in ("iterations", "eval_every", "eval_final_samples"))
    seed = _select(cfg, "seed")
    if seed not in (_ABSENT, None) and not (is_int(seed) and 0 <= int(seed) < 2**32):
        raise ConfigError(f"seed={fmt(seed)}: must be a whole number from 0 to 2**32-1, or null for no seeding")
    for key in ("model.optimizer_g.lr", "model.optimizer_d.lr"):
        value = _select(cfg, key)
        if value is not _ABSENT and not (_positive(value) and value < float("inf")):
            raise ConfigError(f"{key}={fmt(value)}: must be a positive number")
    # Adam's betas, which torch also checks only inside fit (a short list fails there with an IndexError)
    for key in ("model.optimizer_g.betas", "model.optimizer_d.betas"):
        value = _select(cfg, key)
        if value is not _ABSENT and not (isinstance(value, (ListConfig, list, tuple)) and len(value) == 2
                                         and all(_number(b) and 0 <= b < 1 for b in value)):
            raise ConfigError(f"{key}={fmt(value)}: must be two numbers in [0, 1), e.g. [0.5, 0.999]")
    # a schedule over the budget is built inside fit: check that there is a budget now
    for key in ("model.updates.scheduler_g", "model.updates.scheduler_d"):
        target = _select(cfg, f"{key}._target_")
        if isinstance(target, str) and target.endswith("BudgetSchedule") and _select(cfg, "iterations") is None:
            raise ConfigError(f"iterations=null: {key} decays over the iterations budget; set iterations=N, "
                              f"or {key}=null to train by epochs")


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
            f"loss.requires={fmt(requires)}: must be a mapping of model settings to the values "
            "needed, e.g. {updates.schedule: alternating}, or a list of model settings that must be set"
        )
    # a loss's terms (a gradient penalty, R1/R2) join the phases of the alternating schedule only
    terms = loss.get("terms")
    if isinstance(terms, DictConfig) and any(terms.get(k) is not None for k in terms.keys()):
        requires.setdefault("updates.schedule", "alternating")

    for key, wanted in requires.items():
        have = _select(model, key)
        if wanted is _ABSENT:
            if have is _ABSENT or have is None:
                raise ConfigError(f"model.{key}={fmt(None if have is _ABSENT else have)}: loss={name} needs model.{key} to be set")
            continue
        accepted = list(wanted) if isinstance(wanted, (ListConfig, list, tuple)) else [wanted]
        if have is _ABSENT or have not in accepted:
            needed = f"={fmt(accepted[0])}" if len(accepted) == 1 else f" to be one of {', '.join(fmt(a) for a in accepted)}"
            given = f"model.{key} is not set" if have is _ABSENT else f"model.{key}={fmt(have)}"
            raise ConfigError(f"{given}: loss={name} needs model.{key}{needed}")


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _positive(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0


# ---------------------------------------------------------------------------------- helpers
# (the value checks the constructors use, each naming its config key, are in gan.runtime.values)
def _select(cfg: DictConfig, key: str) -> Any:
    return OmegaConf.select(cfg, key, default=_ABSENT)


def auto_iterations(cfg: DictConfig) -> bool:
    """Whether ``cfg`` leaves its iteration count to be measured (``iterations=auto``)."""
    return cfg.get("iterations") == AUTO_ITERATIONS


def _path(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def _raw(node: DictConfig, key: Any) -> Any:
    """``node[key]``, or its unresolved form when an interpolation cannot be resolved here."""
    try:
        return node[key]
    except Exception:
        return OmegaConf.to_container(node, resolve=False).get(key)
