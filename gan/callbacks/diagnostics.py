"""Watching a run: warnings when training goes wrong, and the learning curves at the end.

- :class:`Diagnostics` warns once each (log and TensorBoard text) when D has won (its accuracy on
  real and on generated images stays above 0.99 for a window), when coverage stays below 10
  digits, and, in a conditional run, when one class's samples stop showing that class. The
  detection is :func:`diagnose`, a pure function of the histories.
- :class:`LearningCurves` draws ``curves.png`` in the run folder when training ends.

Both read the run's figures from ``pl_module.history`` (:class:`gan.runtime.bookkeeping.History`), written
by the training step's bookkeeping and by :class:`gan.callbacks.evaluation.Evaluation`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
from pytorch_lightning.callbacks import Callback

from gan.runtime.bookkeeping import History
from gan.metrics.plots import plot_curves
from gan.runtime.tensorboard import add_to_loggers

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Finding:
    key: str  # "d_wins", "mode_collapse" or "class_collapse"
    iteration: int
    message: str


def discriminator_won(
    history: Sequence[tuple[int, float, float]], threshold: float = 0.99, window: int = 200
) -> tuple[int, int] | None:
    """``(first, last)`` iteration of the trailing run of logged points where D's accuracy on real
    *and* on generated images is above ``threshold``, if that run spans at least ``window`` GAN
    iterations; else None. ``history``: (iteration, acc_real, acc_fake), in iteration order."""
    run: list[int] = []
    for it, acc_real, acc_fake in history:
        if acc_real > threshold and acc_fake > threshold:
            run.append(int(it))
        else:
            run = []
    if len(run) >= 2 and run[-1] - run[0] >= window:
        return run[0], run[-1]
    return None


def _persisting(history: Sequence[tuple], patience: int, holds: Callable[[tuple], bool]) -> tuple | None:
    """The latest of ``history``'s points if ``holds`` is true of each of the last ``patience``; else None."""
    recent = list(history)[-patience:]
    return recent[-1] if len(recent) == patience and all(holds(point) for point in recent) else None


def coverage_collapsed(history: Sequence[tuple[int, float]], minimum: int = 10, patience: int = 2) -> tuple[int, int] | None:
    """``(iteration, coverage)`` of the latest evaluation if the last ``patience`` evaluations all had
    fewer than ``minimum`` digits covered; else None. ``history``: (iteration, coverage)."""
    latest = _persisting(history, patience, lambda point: point[1] < minimum)
    return None if latest is None else (int(latest[0]), int(latest[1]))


def class_collapsed(
    history: Sequence[tuple[int, float, float, float]], minimum: float = 0.5, patience: int = 2, others: float = 0.8
) -> tuple[int, int, float] | None:
    """``(iteration, class, accuracy)`` of the latest evaluation if in each of the last ``patience``
    evaluations one and the same class had its samples read as that class less than ``minimum`` of
    the time while the other classes' samples were read right at least ``others`` of the time (one
    class far below the rest, not samples that are not digits yet); else None. ``history``:
    (iteration, worst class, its label accuracy, the other classes' label accuracy)."""
    points = list(history)
    if not points:
        return None
    cls = int(points[-1][1])
    latest = _persisting(points, patience, lambda point: int(point[1]) == cls and point[2] < minimum and point[3] >= others)
    return None if latest is None else (int(latest[0]), cls, float(latest[2]))


