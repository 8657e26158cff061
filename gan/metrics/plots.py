"""Learning curves as a PNG: D and G losses, D's accuracy on real and generated images, and FID.

Drawn with matplotlib's object API on the Agg canvas (no pyplot state, no display needed).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from gan.runtime.files import write_atomically

Series = Sequence[tuple[float, float]]  # (GAN iteration, value) pairs


def plot_curves(history: Mapping[str, Series], path: str | Path, fid_floor: float | None = None, title: str | None = None) -> Path:
    """Write a three-panel figure to ``path`` from ``history``, which maps names to (iteration, value) pairs.

    Recognised names: ``d_loss``, ``g_loss``, ``d_acc_real``, ``d_acc_fake``, ``fid``. Missing ones
    leave their panel with a note instead of a curve.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(15, 4.2), dpi=100)
    FigureCanvasAgg(fig)
    losses, accuracy, fid = fig.subplots(1, 3)

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

    has_fid = draw(fid, "fid", "FID (samples vs MNIST test)", marker="o")
    if has_fid:
        if fid_floor is not None:
            fid.axhline(fid_floor, color="green", ls="--", lw=1, label=f"floor (real data) {fid_floor:.2f}")
        values = [v for _, v in history["fid"]]
        if min(values) > 0 and max(values) / min(values) > 20:
            fid.set_yscale("log")
    _finish(fid, "FID in the MNIST classifier's features", "FID", has_fid,
            empty="no evaluation ran\n(add callbacks.evaluation)")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return write_atomically(path, lambda p: fig.savefig(p, format="png"))


def _finish(ax, title: str, ylabel: str, has_data: bool, empty: str = "no data logged") -> None:
    ax.set_title(title)
    ax.set_xlabel("GAN iteration")
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    if has_data:
        ax.legend(fontsize=8)
    else:
        ax.text(0.5, 0.5, empty, ha="center", va="center", transform=ax.transAxes, color="grey")
