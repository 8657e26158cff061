"""Finding run folders and reading one: the folders a command line names (paths, globs), the run
folders below them and their sweeps' failure records, and each run as a finished result
(:class:`Run`) or a folder listed apart with its reason (:class:`Apart`)."""

from __future__ import annotations

import glob
import json
import math
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from gan.compare.config_keys import ignored, node_at
from gan.runtime.errors import FAILURES_DIR, read_failures
from gan.runtime.runs import CONFIG_FILE, FAILED, FINISHED, INTERRUPTED, LOCK_FILE, METRICS_FILE, flatten, lock_owner



class NothingToCompare(ValueError):
    """Paths that hold no run to compare (status 1)."""


# ---------------------------------------------------------------------------------- a run's scores
@dataclass(frozen=True)
class Metric:
    name: str  # the table's and --sort's name
    key: str  # its key in metrics.json "metrics"
    label: str
    lower_is_better: bool
    decimals: int | None  # fixed decimals, or None for 3 significant digits (KID's small values)

    def format(self, value: float) -> str:
        return f"{value:.{self.decimals}f}" if self.decimals is not None else f"{value:.3g}"


METRICS = (
    Metric("fid", "val/fid", "FID", True, 3),
    Metric("kid", "val/kid", "KID", True, None),
    Metric("precision", "val/precision", "precision", False, 3),
    Metric("recall", "val/recall", "recall", False, 3),
    Metric("coverage", "val/coverage", "coverage", False, 3),
    Metric("label_accuracy", "val/label_accuracy", "label accuracy", False, 3),
)


# ---------------------------------------------------------------------------------- one run
class _ConfigLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """YAML as OmegaConf writes it, read without building OmegaConf objects (about 20 times faster):
    ``1e-05`` is a float (YAML 1.1 wants a dot in one), and dates stay strings."""


_ConfigLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float", re.compile(r"^[-+]?[0-9]+(?:_[0-9]+)*(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"), list("-+0123456789"))
_ConfigLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in _ConfigLoader.yaml_implicit_resolvers.items()}


def load_yaml(path: Path) -> Any:
    return yaml.load(path.read_text(), Loader=_ConfigLoader)  # noqa: S506 (a safe loader)


@dataclass
class Run:
    """A finished run: its config and final figures."""

    path: Path
    config: dict
    metrics: dict  # metrics.json as written
    hydra: tuple[dict, list[str]] | None  # Hydra's group choices and the overrides it was launched with

    @property
    def seed(self) -> Any:
        return self.config.get("seed")

    @property
    def dataset(self) -> str | None:
        return self.metrics.get("dataset") or (self.config.get("data") or {}).get("dataset")

    @property
    def eval_samples(self) -> int | None:
        n = (self.metrics.get("metrics") or {}).get("val/eval_samples")
        return int(n) if isinstance(n, (int, float)) else None

    @property
    def iteration(self) -> int | None:
        return self.metrics.get("iteration")

    @property
    def wall_time_s(self) -> float | None:
        return self.metrics.get("wall_time_s")

    def value(self, metric: Metric) -> float | None:
        v = (self.metrics.get("metrics") or {}).get(metric.key)
        return float(v) if isinstance(v, (int, float)) and math.isfinite(v) else None

    def settings(self) -> dict[str, Any]:
        """The config leaves that say what is trained (the grouping key)."""
        folders = [str(v) for v in (node_at(self.config, "paths.output_dir"), node_at(self.config, "paths.log_dir"))
                   if isinstance(v, str) and v not in ("", ".", "/")]
        return {k: v for k, v in flatten(self.config).items() if not ignored(k, v, folders)}


@dataclass
class Apart:
    """A run (or failed sweep job) that is listed, not averaged."""

    path: Path
    reason: str


def newest_config(run_dir: Path) -> Path | None:
    """``config.yaml``, or the config of the latest resume (``config.resume-<iteration>.yaml``)."""
    resumes = [(int(m.group(1)), p) for p in run_dir.glob("config.resume-*.yaml")
               if (m := re.fullmatch(r"config\.resume-(\d+)\.yaml", p.name))]
    if resumes:
        return max(resumes)[1]
    path = run_dir / CONFIG_FILE
    return path if path.is_file() else None


def hydra_record(run_dir: Path) -> tuple[dict, list[str]] | None:
    """Hydra's group choices and the task overrides of a run launched by Hydra (``.hydra/``)."""
    try:
        choices = load_yaml(run_dir / ".hydra" / "hydra.yaml")["hydra"]["runtime"]["choices"]
        overrides = load_yaml(run_dir / ".hydra" / "overrides.yaml")
    except (OSError, yaml.YAMLError, KeyError, TypeError):  # no record, or another shape: config keys instead
        return None
    if not isinstance(choices, dict) or not isinstance(overrides, list):
        return None
    return {str(k): v for k, v in choices.items()}, [str(o) for o in overrides]


def unfinished(metrics: dict, config: dict) -> str | None:
    """Why a run with this ``metrics.json`` is not a result (None: it finished)."""
    iteration = metrics.get("iteration")
    budget = metrics["budget"] if "budget" in metrics else config.get("iterations")
    of = f" of {budget}" if isinstance(budget, int) else ""
    status = metrics.get("status")
    if status == FINISHED:
        return None
    if status == INTERRUPTED:
        by = metrics.get("stopped_by")
        return f"interrupted at iteration {iteration}{of}" + (f" by {by}" if by else "")
    if status == FAILED:
        return f"failed at iteration {iteration}{of}: {metrics.get('error') or 'no error recorded'}"
    if status is not None:
        return f"metrics.json has an unknown status {status!r}"
    if isinstance(budget, int) and iteration != budget:  # an older file, without "status"
        return f"interrupted at iteration {iteration}{of}"
    return None


