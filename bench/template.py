"""The template's own training path, timed from inside by a callback."""

from __future__ import annotations

import time

import pytorch_lightning as pl
from omegaconf import DictConfig, open_dict

from gan.train import train


class IterationTimer(pl.Callback):
    """Times GAN iterations ``warmup`` to the end of the run (listed first among the callbacks,
    so the end-of-run checkpoint is not in the window; periodic grids and logging are)."""

    def __init__(self, warmup: int) -> None:
        self.warmup = warmup
        self.start: float | None = None
        self.end: float | None = None
        self.count = 0

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if pl_module.iteration == self.warmup:
            self.start = time.perf_counter()
        elif pl_module.iteration > self.warmup:
            self.end = time.perf_counter()
            self.count = pl_module.iteration - self.warmup


def run_template(cfg: DictConfig, iterations: int, warmup: int) -> float:
    """Train with the user's defaults for ``warmup + iterations``; iterations per second after warm-up.

    Every callback and logger runs at its default cadence but the evaluation, which is off (its
    8 points per budget would all fall in a short timed window), so a run costs its training."""
    with open_dict(cfg):
        cfg.iterations = warmup + iterations
        # The evaluation runs at 8 points of the budget: in a bench's short budget those would all
        # fall inside the timed window, where a real run has them once per budget/8 iterations. It
        # is measured on its own (README, "Evaluation"); the throughput here is training's.
        cfg.callbacks.evaluation = None
    timer = IterationTimer(warmup)
    train(cfg, callbacks=[timer])  # first, so that the end-of-run checkpoint is not in the timed window
    assert timer.count == iterations, "the timer did not see the run"
    return timer.count / (timer.end - timer.start)
