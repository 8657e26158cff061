"""Runs grouped by their config but for the seed (:func:`group_runs`), each group's statistics
(:class:`Stat`), the setting columns that tell the groups apart and their short names
(:func:`describe`), and the order of the rows (:func:`sort_groups`)."""

from __future__ import annotations

import json
import re
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from gan.compare.config_keys import IGNORED_GROUPS, MISSING, ignored, node_at, show
from gan.runtime.runs import flatten
from gan.compare.runs import METRICS, Metric, Run


@dataclass
class Stat:
    mean: float
    std: float | None  # sample standard deviation (n-1); None for a single value
    best: float
    n: int


def stat(values: Sequence[float], lower_is_better: bool) -> Stat | None:
    if not values:
        return None
    return Stat(statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else None,
                min(values) if lower_is_better else max(values), len(values))


@dataclass
class Group:
    """Runs with one config but for the seed, of one dataset, scored on one sample count."""

    runs: list[Run]
    settings: dict[str, str] = field(default_factory=dict)  # column -> value shown; filled by describe()

    @property
    def first(self) -> Run:
        return self.runs[0]

    @property
    def dataset(self) -> str | None:
        return self.first.dataset

    @property
    def eval_samples(self) -> int | None:
        return self.first.eval_samples

    def stats(self, metric: Metric) -> Stat | None:
        return stat([v for r in self.runs if (v := r.value(metric)) is not None], metric.lower_is_better)

    def iterations(self) -> Stat | None:
        return stat([float(r.iteration) for r in self.runs if isinstance(r.iteration, (int, float))], False)

    def wall_time(self) -> Stat | None:
        return stat([float(r.wall_time_s) for r in self.runs if isinstance(r.wall_time_s, (int, float))], True)

    def label(self) -> str:
        parts = [f"{k}={v}" for k, v in self.settings.items()]
        return ", ".join(parts) if parts else "all runs"


def group_runs(runs: Sequence[Run]) -> list[Group]:
    """Runs grouped by their settings (all but the seed), dataset and final sample count."""
    groups: dict[tuple, Group] = {}
    for run in runs:
        key = (run.dataset, run.eval_samples, json.dumps(run.settings(), sort_keys=True, default=str))
        groups.setdefault(key, Group([])).runs.append(run)
    return list(groups.values())


def describe(groups: Sequence[Group]) -> list[str]:
    """Fill each group's ``settings`` with the values that tell the groups apart and return the
    column names: Hydra's group choices and launch overrides where every run has its record and they
    tell every group apart, else the differing config keys (a swapped class shown once, by the node
    whose ``_target_`` differs)."""
    rows = _by_hydra_record(groups)
    if rows is None or not _distinct(groups, rows):
        rows = _by_config(groups, collapse=True)
        if not _distinct(groups, rows):
            rows = _by_config(groups, collapse=False)
    columns = _drop_copies(rows)
    labels = _short_names(columns, _all_keys(groups))
    for group, row in zip(groups, rows):
        group.settings = {labels[c]: row[c] for c in columns}
    return [labels[c] for c in columns]


def _distinct(groups: Sequence[Group], rows: list[dict[str, str]]) -> bool:
    seen = [(g.dataset, g.eval_samples, tuple(sorted(r.items()))) for g, r in zip(groups, rows)]
    return len(set(seen)) == len(seen)


def _differing(rows: list[dict[str, str]]) -> list[dict[str, str]]:
    keys = sorted({k for r in rows for k in r})
    keep = [k for k in keys if len({r.get(k, "—") for r in rows}) > 1]
    return [{k: r.get(k, "—") for k in keep} for r in rows]


def _by_hydra_record(groups: Sequence[Group]) -> list[dict[str, str]] | None:
    if any(r.hydra is None for g in groups for r in g.runs):
        return None
    rows = []
    override_keys = {o.split("=", 1)[0].lstrip("+~") for g in groups for o in g.first.hydra[1]}  # type: ignore[index]
    for group in groups:
        choices, _ = group.first.hydra  # type: ignore[misc]
        row = {name: show(choice) for name, choice in choices.items()
               if not any(name == g or name.startswith(g + "/") for g in IGNORED_GROUPS)}
        for key in override_keys - set(choices):
            value = node_at(group.first.config, key)
            if not ignored(key, value):
                row[key] = show(value)
        rows.append(row)
    return _differing(rows)


