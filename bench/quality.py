"""Time to quality: wall time of the default ``make train`` recipe until its FID first falls
below a threshold, so that speed-ups are judged by good digits sooner, not iterations/s alone."""

from __future__ import annotations

import time
from collections.abc import Sequence

import pytorch_lightning as pl
from omegaconf import open_dict

from gan.train import train


class FidTrace(pl.Callback):
    """Records (iteration, seconds since training started, FID) of each evaluation in
    ``pl_module.history``, and stops training once the FID is below the lowest of ``thresholds``
    or ``max_seconds`` of training have passed. It runs before the evaluation callback, so it sees
    an evaluation at the next iteration's end (or the run's end)."""

    def __init__(self, thresholds: Sequence[float] = (), max_seconds: float | None = None) -> None:
        self.thresholds = sorted(thresholds)
        self.max_seconds = max_seconds
        self.start: float | None = None
        self.trace: list[dict] = []

    def on_train_start(self, trainer, pl_module) -> None:
        self.start = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.record(trainer, pl_module)

    def on_train_end(self, trainer, pl_module) -> None:
        self.record(trainer, pl_module)

    def record(self, trainer, pl_module) -> None:
        seconds = round(time.perf_counter() - self.start, 1)
        for it, fid in pl_module.history.series("fid")[len(self.trace):]:
            self.trace.append({"iteration": it, "seconds": seconds, "fid": round(float(fid), 2)})
            if self.thresholds and float(fid) < self.thresholds[0]:
                trainer.should_stop = True
        if self.max_seconds is not None and seconds >= self.max_seconds:
            trainer.should_stop = True

    def first_below(self) -> dict[str, dict | None]:
        """For each threshold, the first evaluation below it (None: never)."""
        return {f"{t:g}": next((p for p in self.trace if p["fid"] < t), None) for t in self.thresholds}


def time_to_quality(cfg, thresholds: list[float], max_iterations: int, eval_every: int, eval_samples: int,
                    max_seconds: float | None = None) -> dict:
    """Train ``cfg``'s recipe with a budget of ``max_iterations`` (its schedules decay over it),
    evaluating every ``eval_every`` iterations on ``eval_samples`` samples, until the FID is
    below every threshold or ``max_seconds`` of training have passed."""
    with open_dict(cfg):
        cfg.iterations = max_iterations
        cfg.eval_every = eval_every
        cfg.eval_samples = cfg.eval_final_samples = eval_samples
    tracer = FidTrace(thresholds, max_seconds)
    train(cfg, callbacks=[tracer])
    return {"thresholds": tracer.thresholds, "reached": tracer.first_below(), "trace": tracer.trace,
            "eval_every": eval_every, "eval_samples": eval_samples, "max_iterations": max_iterations,
            "max_seconds": max_seconds}
