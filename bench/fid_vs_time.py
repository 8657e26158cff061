"""FID against wall-clock seconds of training, for runs that evaluated during training:

    python -m bench.fid_vs_time RUN_DIR[=label] ... [--out docs/fid_vs_time.png]

Each run's ``val/fid`` points are read from its TensorBoard events; a point's time is the wall
clock of its event minus that of the run's first ``train/*`` scalar (written ``log_every``
iterations in, so the start-up before training is not counted; the evaluations in between are).
Runs compared this way must have run on the same machine under the same load (README, "The
default recipe").
"""

from __future__ import annotations

import argparse
from pathlib import Path

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from gan.files import write_atomically

Points = list[tuple[float, float, int]]  # (seconds, FID, GAN iteration)


def fid_over_time(run_dir: Path) -> Points:
    """(seconds since the run's first training scalar, FID, iteration) of each ``val/fid`` point."""
    acc = EventAccumulator(str(run_dir / "tensorboard"), size_guidance={"scalars": 0})
    acc.Reload()
    tags = acc.Tags()["scalars"]
    if "val/fid" not in tags:
        raise SystemExit(f"error: {run_dir} has no val/fid scalars (was evaluation off?)")
    train_tags = [t for t in tags if t.startswith("train/")]
    start = min(e.wall_time for t in train_tags for e in acc.Scalars(t)[:1])
    return [(e.wall_time - start, e.value, e.step) for e in acc.Scalars("val/fid")]


def plot(series: dict[str, Points], out: Path, floor: float | None = None) -> Path:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7.5, 4.5), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    for label, points in series.items():
        ax.plot([p[0] for p in points], [p[1] for p in points], marker="o", label=label)
    if floor is not None:
        ax.axhline(floor, color="grey", linestyle=":", label=f"real-data floor {floor:g}")
    ax.set_yscale("log")
    ax.set_xlabel("wall-clock seconds of training")
    ax.set_ylabel("FID (in-training evaluation samples)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    write_atomically(out, lambda tmp: fig.savefig(tmp, format="png"))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", help="RUN_DIR or RUN_DIR=label")
    parser.add_argument("--out", type=Path, default=Path("docs/fid_vs_time.png"))
    parser.add_argument("--floor", type=float, default=None, help="a real-data FID to draw as a line")
    args = parser.parse_args()
    series = {}
    for spec in args.runs:
        path, _, label = spec.partition("=")
        points = fid_over_time(Path(path))
        series[label or Path(path).name] = points
        print(f"{label or path}: " + ", ".join(f"{s:.0f} s (it {it}) FID {f:.1f}" for s, f, it in points))
    print(f"wrote {plot(series, args.out, args.floor)}")


if __name__ == "__main__":
    main()
