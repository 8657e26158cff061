"""Learning curves as a PNG: D and G losses, D's accuracy on real and generated images, and FID.

Drawn with matplotlib's object API on the Agg canvas (no pyplot state, no display needed).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from gan.runtime.files import write_atomically

Series = Sequence[tuple[float, float]]  # (GAN iteration, value) pairs
MARKERS = ("o", "s", "^", "D", "v", "P", "X")


def plot_curves(history: Mapping[str, Series], path: str | Path, fid: Mapping[int | None, Series] | None = None,
                floors: Mapping[int, float] | None = None, title: str | None = None) -> Path:
    """Write :func:`curves_figure` to ``path`` as a PNG."""
    fig = curves_figure(history, fid, floors, title)
    return write_atomically(path, lambda p: fig.savefig(p, format="png"))


def curves_figure(history: Mapping[str, Series], fid: Mapping[int | None, Series] | None = None,
                  floors: Mapping[int, float] | None = None, title: str | None = None):
    """A three-panel matplotlib figure: losses and D's accuracies from ``history`` (names to
    (iteration, value) pairs: ``d_loss``, ``g_loss``, ``d_acc_real``, ``d_acc_fake``), and FID.

    ``fid`` maps each sample count to its points: FID is biased upwards at small counts, so each
    count is its own series with its own marker, never joined to another count's points, and
    ``floors`` (count -> the FID of as many real images) draws each count's floor in its colour.
    Missing data leave their panel with a note instead of a curve.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(15, 4.2), dpi=100)
    FigureCanvasAgg(fig)
    losses, accuracy, fid_ax = fig.subplots(1, 3)

    def draw(ax, name: str, label: str, **style) -> bool:
        points = list(history.get(name) or [])
        if not points:
            return False
        xs, ys = zip(*points)
        ax.plot(xs, ys, label=label, **style)
        return True

    drawn = [draw(losses, "d_loss", "D loss"), draw(losses, "g_loss", "G loss")]
    _finish(losses, "losses", "loss", any(drawn))

    drawn = [draw(accuracy, "d_acc_real", "D accuracy on real"), draw(accuracy, "d_acc_fake", "D accuracy on generated")]
    if any(drawn):
        accuracy.axhline(0.5, color="grey", lw=0.8, ls=":", label="chance")
        accuracy.set_ylim(-0.02, 1.02)
    _finish(accuracy, "discriminator accuracy", "accuracy", any(drawn))

    series = {n: list(points) for n, points in (fid or {}).items() if points}
    values: list[float] = []
    for k, (n, points) in enumerate(sorted(series.items(), key=lambda item: (item[0] is None, item[0] or 0))):
        xs, ys = zip(*points)
        values += ys
        counted = f"{n} samples" if n is not None else "samples of unrecorded count"
        line = fid_ax.plot(xs, ys, marker=MARKERS[k % len(MARKERS)], ls="-" if len(xs) > 1 else "none",
                           label=f"FID, {counted}")[0]
        floor = (floors or {}).get(n) if n is not None else None
        if floor is not None:
            fid_ax.axhline(floor, color=line.get_color(), ls="--", lw=1, label=f"floor of {n} real images: {floor:.2f}")
    if values and min(values) > 0 and max(values) / min(values) > 20:
        fid_ax.set_yscale("log")
    _finish(fid_ax, "FID in the MNIST classifier's features", "FID", bool(series),
            empty="no evaluation ran\n(add callbacks.evaluation)")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def _finish(ax, title: str, ylabel: str, has_data: bool, empty: str = "no data logged") -> None:
    ax.set_title(title)
    ax.set_xlabel("GAN iteration")
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    if has_data:
        ax.legend(fontsize=8)
    else:
        ax.text(0.5, 0.5, empty, ha="center", va="center", transform=ax.transAxes, color="grey")
