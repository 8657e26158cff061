"""Callbacks of every training run, on the GAN-iteration axis (``pl_module.iteration``, README
"Counting"): sample grids, the checkpoint cadence, the progress bar, and a clean stop on a signal."""

from __future__ import annotations

import logging
import math
import signal
import threading
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import Callback, TQDMProgressBar
from pytorch_lightning.callbacks.progress.tqdm_progress import convert_inf
from torch import Tensor
from torchvision.utils import make_grid, save_image

from gan.runtime.checkpoints import LAST, checkpoint_dir, save_atomically
from gan.runtime.config import positive_int
from gan.runtime.files import write_atomically
from gan.metrics.generate import unit_images
from gan.data.images import to_unit_range
from gan.runtime.pictures import frame_name, labelled_halves
from gan.runtime.tensorboard import add_to_loggers

log = logging.getLogger(__name__)

# in train()'s result when a signal (StopOnSignal) ended the run early, its checkpoint saved: the
# signal's number (SIGTERM's when the signal came to another rank)
STOPPED_BY_SIGNAL = "train/stopped_by_signal"


def evenly_spaced_every(budget: int, points: int) -> int:
    """The interval that puts about ``points`` events (evaluations, timelapse frames) evenly over
    ``budget`` GAN iterations (the last of them at or just before the end, which has one anyway)."""
    return max(1, -(-int(budget) // int(points)))


def epoch_budget(trainer: pl.Trainer) -> int | None:
    """GAN iterations of a run trained by ``trainer.max_epochs`` (None when that is unlimited)."""
    epochs, batches = trainer.max_epochs, trainer.num_training_batches
    if epochs is None or epochs < 0 or not math.isfinite(batches):
        return None
    return int(epochs * batches)


def stop_signal(trainer: pl.Trainer) -> str | None:
    """The name of the signal that stopped training (:class:`StopOnSignal`), None if none did."""
    return next((cb.received for cb in trainer.callbacks if isinstance(cb, StopOnSignal) and cb.received), None)


def early_stop(signal_name: str | None, iteration: int, budget: int | None) -> str | None:
    """Why training ended before its budget: the signal that stopped it, or a trainer limit (such
    as ``trainer.max_time``) when it ended short of ``budget`` without one; None when it ended
    because the budget was reached (or, without a budget, its epochs)."""
    if signal_name is not None:
        return signal_name
    if budget is not None and iteration < budget:
        return "a trainer limit before the budget"
    return None


def stopped_by(trainer: pl.Trainer, pl_module: pl.LightningModule) -> str | None:
    """:func:`early_stop` of a run that has just ended, in its own process."""
    return early_stop(stop_signal(trainer), pl_module.iteration, getattr(pl_module, "max_iterations", None))


def real_vs_generated(real: Tensor, fake: Tensor, nrow: int = 8) -> Tensor:
    """A picture whose top half is real images and bottom half generated ones (both in [0, 1]),
    labelled "real" and "generated" with a red divider between them."""
    k = min(len(real), len(fake)) // nrow * nrow
    if k == 0:
        raise ValueError(f"need at least {nrow} real and {nrow} generated images for a grid")
    half = min(k, nrow * 4)
    return labelled_halves(*(make_grid(x[:half], nrow=nrow, padding=2, pad_value=1.0) for x in (real, fake)))


class SampleGrids(Callback):
    """Every ``every`` GAN iterations, at ``frames`` points spread evenly over the budget (the
    timelapse's frames, however long the run), at iteration 1 and at the end, draw two grids on the
    iteration axis.

    ``samples/fixed_noise``: G(fixed noise), the same noise every time, so grids compare over time.
    ``samples/real_vs_generated``: the current real batch on top, generated images below.
    Each goes to every logger that takes images (TensorBoard) and, as PNG, into ``dirpath``; each
    fixed-noise grid is also kept there as ``fixed_noise_<iteration>.png`` (the timelapse's frames).
    """

    def __init__(self, every: int = 200, dirpath: str | None = None, nrow: int = 8, frames: int = 8) -> None:
        self.every = positive_int("sample_every", every)
        self.frames = positive_int("callbacks.sample_grids.frames", frames)
        self.dirpath = Path(dirpath) if dirpath else None
        self.nrow = nrow
        self.frame_every: int | None = None  # set from the budget when training starts
        self.last_drawn: int | None = None
        self._last_real: Tensor | None = None

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        budget = getattr(pl_module, "max_iterations", None) or epoch_budget(trainer)
        self.frame_every = evenly_spaced_every(budget, self.frames) if budget else None

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int) -> None:
        it = pl_module.iteration
        frame = self.frame_every is not None and it % self.frame_every == 0
        if it % self.every == 0 or frame or it == 1 or trainer.should_stop:
            self.draw(trainer, pl_module, batch[0] if isinstance(batch, (list, tuple)) else batch)

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.last_drawn != pl_module.iteration and self._last_real is not None:
            self.draw(trainer, pl_module, self._last_real)

    def draw(self, trainer: pl.Trainer, pl_module: pl.LightningModule, real: Tensor) -> None:
        self._last_real = real[: 4 * self.nrow].detach()
        self.last_drawn = pl_module.iteration
        if not trainer.is_global_zero:
            return
        fake = unit_images(pl_module.sampling_generator, pl_module.fixed_noise)
        real01 = to_unit_range(self._last_real, pl_module.value_range).cpu()
        grids = {
            "fixed_noise": make_grid(fake, nrow=self.nrow, padding=2, pad_value=1.0),
            "real_vs_generated": real_vs_generated(real01, fake, self.nrow),
        }
        for name, grid in grids.items():
            add_to_loggers(trainer, "image", f"samples/{name}", grid, pl_module.iteration)
            if self.dirpath is not None:
                write_atomically(self.dirpath / f"{name}.png", lambda p, g=grid: save_image(g, p))
        if self.dirpath is not None:
            write_atomically(self.dirpath / frame_name(pl_module.iteration), lambda p: save_image(grids["fixed_noise"], p))


class IterationCheckpoint(Callback):
    """Writes ``<dirpath>/last.ckpt`` every ``every`` GAN iterations and when training ends, each
    time atomically (:func:`gan.runtime.checkpoints.save_atomically`). ``dirpath`` defaults to the run's
    ``checkpoints`` folder (:func:`gan.runtime.checkpoints.checkpoint_dir` of ``trainer.default_root_dir``)."""

    def __init__(self, every: int = 500, dirpath: str | None = None, filename: str = LAST) -> None:
        self.every = positive_int("checkpoint_every", every)
        self.dirpath = Path(dirpath) if dirpath else None
        self.filename = filename
        self.last_saved: int | None = None

    @property
    def path(self) -> Path:
        assert self.dirpath is not None, "setup() sets the folder"
        return self.dirpath / self.filename

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if self.dirpath is None:
            self.dirpath = checkpoint_dir(trainer.default_root_dir)

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int) -> None:
        # At the budget (should_stop) save here, mid-epoch, as the periodic saves do: a resume then
        # continues this epoch's data order instead of Lightning starting a new epoch.
        if pl_module.iteration % self.every == 0 or trainer.should_stop:
            self.save(trainer, pl_module)

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # training by epochs ends without should_stop: save the final state here
        if self.last_saved != pl_module.iteration:
            self.save(trainer, pl_module)

    def save(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        save_atomically(trainer, pl_module, self.path)
        self.last_saved = pl_module.iteration


class IterationProgressBar(TQDMProgressBar):
    """Lightning's progress bar, counting GAN iterations against the ``iterations`` budget.

    Without a budget (training by ``trainer.max_epochs``) it behaves as Lightning's per-epoch bar.
    The postfix shows the latest averaged D and G losses.
    """

    def __init__(self, refresh_rate: int = 10, **kwargs: Any) -> None:
        super().__init__(refresh_rate=refresh_rate, **kwargs)

    @staticmethod
    def _budget(pl_module: pl.LightningModule) -> int | None:
        return getattr(pl_module, "max_iterations", None)

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        super().on_train_start(trainer, pl_module)
        budget = self._budget(pl_module)
        if budget is not None:
            bar = self.train_progress_bar
            bar.reset(total=budget)
            bar.initial = 0
            bar.n = min(pl_module.iteration, budget)
            bar.set_description("GAN iterations")

    def on_train_epoch_start(self, trainer: pl.Trainer, *args: Any) -> None:
        if self._budget(trainer.lightning_module) is None:
            super().on_train_epoch_start(trainer, *args)

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int) -> None:
        budget = self._budget(pl_module)
        if budget is None:
            return super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)
        n = pl_module.iteration
        bar = self.train_progress_bar
        if bar is not None and not bar.disable and self._should_update(n, convert_inf(bar.total)):
            bar.n = n
            bar.set_postfix(self.get_metrics(trainer, pl_module), refresh=False)
            bar.refresh()

    def get_metrics(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> dict:
        metrics = super().get_metrics(trainer, pl_module)
        metrics.pop("v_num", None)
        scalars = pl_module.bookkeeping.latest
        for key in ("d_loss", "g_loss"):
            if key in scalars:
                metrics[key] = f"{scalars[key]:.3f}"
        return metrics


class StopOnSignal(Callback):
    """SIGTERM or SIGINT (Ctrl+C) ends training cleanly at the end of the current GAN iteration.

    The handler only sets a flag; at the batch's end this callback sets ``trainer.should_stop``,
    so :class:`IterationCheckpoint` (listed after it) saves ``last.ckpt`` and the grids are drawn.
    A second Ctrl+C interrupts at once, as usual. List it before the checkpoint callback.
    """

    # SIGUSR2: what submitit (hydra/launcher=submitit_slurm) sends before a SLURM time limit
    SIGNALS = ("SIGTERM", "SIGINT", "SIGUSR2")

    def __init__(self) -> None:
        self.received: str | None = None
        self.signum = signal.SIGTERM  # what another rank's signal counts as
        self._previous: dict[int, Any] = {}
        self._checkpoint: IterationCheckpoint | None = None

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        self._checkpoint = next((c for c in trainer.callbacks if isinstance(c, IterationCheckpoint)), None)

    def _handle(self, signum: int, frame: Any) -> None:
        name = signal.Signals(signum).name
        if self.received is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.received, self.signum = name, signum
        saving = "saving a checkpoint and " if self._checkpoint is not None else ""
        log.warning("%s received: %sstopping after this GAN iteration", name, saving)

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        for name in self.SIGNALS:
            signum = getattr(signal, name, None)
            if signum is None:  # not on this platform
                continue
            self._previous[signum] = signal.getsignal(signum)
            signal.signal(signum, self._handle)

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int) -> None:
        # Every rank stops at the same iteration if any rank got a signal (else one rank would wait
        # in the checkpoint's barrier while another waits in the next all-reduce).
        if trainer.strategy.reduce_boolean_decision(self.received is not None, all=False):
            self.received = self.received or "a signal on another rank"
            trainer.should_stop = True
            trainer.callback_metrics[STOPPED_BY_SIGNAL] = torch.tensor(float(self.signum))

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._restore()
        if self.received is None:
            return
        saved = self._checkpoint is not None and self._checkpoint.last_saved == pl_module.iteration
        budget = getattr(pl_module, "max_iterations", None)
        where = f"GAN iteration {pl_module.iteration}" + (f" of {budget}" if budget is not None else "")
        if saved:
            log.warning("interrupted by %s at %s; resume with ckpt_path=%s", self.received, where,
                        self._checkpoint.path.resolve())
        else:
            log.warning("interrupted by %s at %s; no checkpoint was saved (callbacks.checkpoint is off)",
                        self.received, where)

    def on_exception(self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException) -> None:
        self._restore()

    def _restore(self) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()