def _by_config(groups: Sequence[Group], collapse: bool) -> list[dict[str, str]]:
    settings = [g.first.settings() for g in groups]
    configs = [g.first.config for g in groups]
    keys = sorted({k for s in settings for k in s})
    differing = [k for k in keys if len({json.dumps(s.get(k, "—"), sort_keys=True, default=str) for s in settings}) > 1]
    columns: list[str] = []
    for key in differing:
        column = key
        if collapse:  # the highest node that is a different class (or null, or absent) in some group
            parts = key.split(".")
            for i in range(1, len(parts)):
                prefix = ".".join(parts[:i])
                if len({_kind(node_at(c, prefix)) for c in configs}) > 1:
                    column = prefix
                    break
        if column not in columns:
            columns.append(column)
    return [{c: show(node_at(config, c)) for c in columns} for config in configs]


def _kind(node: Any) -> str:
    """What a config node is, for telling a swapped subtree from one whose values changed."""
    if node is MISSING or node is None:
        return show(node)
    if isinstance(node, dict):
        return f"class {node['_target_']}" if "_target_" in node else "dict"
    return "value"


def _drop_copies(rows: list[dict[str, str]]) -> list[str]:
    """The columns, without those that repeat another's values in every row (an interpolated copy
    such as model.run.max_iterations of iterations): the shortest name stays."""
    columns = sorted({k for r in rows for k in r}, key=lambda k: (k.count("."), len(k), k))
    kept: dict[tuple, str] = {}
    for column in columns:
        kept.setdefault(tuple(r.get(column, "—") for r in rows), column)
    order = {c: i for i, c in enumerate(sorted({k for r in rows for k in r}))}
    return sorted(kept.values(), key=order.__getitem__)


def _all_keys(groups: Sequence[Group]) -> set[str]:
    keys: set[str] = set()
    for group in groups:
        for key in flatten(group.first.config):
            parts = key.split(".")
            keys.update(".".join(parts[:i]) for i in range(1, len(parts) + 1))
    return keys


def _short_names(columns: Sequence[str], keys: set[str]) -> dict[str, str]:
    """Each column by the shortest tail of its key that no other key ends with (model.optimizer_g.lr
    -> optimizer_g.lr); the full key where names would collide."""
    names = {}
    for column in columns:
        parts = column.split(".")
        names[column] = column
        for i in range(len(parts) - 1, 0, -1):
            tail = ".".join(parts[i:])
            if not tail.startswith("_") and not any(k != column and (k == tail or k.endswith("." + tail)) for k in keys):
                names[column] = tail
                break
    if len(set(names.values())) < len(names):
        return {c: c for c in columns}
    return names


# ---------------------------------------------------------------------------------- order
# what --sort takes besides the metrics; True: the smallest is best (the shortest run), False: the largest
SORT_EXTRAS = {"iterations": True, "wall_time": True, "seeds": False}
NUMBER = re.compile(r"(-?\d+(?:\.\d+)?(?:e[-+]?\d+)?)")


def sort_groups(groups: list[Group], columns: Sequence[str], by: str | None) -> list[Group]:
    """By ``by`` (best first; groups without it last), else by their settings."""

    def natural(text: str) -> list:
        return [(0, float(t), "") if NUMBER.fullmatch(t) else (1, 0.0, t) for t in NUMBER.split(text) if t]

    groups = sorted(groups, key=lambda g: ([natural(g.settings.get(c, "")) for c in columns],
                                           str(g.dataset), g.eval_samples or 0))
    if by is None:
        return groups

    def key(group: Group) -> tuple[int, float]:
        if by == "seeds":
            return 0, -len(group.runs)
        metric = next((m for m in METRICS if m.name == by), None)
        s = group.stats(metric) if metric else (group.iterations() if by == "iterations" else group.wall_time())
        if s is None:
            return 1, 0.0
        lower = metric.lower_is_better if metric else SORT_EXTRAS[by]
        return 0, s.mean if lower else -s.mean

    return sorted(groups, key=key)
