"""Training-time evaluation, diagnostics and learning curves, on the GAN-iteration axis.

- :class:`Evaluation`: every ``every`` GAN iterations (and at the end) scores ``n_samples`` samples
  with :class:`gan.evaluation.metrics.Evaluator`, logs ``val/*`` (and the floor as ``val_floor/*``),
  puts them in ``trainer.callback_metrics`` (so ``train()`` returns ``val/fid``), and keeps the
  best-FID checkpoint as ``<dirpath>/best_fid.ckpt`` beside ``last.ckpt``.
- :class:`Diagnostics`: warns once (log and TensorBoard text) when D has won (its accuracy on real
  and on generated images stays above 0.99 for a window) and when coverage stays below 10 digits.
  The detection is :func:`diagnose`, a pure function of the histories.
- :class:`LearningCurves`: at the end of training, ``curves.png`` in the run folder.

List :class:`Evaluation` first in ``callbacks``: before the checkpoint callback, so ``last.ckpt`` of
an evaluated iteration holds its state (else a resumed run may evaluate that iteration again), and
before the other two, so they see its figures of the same iteration at once (else one step later).
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import Callback
from torch import Tensor

from gan.callbacks import generate, save_checkpoint_atomically
from gan.files import write_atomically
from gan.images import to_unit_range

log = logging.getLogger(__name__)

BEST_FID = "best_fid.ckpt"


# ---------------------------------------------------------------------------------- evaluation
class Evaluation(Callback):
    """Score generated samples every ``every`` GAN iterations and at the end of training.

    Args:
        every: evaluate every this many GAN iterations (``eval_every``).
        n_samples: samples drawn each time (``eval_samples``); the same noise every time, drawn
            from ``seed``, so figures compare across iterations. The floor uses as many real images.
        dirpath: where ``best_fid.ckpt`` goes (the run's ``checkpoints`` folder); None keeps none.
        recipe: the feature classifier's recipe (``full``, or ``quick`` for tests).
        data_root: folder holding ``MNIST/raw`` (default ``$GAN_DATA_ROOT``, else ``./data``).
        seed: seeds the evaluation noise.
        batch_size: generator batch when drawing the samples.
        dataset: the data module's dataset; the metrics measure MNIST digits, so for any other
            (``FashionMNIST``) the callback warns once and does nothing.
    """

    def __init__(
        self,
        every: int = 250,
        n_samples: int = 2000,
        dirpath: str | None = None,
        recipe: str = "full",
        data_root: str | None = None,
        seed: int = 0,
        batch_size: int = 500,
        dataset: str = "MNIST",
        final: bool = True,
    ) -> None:
        from gan.evaluation.classifier import get_recipe
        from gan.evaluation.metrics import MIN_SAMPLES

        if every < 1:
            raise ValueError(f"eval_every must be >= 1, got {every}")
        if n_samples < MIN_SAMPLES:
            raise ValueError(f"eval_samples must be >= {MIN_SAMPLES}, got {n_samples}")
        get_recipe(recipe)  # a bad recipe name fails now, not at the first evaluation
        self.every = int(every)
        self.n_samples = int(n_samples)
        self.dirpath = Path(dirpath) if dirpath else None
        self.recipe = recipe
        self.data_root = data_root
        self.seed = int(seed)
        self.batch_size = int(batch_size)
        self.final = bool(final)  # also evaluate when training ends (off: only every `every` iterations)
        self.enabled = dataset == "MNIST"
        if not self.enabled:
            log.warning("evaluation is off: its metrics measure MNIST digits, and the data is %s", dataset)
        self.best_fid = math.inf
        self.best_iteration: int | None = None
        self.last_evaluated: int | None = None
        self.latest: dict[str, float] = {}
        self._evaluator = None

    @property
    def best_path(self) -> Path | None:
        return self.dirpath / BEST_FID if self.dirpath is not None else None

    @property
    def evaluator(self):
        if self._evaluator is None:
            from gan.evaluation.metrics import Evaluator

            self._evaluator = Evaluator.from_recipe(self.data_root, self.recipe)
        return self._evaluator

    # ------------------------------------------------------------------ hooks
    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # A resumed run may restore a state older than best_fid.ckpt (last.ckpt written before the
        # evaluation of the same iteration): the note beside best_fid.ckpt has the real best.
        note = self._note_path()
        if note is not None and note.is_file():
            try:
                best = json.loads(note.read_text())
                if float(best["fid"]) < self.best_fid:
                    self.best_fid, self.best_iteration = float(best["fid"]), int(best["iteration"])
            except (ValueError, KeyError, TypeError):
                log.warning("%s is not readable: the best FID starts afresh", note)

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int) -> None:
        if pl_module.iteration % self.every == 0 or (self.final and trainer.should_stop and not _interrupted(trainer)):
            self.evaluate(trainer, pl_module)

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.last_evaluated == pl_module.iteration or not self.final:
            return
        if _interrupted(trainer):  # leave the time to the checkpoint; the resumed run evaluates at its end
            log.info("training was interrupted: no final evaluation at GAN iteration %d", pl_module.iteration)
            return
        self.evaluate(trainer, pl_module)

    def state_dict(self) -> dict[str, Any]:
        return {"best_fid": self.best_fid, "best_iteration": self.best_iteration, "last_evaluated": self.last_evaluated}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.best_fid = float(state_dict.get("best_fid", math.inf))
        self.best_iteration = state_dict.get("best_iteration")
        self.last_evaluated = state_dict.get("last_evaluated")

    # ------------------------------------------------------------------ the work
    def samples(self, pl_module: pl.LightningModule) -> Tensor:
        """``n_samples`` images in [0, 1] from the same noise every time (G in eval mode, no_grad)."""
        g = torch.Generator().manual_seed(self.seed)
        z = pl_module.noise.sample(self.n_samples, generator=g)
        chunks = [
            to_unit_range(generate(pl_module.generator, z[i : i + self.batch_size].to(pl_module.device)), pl_module.value_range).cpu()
            for i in range(0, self.n_samples, self.batch_size)
        ]
        return torch.cat(chunks)

    def evaluate(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> dict[str, float] | None:
        if not self.enabled:
            return None
        it = pl_module.iteration
        result = None
        if trainer.is_global_zero:
            metrics = self.evaluator.metrics(self.samples(pl_module))
            result = (metrics, self.evaluator.floor(self.n_samples))
        metrics, floor = trainer.strategy.broadcast(result, src=0)
        self.last_evaluated = it
        improved = metrics["fid"] < self.best_fid
        if improved:
            self.best_fid, self.best_iteration = float(metrics["fid"]), it
        scalars = {f"val/{k}": float(v) for k, v in metrics.items()} | {"val/best_fid": self.best_fid}
        floor_scalars = {f"val_floor/{k}": float(v) for k, v in floor.items()}
        trainer.callback_metrics.update(
            {k: torch.tensor(v) for k, v in (scalars | floor_scalars).items()} | {"val/iteration": torch.tensor(float(it))}
        )
        self.latest = scalars
        if trainer.is_global_zero:
            for logger in trainer.loggers:
                logger.log_metrics(scalars | floor_scalars, step=it)
            log.info(
                "evaluation at GAN iteration %d (%d samples): FID %.3f (floor %.3f), KID %.4f, precision %.3f, "
                "recall %.3f, coverage %d/10, classifier score %.2f%s",
                it, self.n_samples, metrics["fid"], floor["fid"], metrics["kid"], metrics["precision"],
                metrics["recall"], metrics["coverage"], metrics["classifier_score"], " (best so far)" if improved else "",
            )
        if improved and self.dirpath is not None:
            self._save_best(trainer, pl_module, it)
        return metrics

    def _note_path(self) -> Path | None:
        return self.dirpath / "best_fid.json" if self.dirpath is not None else None

    def _save_best(self, trainer: pl.Trainer, pl_module: pl.LightningModule, iteration: int) -> None:
        """``best_fid.ckpt`` (atomic, finite weights only) and its note ``{fid, iteration}``."""
        assert self.best_path is not None
        save_checkpoint_atomically(trainer, pl_module, self.best_path)
        if trainer.is_global_zero:
            note = json.dumps({"fid": self.best_fid, "iteration": iteration}) + "\n"
            write_atomically(self._note_path(), lambda p: p.write_text(note))
        trainer.strategy.barrier("gan-best-fid-note")


def _interrupted(trainer: pl.Trainer) -> bool:
    """Whether a signal stopped training (``gan.callbacks.StopOnSignal`` records it in ``received``)."""
    return any(getattr(cb, "received", None) for cb in trainer.callbacks)


# ---------------------------------------------------------------------------------- diagnostics
@dataclass(frozen=True)
class Finding:
    key: str  # "d_wins" or "mode_collapse"
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


def coverage_collapsed(history: Sequence[tuple[int, float]], minimum: int = 10, patience: int = 2) -> tuple[int, int] | None:
    """``(iteration, coverage)`` of the latest evaluation if the last ``patience`` evaluations all had
    fewer than ``minimum`` digits covered; else None. ``history``: (iteration, coverage)."""
    recent = list(history)[-patience:]
    if len(recent) == patience and all(c < minimum for _, c in recent):
        it, c = recent[-1]
        return int(it), int(c)
    return None


def diagnose(
    d_history: Sequence[tuple[int, float, float]],
    coverage_history: Sequence[tuple[int, float]],
    threshold: float = 0.99,
    window: int = 200,
    min_coverage: int = 10,
    patience: int = 2,
) -> list[Finding]:
    """Every problem the histories show, each with what to try."""
    found = []
    won = discriminator_won(d_history, threshold, window)
    if won is not None:
        first, last = won
        found.append(Finding("d_wins", last, (
            f"D has won: its accuracy on real and on generated images has stayed above {threshold} from GAN "
            f"iteration {first} to {last}, so G's gradients vanish and G stops learning. Try: a lower D learning "
            "rate (model.optimizer_d.lr) or a higher G one, fewer D steps (model.d_steps=1) or more G steps "
            "(model.g_steps=2), a loss with useful gradients when D is confident (loss=wasserstein_gp, "
            "loss=hinge or loss=least_squares), or a smaller D."
        )))
    collapsed = coverage_collapsed(coverage_history, min_coverage, patience)
    if collapsed is not None:
        it, cov = collapsed
        found.append(Finding("mode_collapse", it, (
            f"mode collapse: only {cov} of the 10 digits get at least 5% of the samples at GAN iteration {it} "
            f"(val/coverage, below {min_coverage} for {patience} evaluations in a row). Try: a lower learning rate "
            "(both networks), a larger batch (data.batch_size), loss=wasserstein_gp (its critic penalises "
            "collapse), more D steps (model.d_steps=2), or go back to checkpoints/best_fid.ckpt. Early in a run, "
            "low coverage can also mean the samples are not digit-like yet (val/precision low): look at the grids."
        )))
    return found


def _new_point(metrics: dict, iteration_key: str, last: int | None) -> int | None:
    """The iteration of the newest figures under ``iteration_key`` if not seen yet, else None."""
    value = metrics.get(iteration_key)
    if value is None:
        return None
    it = int(float(value))
    return it if last is None or it > last else None


class Diagnostics(Callback):
    """Warn once each, in the log and as TensorBoard text (``diagnostics/<key>``), when D has won
    or the samples collapse onto fewer digits (see :func:`diagnose`).

    Reads ``train/d_acc_real`` and ``train/d_acc_fake`` (written every ``log_every`` iterations) and
    ``val/coverage`` (written by :class:`Evaluation`) from ``trainer.callback_metrics``.
    """

    def __init__(self, d_acc_threshold: float = 0.99, window: int = 200, min_coverage: int = 10, coverage_patience: int = 2) -> None:
        if window < 1 or coverage_patience < 1:
            raise ValueError("diagnostics window and coverage_patience must be >= 1")
        self.threshold, self.window = float(d_acc_threshold), int(window)
        self.min_coverage, self.patience = int(min_coverage), int(coverage_patience)
        self.d_history: list[tuple[int, float, float]] = []
        self.coverage_history: list[tuple[int, float]] = []
        self.warned: set[str] = set()

    def _record(self, trainer: pl.Trainer) -> None:
        cm = trainer.callback_metrics
        it = _new_point(cm, "train/iteration", self.d_history[-1][0] if self.d_history else None)
        if it is not None and "train/d_acc_real" in cm and "train/d_acc_fake" in cm:
            self.d_history.append((it, float(cm["train/d_acc_real"]), float(cm["train/d_acc_fake"])))
        it = _new_point(cm, "val/iteration", self.coverage_history[-1][0] if self.coverage_history else None)
        if it is not None and "val/coverage" in cm:
            self.coverage_history.append((it, float(cm["val/coverage"])))

    def check(self, trainer: pl.Trainer) -> list[Finding]:
        self._record(trainer)
        new = [f for f in diagnose(self.d_history, self.coverage_history, self.threshold, self.window,
                                   self.min_coverage, self.patience) if f.key not in self.warned]
        for finding in new:
            self.warned.add(finding.key)
            if trainer.is_global_zero:
                log.warning(finding.message)
                for logger in trainer.loggers:
                    add_text = getattr(getattr(logger, "experiment", None), "add_text", None)
                    if callable(add_text):
                        add_text(f"diagnostics/{finding.key}", finding.message, global_step=finding.iteration)
        return new

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int) -> None:
        if pl_module.iteration % pl_module.log_every == 0 or trainer.should_stop:
            self.check(trainer)

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.check(trainer)

    def state_dict(self) -> dict[str, Any]:
        return {"d_history": self.d_history, "coverage_history": self.coverage_history, "warned": sorted(self.warned)}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.d_history = [tuple(p) for p in state_dict.get("d_history", [])]
        self.coverage_history = [tuple(p) for p in state_dict.get("coverage_history", [])]
        self.warned = set(state_dict.get("warned", []))


# ---------------------------------------------------------------------------------- curves
CURVES = {"d_loss": "train/d_loss", "g_loss": "train/g_loss", "d_acc_real": "train/d_acc_real", "d_acc_fake": "train/d_acc_fake"}


class LearningCurves(Callback):
    """Record the training scalars and FID as they are written; draw ``<dirpath>/curves.png`` at the
    end of training (D and G losses, D's accuracy on real and generated images, FID with its floor)."""

    def __init__(self, dirpath: str, filename: str = "curves.png") -> None:
        self.dirpath = Path(dirpath)
        self.filename = filename
        self.history: dict[str, list[tuple[int, float]]] = {k: [] for k in (*CURVES, "fid")}
        self.fid_floor: float | None = None
        self._last_train: int | None = None
        self._last_val: int | None = None

    @property
    def path(self) -> Path:
        return self.dirpath / self.filename

    def record(self, trainer: pl.Trainer) -> None:
        cm = trainer.callback_metrics
        it = _new_point(cm, "train/iteration", self._last_train)
        if it is not None:
            self._last_train = it
            for name, key in CURVES.items():
                if key in cm:
                    self.history[name].append((it, float(cm[key])))
        it = _new_point(cm, "val/iteration", self._last_val)
        if it is not None and "val/fid" in cm:
            self._last_val = it
            self.history["fid"].append((it, float(cm["val/fid"])))
            if "val_floor/fid" in cm:
                self.fid_floor = float(cm["val_floor/fid"])

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int) -> None:
        self.record(trainer)

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.record(trainer)
        if trainer.is_global_zero:
            from gan.evaluation.plots import plot_curves

            plot_curves(self.history, self.path, self.fid_floor, title=f"{self.dirpath.name}: {pl_module.iteration} GAN iterations")
            log.info("learning curves: %s", self.path)

    def state_dict(self) -> dict[str, Any]:
        return {"history": self.history, "fid_floor": self.fid_floor, "last_train": self._last_train, "last_val": self._last_val}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.history = {k: [tuple(p) for p in v] for k, v in state_dict.get("history", {}).items()}
        for k in (*CURVES, "fid"):
            self.history.setdefault(k, [])
        self.fid_floor = state_dict.get("fid_floor")
        self._last_train, self._last_val = state_dict.get("last_train"), state_dict.get("last_val")