def read_run(run_dir: Path, failure: dict | None = None) -> Run | Apart:
    """The run in ``run_dir`` if it is a finished result, else why not."""
    owner = lock_owner(run_dir)
    if owner is not None:
        return Apart(run_dir, f"being written by process {owner.get('pid')} on {owner.get('host')} "
                              f"since {owner.get('since')} (its {LOCK_FILE} is held)")
    if failure is not None:
        return Apart(run_dir, f"failed (sweep job {failure.get('job')}): {failure.get('error')}")
    config_path = newest_config(run_dir)
    if config_path is None:
        return Apart(run_dir, f"no {CONFIG_FILE}")
    try:
        config = load_yaml(config_path)
    except (OSError, yaml.YAMLError) as err:
        return Apart(run_dir, f"unreadable {config_path.name}: {' '.join(str(err).split())[:200]}")
    if not isinstance(config, dict):
        return Apart(run_dir, f"{config_path.name} is not a config")
    try:
        metrics = json.loads((run_dir / METRICS_FILE).read_text())
    except FileNotFoundError:
        return Apart(run_dir, f"no {METRICS_FILE}: the run never reached its end (killed, or still starting)")
    except (OSError, ValueError) as err:
        return Apart(run_dir, f"unreadable {METRICS_FILE}: {err}")
    if not isinstance(metrics, dict):
        return Apart(run_dir, f"{METRICS_FILE} is not a JSON object")
    reason = unfinished(metrics, config)
    if reason is not None:
        return Apart(run_dir, reason)
    return Run(run_dir, config, metrics, hydra_record(run_dir))


# ---------------------------------------------------------------------------------- finding runs
RUN_MARKERS = (CONFIG_FILE, METRICS_FILE, LOCK_FILE)
NOT_RUNS = {"checkpoints", "samples", "tensorboard", FAILURES_DIR}  # folders inside runs and sweeps


def expand(patterns: Sequence[str]) -> list[Path]:
    """The folders the command line names: each PATH as it is, or a glob's matching folders."""
    folders: list[Path] = []
    for text in patterns:
        path = Path(text).expanduser()
        if path.exists():
            if not path.is_dir():
                raise NothingToCompare(f"{text} is a file: give run folders, sweep folders or outputs/")
            folders.append(path)
            continue
        if not glob.has_magic(text):
            raise NothingToCompare(f"{text}: no such folder")
        matches = [Path(m) for m in sorted(glob.glob(os.path.expanduser(text), recursive=True)) if Path(m).is_dir()]
        if not matches:
            raise NothingToCompare(f"{text} matches no folder")
        folders.extend(matches)
    return folders


def discover(folders: Iterable[Path]) -> tuple[list[Path], list[dict]]:
    """Run folders at or below ``folders`` (a folder with config.yaml, metrics.json or .lock; not
    searched further), and the failure records of the sweeps among them (each with ``sweep``)."""
    runs: dict[Path, Path] = {}
    failures: dict[tuple[Path, str], dict] = {}
    for top in folders:
        for dirpath, dirnames, filenames in os.walk(top):
            here = Path(dirpath)
            if any(marker in filenames for marker in RUN_MARKERS):
                runs.setdefault(here.resolve(), here)
                dirnames.clear()
                continue
            if FAILURES_DIR in dirnames:
                for record in read_failures(here / FAILURES_DIR):
                    failures.setdefault((here.resolve(), str(record.get("job"))), record | {"sweep": here})
            dirnames[:] = sorted(d for d in dirnames if d not in NOT_RUNS and not d.startswith("."))
    return sorted(runs.values()), list(failures.values())


def collect(patterns: Sequence[str]) -> tuple[list[Run], list[Apart]]:
    """The finished runs the paths hold, and the rest with their reasons."""
    folders = expand(patterns)
    run_dirs, failures = discover(folders)
    failed_at = {Path(str(f.get("output_dir"))).resolve(): f for f in failures if f.get("output_dir")}
    runs: list[Run] = []
    apart: list[Apart] = []
    for run_dir in run_dirs:
        found = read_run(run_dir, failed_at.pop(run_dir.resolve(), None))
        (runs if isinstance(found, Run) else apart).append(found)
    for record in failed_at.values():  # failed jobs that left no run folder
        overrides = " ".join(str(o) for o in record.get("overrides") or [])
        apart.append(Apart(Path(str(record["output_dir"])),
                           f"failed (sweep job {record.get('job')}{f' [{overrides}]' if overrides else ''}): {record.get('error')}"))
    for record in failures:
        if not record.get("output_dir"):
            apart.append(Apart(record["sweep"] / FAILURES_DIR / f"{record.get('job')}.json", f"failed sweep job: {record.get('error')}"))
    if not runs and not apart:
        raise NothingToCompare(f"no runs found in {', '.join(map(str, folders))}: a run folder holds "
                               f"{CONFIG_FILE} and {METRICS_FILE} (outputs/runs/<date>/<time>_<name>/)")
    return runs, sorted(apart, key=lambda a: str(a.path))
