"""``--plot``: FID against GAN iterations, one line per (group, sample count), from each run's
metrics.json ``evaluations`` or its TensorBoard events. Matplotlib and TensorBoard are imported
only when a plot is drawn, so the table alone starts fast."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from gan.compare.groups import Group
from gan.compare.runs import Run
from gan.runtime.files import write_atomically


@dataclass
class Series:
    """One line of the plot: a group's FIDs at one sample count, over the seeds."""

    group: int  # index into the groups (its colour)
    label: str
    samples: int | None
    iterations: list[int]
    mean: list[float]
    low: list[float]
    high: list[float]
    seeds: int


def evaluation_history(run: Run) -> list[tuple[int, int | None, float]] | None:
    """``(iteration, sample count, FID)`` of every evaluation of the run: from metrics.json
    ``evaluations``, else from its TensorBoard events (runs written before that key); None when
    neither has any."""
    if isinstance(run.metrics.get("evaluations"), list):
        points = [(int(e["iteration"]), int(e["eval_samples"]) if e.get("eval_samples") is not None else None, float(e["fid"]))
                  for e in run.metrics["evaluations"]
                  if isinstance(e, dict) and isinstance(e.get("fid"), (int, float)) and "iteration" in e]
        return points or None
    return tensorboard_history(run.path / "tensorboard")


def tensorboard_history(folder: Path) -> list[tuple[int, int | None, float]] | None:
    if not folder.is_dir() or not any(folder.glob("events.out.tfevents.*")):
        return None
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(folder), size_guidance={"scalars": 0, "images": 1, "tensors": 1, "histograms": 1})
    try:
        events.Reload()
    except Exception:
        return None
    tags = events.Tags().get("scalars", [])
    if "val/fid" not in tags:
        return None
    samples = {e.step: int(e.value) for e in events.Scalars("val/eval_samples")} if "val/eval_samples" in tags else {}
    fid = {e.step: e.value for e in events.Scalars("val/fid")}  # a resumed run's repeated steps: the last wins
    return [(step, samples.get(step), value) for step, value in sorted(fid.items())] or None


def fid_series(groups: Sequence[Group]) -> tuple[list[Series], list[Run]]:
    """The plot's lines, one per (group, sample count): at each iteration all its seeds share (every
    iteration of any, where they share none), the mean FID over the seeds and their minimum and
    maximum; and the runs without an evaluation history."""
    series: list[Series] = []
    without: list[Run] = []
    for index, group in enumerate(groups):
        by_count: dict[int | None, list[dict[int, float]]] = {}
        for run in group.runs:
            history = evaluation_history(run)
            if history is None:
                without.append(run)
                continue
            per_count: dict[int | None, dict[int, float]] = {}
            for iteration, samples, fid in history:
                per_count.setdefault(samples, {})[iteration] = fid
            for samples, points in per_count.items():
                by_count.setdefault(samples, []).append(points)
        for samples in sorted(by_count, key=lambda n: (n is None, n or 0)):
            runs = by_count[samples]
            shared = set.intersection(*(set(r) for r in runs)) or set().union(*(set(r) for r in runs))
            iterations = sorted(shared)
            values = [[r[i] for r in runs if i in r] for i in iterations]
            series.append(Series(index, group.label(), samples, iterations, [statistics.fmean(v) for v in values],
                                 [min(v) for v in values], [max(v) for v in values], len(runs)))
    return series, without


MARKERS = ("o", "*", "s", "^", "D", "v", "P", "X")


def plot_fid(groups: Sequence[Group], path: str | Path) -> Path:
    """FID against GAN iterations, written to ``path`` (PNG, atomically)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    series, without = fid_series(groups)
    fig = Figure(figsize=(9, 5.5), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    colours = [f"C{i % 10}" for i in range(len(groups))]
    counts = sorted({s.samples for s in series}, key=lambda n: (n is None, n or 0))
    for s in series:
        colour, marker = colours[s.group], MARKERS[counts.index(s.samples) % len(MARKERS)]
        n = f"n={s.samples:,}" if s.samples is not None else "n unknown"
        label = f"{s.label} ({n}, {s.seeds} seed{'s' if s.seeds != 1 else ''})"
        ax.plot(s.iterations, s.mean, color=colour, marker=marker, markersize=9 if marker == "*" else 5,
                lw=1.2 if len(s.iterations) > 1 else 0, label=label)
        if s.seeds > 1:
            if len(s.iterations) > 1:
                ax.fill_between(s.iterations, s.low, s.high, color=colour, alpha=0.2, lw=0)
            else:
                ax.vlines(s.iterations, s.low, s.high, color=colour, lw=3, alpha=0.4)
    values = [v for s in series for v in s.low + s.high]
    if values and min(values) > 0 and max(values) / min(values) > 20:
        ax.set_yscale("log")
    ax.set_title("FID against GAN iterations: mean over seeds, band from min to max")
    ax.set_xlabel("GAN iteration")
    ax.set_ylabel("FID")
    ax.grid(alpha=0.3)
    if series:
        ax.legend(fontsize=8)
    else:
        ax.text(0.5, 0.5, "no evaluation history in these runs", ha="center", va="center", transform=ax.transAxes, color="grey")
    if without:
        names = ", ".join(r.path.name for r in without[:4]) + (f" and {len(without) - 4} more" if len(without) > 4 else "")
        fig.text(0.01, 0.01, f"no evaluation history: {names}", fontsize=7, color="grey")
    fig.tight_layout(rect=(0, 0.03 if without else 0, 1, 1))
    return write_atomically(path, lambda p: fig.savefig(p, format="png"))