def diagnose(
    d_history: Sequence[tuple[int, float, float]],
    coverage_history: Sequence[tuple[int, float]],
    threshold: float = 0.99,
    window: int = 200,
    min_coverage: int = 10,
    patience: int = 2,
    class_history: Sequence[tuple[int, float, float, float]] = (),
    min_class_accuracy: float = 0.5,
) -> list[Finding]:
    """Every problem the histories show, each with what to try."""
    found = []
    won = discriminator_won(d_history, threshold, window)
    if won is not None:
        first, last = won
        found.append(Finding("d_wins", last, (
            f"D has won: its accuracy on real and on generated images has stayed above {threshold} from GAN "
            f"iteration {first} to {last}, so G's gradients vanish and G stops learning. Try: a lower D learning "
            "rate (model.optimizer_d.lr) or a higher G one, fewer D steps (model.updates.d_steps=1) or more G steps "
            "(model.updates.g_steps=2), a loss with useful gradients when D is confident (loss=wasserstein_gp, "
            "loss=hinge or loss=least_squares), or a smaller D."
        )))
    collapsed = coverage_collapsed(coverage_history, min_coverage, patience)
    if collapsed is not None:
        it, cov = collapsed
        found.append(Finding("mode_collapse", it, (
            f"mode collapse: only {cov} of the 10 digits get at least 5% of the samples at GAN iteration {it} "
            f"(val/coverage, below {min_coverage} for {patience} evaluations in a row). Try: a lower learning rate "
            "(both networks), a larger batch (data.batch_size), loss=wasserstein_gp (its critic penalises "
            "collapse), more D steps (model.updates.d_steps=2), or go back to checkpoints/best_fid.ckpt. Early in a run, "
            "low coverage can also mean the samples are not digit-like yet (val/precision low): look at the grids."
        )))
    stalled = class_collapsed(class_history, min_class_accuracy, patience)
    if stalled is not None:
        it, cls, acc = stalled
        found.append(Finding("class_collapse", it, (
            f"class {cls} has stalled: only {acc:.0%} of the samples drawn for it are read as class {cls} at GAN "
            f"iteration {it}, while the other classes are read right (val/worst_class_accuracy, below "
            f"{min_class_accuracy} for {patience} evaluations in a row). A single class that comes out as one blob for every z is a G whose label input has saturated "
            "its output; it can take a thousand iterations to recover. Try: a smaller initial label embedding "
            "(model.conditional.label_std=0.1, what experiment=conditional uses), or go back to checkpoints/best_fid.ckpt. "
            "Look at samples/by_class."
        )))
    return found


def d_accuracy_history(history: History) -> list[tuple[int, float, float]]:
    """(iteration, D's accuracy on real, on generated) at each logged point."""
    return [(it, s["d_acc_real"], s["d_acc_fake"]) for it, s in history.train if "d_acc_real" in s and "d_acc_fake" in s]


def worst_class_history(history: History) -> list[tuple[int, float, float, float]]:
    """(iteration, worst class, its label accuracy, the other classes') at each evaluation of a conditional run."""
    keys = ("worst_class", "worst_class_accuracy", "other_classes_accuracy")
    return [(it, *(m[k] for k in keys)) for it, m in history.evaluations if all(k in m for k in keys)]


class Diagnostics(Callback):
    """Warn once each, in the log and as TensorBoard text (``diagnostics/<key>``), when D has won,
    the samples collapse onto fewer digits, or one class of a conditional run stalls (see
    :func:`diagnose`)."""

    def __init__(self, d_acc_threshold: float = 0.99, window: int = 200, min_coverage: int = 10, coverage_patience: int = 2) -> None:
        if window < 1 or coverage_patience < 1:
            raise ValueError("diagnostics window and coverage_patience must be >= 1")
        self.threshold, self.window = float(d_acc_threshold), int(window)
        self.min_coverage, self.patience = int(min_coverage), int(coverage_patience)
        self.warned: set[str] = set()

    def check(self, trainer: pl.Trainer, history: History) -> list[Finding]:
        found = diagnose(d_accuracy_history(history), history.series("coverage"), self.threshold, self.window,
                         self.min_coverage, self.patience, worst_class_history(history))
        new = [f for f in found if f.key not in self.warned]
        for finding in new:
            self.warned.add(finding.key)
            if trainer.is_global_zero:
                log.warning(finding.message)
                add_to_loggers(trainer, "text", f"diagnostics/{finding.key}", finding.message, finding.iteration)
        return new

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int) -> None:
        if pl_module.iteration % pl_module.log_every == 0 or trainer.should_stop:
            self.check(trainer, pl_module.history)

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.check(trainer, pl_module.history)

    def state_dict(self) -> dict[str, Any]:
        return {"warned": sorted(self.warned)}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.warned = set(state_dict.get("warned", []))


CURVES = ("d_loss", "g_loss", "d_acc_real", "d_acc_fake")


class LearningCurves(Callback):
    """At the end of training, ``<dirpath>/curves.png``: D and G losses, D's accuracy on real and
    generated images, FID with its floor, from ``pl_module.history``."""

    def __init__(self, dirpath: str, filename: str = "curves.png") -> None:
        self.dirpath = Path(dirpath)
        self.filename = filename

    @property
    def path(self) -> Path:
        return self.dirpath / self.filename

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.is_global_zero:
            history: History = pl_module.history
            floors = {n: floor["fid"] for n, floor in history.floors.items() if "fid" in floor}
            plot_curves({k: history.series(k) for k in CURVES}, self.path, history.series_by_samples("fid"), floors,
                        title=f"{self.dirpath.name}: {pl_module.iteration} GAN iterations")
            log.info("learning curves: %s", self.path)
