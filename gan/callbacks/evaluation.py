"""Training-time evaluation: every ``every`` GAN iterations (by default at ``points`` evenly spaced
points of the budget) score ``n_samples`` samples, and at the end ``final_samples``, with
:class:`gan.metrics.evaluator.Evaluator`, log ``val/*`` and the floor ``val_floor/*``
(:func:`gan.runtime.tensorboard.log_evaluation`: TensorBoard gets the floor as text), add them to ``pl_module.history`` and to ``trainer.callback_metrics`` (so
``train()`` returns ``val/fid``), and keep the best-FID checkpoint as ``best_fid.ckpt`` beside
``last.ckpt``.

List it before the checkpoint callback, so ``last.ckpt`` of an evaluated iteration holds its state
(else a resumed run may evaluate that iteration again), and before the diagnostics, so they see its
figures at the same iteration.
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import Callback
from torch import Tensor

from gan.callbacks.training import epoch_budget, evenly_spaced_every, stop_signal
from gan.runtime.checkpoints import BEST_FID, checkpoint_dir, save_atomically
from gan.runtime.config import ConfigError, positive_int
from gan.runtime.files import write_atomically
from gan.metrics.generate import balanced_labels, sample_images
from gan.runtime.memory import release_free_memory
from gan.metrics.classifier import get_recipe
from gan.metrics.conditional import conditional_metrics, summary
from gan.metrics.evaluator import MIN_SAMPLES, Evaluator
from gan.runtime.tensorboard import log_evaluation

log = logging.getLogger(__name__)


# ---------------------------------------------------------------------------------- evaluation
class Evaluation(Callback):
    """Score generated samples every ``every`` GAN iterations and at the end of training.

    Args:
        every: evaluate every this many GAN iterations (``eval_every``); None spaces ``points``
            evaluations evenly over the budget (``budget``, else the epochs' batches; without
            either, only the end is evaluated).
        points: evaluations in training when ``every`` is None (``eval_points``), plus the end.
        budget: the training budget in GAN iterations (``iterations``), or None.
        n_samples: samples drawn at each point in training (``eval_samples``); the same noise every
            time, drawn from ``seed``, so figures compare across iterations. The floor uses as many
            real images. Each point logs the count it used as ``val/eval_samples``.
        final_samples: samples drawn at the end (``eval_final_samples``; None: ``n_samples``).
        dirpath: where ``best_fid.ckpt`` goes (default: the run's ``checkpoints`` folder).
        keep_best: keep ``best_fid.ckpt`` at all.
        recipe: the feature classifier's recipe (``full``, or ``quick`` for tests).
        data_root: folder holding ``MNIST/raw`` (default ``$GAN_DATA_ROOT``, else ``./data``).
        seed: seeds the evaluation noise.
        batch_size: generator batch when drawing the samples.
        dataset: the data module's dataset (``MNIST``, ``FashionMNIST``): the classifier, the
            reference statistics and the floor are that dataset's.
    """

    def __init__(
        self,
        every: int | None = 250,
        n_samples: int = 2000,
        points: int = 8,
        budget: int | None = None,
        final_samples: int | None = None,
        dirpath: str | None = None,
        recipe: str = "full",
        data_root: str | None = None,
        seed: int = 0,
        batch_size: int = 500,
        dataset: str = "MNIST",
        final: bool = True,
        keep_best: bool = True,
    ) -> None:
        self.every = positive_int("eval_every", every, nullable=True)
        self.points = positive_int("eval_points", points)
        self.budget = positive_int("iterations", budget, nullable=True)
        for key, n in (("eval_samples", n_samples), ("eval_final_samples", final_samples)):
            if n is not None and not (positive_int(key, n) >= MIN_SAMPLES):
                raise ConfigError(f"{key}={n}: must be at least {MIN_SAMPLES}")
        self.final_samples = int(final_samples if final_samples is not None else n_samples)
        get_recipe(recipe)  # a bad recipe name fails now, not at the first evaluation
        self.n_samples = int(n_samples)
        self.dirpath = Path(dirpath) if dirpath else None
        self.keep_best = bool(keep_best)
        self.recipe = recipe
        self.data_root = data_root
        self.seed = int(seed)
        self.batch_size = int(batch_size)
        self.final = bool(final)  # also evaluate when training ends (off: only every `every` iterations)
        self.dataset = dataset
        self.best_fid = math.inf
        self.best_iteration: int | None = None
        self.last_evaluated: int | None = None
        self.latest: dict[str, float] = {}
        self._evaluator = None

    @property
    def best_path(self) -> Path | None:
        return self.dirpath / BEST_FID if self.keep_best and self.dirpath is not None else None

    @property
    def evaluator(self) -> Evaluator:
        if self._evaluator is None:  # the classifier trains (or loads) at the first evaluation
            self._evaluator = Evaluator.from_recipe(self.data_root, self.recipe, dataset=self.dataset)
        return self._evaluator

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if self.dirpath is None:
            self.dirpath = checkpoint_dir(trainer.default_root_dir)

    # ------------------------------------------------------------------ hooks
    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.every is None:
            budget = self.budget or epoch_budget(trainer)
            self.every = evenly_spaced_every(budget, self.points) if budget else None
            log.info("evaluation every %s GAN iterations (%d samples) and at the end (%d samples)",
                     self.every or "(no budget known: only at the end)", self.n_samples, self.final_samples)
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
        at_end = self.final and trainer.should_stop and stop_signal(trainer) is None
        if at_end or (self.every is not None and pl_module.iteration % self.every == 0):
            self.evaluate(trainer, pl_module, final=at_end)

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.last_evaluated == pl_module.iteration or not self.final:
            return
        if stop_signal(trainer) is not None:  # leave the time to the checkpoint; the resumed run evaluates at its end
            log.info("training was interrupted: no final evaluation at GAN iteration %d", pl_module.iteration)
            return
        self.evaluate(trainer, pl_module, final=True)

    def state_dict(self) -> dict[str, Any]:
        return {"best_fid": self.best_fid, "best_iteration": self.best_iteration, "last_evaluated": self.last_evaluated}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.best_fid = float(state_dict.get("best_fid", math.inf))
        self.best_iteration = state_dict.get("best_iteration")
        self.last_evaluated = state_dict.get("last_evaluated")

    # ------------------------------------------------------------------ the work
    def samples(self, pl_module: pl.LightningModule, generator: torch.nn.Module | None = None,
                n: int | None = None) -> Tensor:
        """``n`` (default ``n_samples``) images in [0, 1] from the same noise every time (G in eval
        mode, no_grad), drawn from ``generator`` (default: the EMA generator when there is one, else G)."""
        generator = pl_module.sampling_generator if generator is None else generator
        n = n or self.n_samples
        return sample_images(generator, pl_module.noise, n, self.seed, self.batch_size, self.labels(pl_module, n))

    def labels(self, pl_module: pl.LightningModule, n: int) -> Tensor | None:
        """A conditional GAN's ``n`` sample labels: every class, balanced; None for an unconditional GAN."""
        classes = getattr(pl_module, "num_classes", None)
        return None if classes is None else balanced_labels(n, range(classes))

    def evaluate(self, trainer: pl.Trainer, pl_module: pl.LightningModule, final: bool = False) -> dict[str, float] | None:
        """Score the current generator: ``final_samples`` samples if ``final``, else ``n_samples``."""
        it = pl_module.iteration
        n = self.final_samples if final else self.n_samples
        result = None
        if trainer.is_global_zero:
            # whatever the evaluation draws (first-use classifier, reference statistics) leaves the
            # training's RNG as it was: the weights never depend on the evaluation cadence
            cuda = [pl_module.device.index or 0] if pl_module.device.type == "cuda" else []
            with torch.random.fork_rng(devices=cuda):
                samples = self.samples(pl_module, n=n)
                metrics = self.evaluator.metrics(samples)
                if getattr(pl_module, "num_classes", None) is not None:  # label_accuracy, intra_fid
                    metrics |= summary(conditional_metrics(self.evaluator, samples, self.labels(pl_module, n)))
                if pl_module.generator_ema is not None:  # the raw G beside its average
                    metrics["fid_raw"] = self.evaluator.fid(self.samples(pl_module, pl_module.generator, n=n))
                result = (metrics, self.evaluator.floor(n))
                del samples
            release_free_memory()  # the samples, activations and distance blocks, before training goes on
        metrics, floor = trainer.strategy.broadcast(result, src=0)
        self.last_evaluated = it
        improved = metrics["fid"] < self.best_fid
        if improved:
            self.best_fid, self.best_iteration = float(metrics["fid"]), it
        pl_module.history.add_evaluation(it, metrics, floor, n)
        scalars = {f"val/{k}": float(v) for k, v in metrics.items()} | {"val/best_fid": self.best_fid, "val/eval_samples": float(n)}
        floor_scalars = {f"val_floor/{k}": float(v) for k, v in floor.items()}
        trainer.callback_metrics.update(
            {k: torch.tensor(v) for k, v in (scalars | floor_scalars).items()} | {"val/iteration": torch.tensor(float(it))}
        )
        self.latest = scalars
        if trainer.is_global_zero:
            log_evaluation(trainer, it, scalars, floor, n)
            log.info(
                "evaluation at GAN iteration %d (%d samples): FID %.3f (floor %.3f), KID %.4f, precision %.3f, "
                "recall %.3f, coverage %d/10, classifier score %.2f%s",
                it, n, metrics["fid"], floor["fid"], metrics["kid"], metrics["precision"],
                metrics["recall"], metrics["coverage"], metrics["classifier_score"], " (best so far)" if improved else "",
            )
            if "label_accuracy" in metrics:
                log.info("label accuracy %.4f, intra-FID %.3f, worst class %d (%.4f)", metrics["label_accuracy"],
                         metrics.get("intra_fid", math.nan), metrics["worst_class"], metrics["worst_class_accuracy"])
        if improved and self.best_path is not None:
            self._save_best(trainer, pl_module, it)
        return metrics

    def _note_path(self) -> Path | None:
        return self.best_path.with_suffix(".json") if self.best_path is not None else None

    def _save_best(self, trainer: pl.Trainer, pl_module: pl.LightningModule, iteration: int) -> None:
        """``best_fid.ckpt`` (atomic, finite weights only) and its note ``{fid, iteration}``."""
        assert self.best_path is not None
        save_atomically(trainer, pl_module, self.best_path)
        if trainer.is_global_zero:
            note = json.dumps({"fid": self.best_fid, "iteration": iteration}) + "\n"
            write_atomically(self._note_path(), lambda p: p.write_text(note))
        trainer.strategy.barrier("gan-best-fid-note")
