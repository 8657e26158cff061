"""FID against wall-clock seconds of training, for runs that evaluated during training:

    python -m bench.fid_vs_time RUN_DIR[=label] ... [--bench outputs/bench.json] [--out docs/fid_vs_time.png]

(docs/fid_vs_time.png: a `make train` run of the default recipe with ``--bench`` of a `make bench`
on the same machine, whose time-to-quality part trains the default recipe and the cs231n DCGAN tutorial.)

Each run's ``val/fid`` points are read from its TensorBoard events; a point's time is the wall
clock of its event minus that of the run's first ``train/*`` scalar (written ``log_every``
iterations in, so the start-up before training is not counted; the evaluations in between are).
``--bench`` adds the time-to-quality traces of a ``make bench`` (each recipe's evaluations against
its seconds of training, counted the same way). Runs compared this way must have run on the same
machine under the same load (README, "The default recipe").
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import NamedTuple

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from gan.runtime.files import write_atomically


class Point(NamedTuple):
    seconds: float  # since the run's first training scalar
    fid: float
    iteration: int
    samples: int  # the evaluation's sample count (FID is biased upwards at small counts)
    floor: float | None  # the real-data FID at that count


def fid_over_time(run_dir: Path) -> list[Point]:
    """Each ``val/fid`` point of the run, with its time, sample count and floor."""
    acc = EventAccumulator(str(run_dir / "tensorboard"), size_guidance={"scalars": 0})
    acc.Reload()
    tags = acc.Tags()["scalars"]
    if "val/fid" not in tags:
        raise SystemExit(f"error: {run_dir} has no val/fid scalars (was evaluation off?)")
    train_tags = [t for t in tags if t.startswith("train/")]
    start = min(e.wall_time for t in train_tags for e in acc.Scalars(t)[:1])

    def by_step(tag: str) -> dict[int, float]:
        return {e.step: e.value for e in acc.Scalars(tag)} if tag in tags else {}

    samples, floors = by_step("val/eval_samples"), by_step("val_floor/fid")
    return [Point(e.wall_time - start, e.value, e.step, int(samples.get(e.step, 0)), floors.get(e.step))
            for e in acc.Scalars("val/fid")]


def bench_traces(bench_json: Path) -> dict[str, list[Point]]:
    """The time-to-quality traces of a ``make bench`` result, one series per recipe."""
    quality = json.loads(bench_json.read_text()).get("time_to_quality") or {}
    if not quality:
        raise SystemExit(f"error: {bench_json} has no time_to_quality traces (was the bench run with --no-quality?)")
    return {f"{recipe} (make bench)": [Point(p["seconds"], p["fid"], p["iteration"], int(run["eval_samples"]), None)
                                       for p in run["trace"]]
            for recipe, run in quality.items()}


def plot(series: dict[str, list[Point]], out: Path) -> Path:
    """One line per run and sample count (the end-of-training evaluation usually draws more
    samples than the ones in training, so its FID is not on the same scale), and the real-data
    floor of each sample count as a dotted line."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8, 4.8), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    floors: dict[int, float] = {}
    for index, (label, points) in enumerate(series.items()):
        color = f"C{index}"
        for n in sorted({p.samples for p in points}):
            group = [p for p in points if p.samples == n]
            marker = "o" if len(group) > 1 else "*"
            ax.plot([p.seconds for p in group], [p.fid for p in group], marker=marker, markersize=6 if marker == "o" else 14,
                    color=color, linestyle="-" if len(group) > 1 else "none", label=f"{label}, {n} samples")
            floors.update((n, p.floor) for p in group if p.floor is not None)
    for n, floor in sorted(floors.items()):
        ax.axhline(floor, color="grey", linestyle=":", linewidth=1)
        ax.annotate(f"real-data floor, {n} samples", (0, floor), xycoords=("axes fraction", "data"),
                    xytext=(4, 3), textcoords="offset points", fontsize=8, color="grey")
    ax.set_yscale("log")
    ax.set_xlabel("wall-clock seconds of training")
    ax.set_ylabel("FID")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    write_atomically(out, lambda tmp: fig.savefig(tmp, format="png"))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="*", help="RUN_DIR or RUN_DIR=label")
    parser.add_argument("--bench", type=Path, help="a make bench result (outputs/bench.json): its time-to-quality traces")
    parser.add_argument("--out", type=Path, default=Path("docs/fid_vs_time.png"))
    args = parser.parse_args()
    series = {}
    for spec in args.runs:
        path, _, label = spec.partition("=")
        label = label or Path(path).name
        series[label] = fid_over_time(Path(path))
    if args.bench:
        series |= bench_traces(args.bench)
    if not series:
        parser.error("give at least one RUN_DIR or --bench")
    for label, points in series.items():
        print(f"{label}: " + ", ".join(f"{p.seconds:.0f} s (it {p.iteration}, n={p.samples}) FID {p.fid:.1f}"
                                       for p in points))
    print(f"wrote {plot(series, args.out)}")


if __name__ == "__main__":
    main()
