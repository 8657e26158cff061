"""Which keys of a run's resolved config say what was trained (all but :data:`IGNORED_KEYS`), how
to reach them (:func:`node_at`) and how the table shows a value (:func:`show`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

# Config keys that do not change what is trained: the seed (and its copies), where files are read
# and written, how a run is watched and checkpointed, and bookkeeping (in the spirit of
# hydra.job.config.override_dirname.exclude_keys in conf/hydra/default.yaml). A key is ignored with
# everything below it; a string value inside the run's own folders (a callback's dirpath) too.
IGNORED_KEYS = (
    "seed", "data.seed", "model.run.fixed_noise_seed",
    "paths", "hydra", "data.root", "data.download", "callbacks.evaluation.data_root",
    "ckpt_path", "trust_checkpoint", "print_config", "optimized_metric", "hparams_search",
    # iterations=auto is resolved into the count; the count is compared, not the minutes asked for
    "train_minutes",
    "logger", "callbacks.progress_bar", "trainer.enable_progress_bar", "trainer.enable_model_summary",
    "trainer.default_root_dir", "checkpoint_every", "callbacks.checkpoint", "sample_every", "callbacks.sample_grids",
    "log_every", "model.run.log_every",
    # when the in-training evaluations fall (their sample count, eval_samples, stays compared)
    "eval_every", "eval_points", "callbacks.evaluation.every", "callbacks.evaluation.points",
)
# Hydra config groups that say where files go or how a run is watched, not what is trained
IGNORED_GROUPS = ("hydra", "paths", "logger", "hparams_search")


def ignored(key: str, value: Any = None, run_folders: Sequence[str] = ()) -> bool:
    """Whether config key ``key`` (with ``value``) is left out of the comparison."""
    if any(key == k or key.startswith(k + ".") for k in IGNORED_KEYS):
        return True
    return isinstance(value, str) and any(value == f or value.startswith(f.rstrip("/") + "/") for f in run_folders)


def node_at(config: dict, key: str) -> Any:
    """The config node at dotted ``key``, or :data:`MISSING`."""
    node: Any = config
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return MISSING
        node = node[part]
    return node


class _Missing:
    def __repr__(self) -> str:
        return "—"


MISSING = _Missing()


def show(value: Any) -> str:
    """A config value as the table shows it: a class by its name, lists and dicts compact."""
    if value is MISSING:
        return "—"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, dict):
        if "_target_" in value:
            return str(value["_target_"]).rsplit(".", 1)[-1]
        return "{" + ", ".join(f"{k}: {show(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(show(v) for v in value) + "]"
    return str(value)
