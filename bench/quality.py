"""Time to quality: wall time of the default ``make train`` recipe until its FID first falls
below a threshold, so that speed-ups are judged by good digits sooner, not iterations/s alone."""

from __future__ import annotations

import time

import pytorch_lightning as pl
from omegaconf import open_dict

from gan.train import train


class FidTrace(pl.Callback):
    """Records (iteration, seconds since training started, FID) of each evaluation in
    ``pl_module.history``, and stops training once the FID is below ``threshold``. It runs before
    the evaluation callback, so it sees an evaluation at the next iteration's end (or the run's end)."""

    def __init__(self, threshold: float | None = None) -> None:
        self.threshold = threshold
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
            if self.threshold is not None and float(fid) < self.threshold:
                trainer.should_stop = True


def time_to_quality(cfg, threshold: float, max_iterations: int, eval_every: int, eval_samples: int) -> dict:
    with open_dict(cfg):
        cfg.iterations = max_iterations
        cfg.eval_every = eval_every
        cfg.eval_samples = cfg.eval_final_samples = eval_samples
    tracer = FidTrace(threshold)
    train(cfg, callbacks=[tracer])
    reached = next((p for p in tracer.trace if p["fid"] < threshold), None)
    return {"threshold": threshold, "reached": reached, "trace": tracer.trace,
            "eval_every": eval_every, "eval_samples": eval_samples}
