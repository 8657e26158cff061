"""Time to quality: wall time of the default ``make train`` recipe until its FID first falls
below a threshold, so that speed-ups are judged by good digits sooner, not iterations/s alone."""

from __future__ import annotations

import time

import pytorch_lightning as pl
from omegaconf import open_dict

from bench.recipes import insert_callback

from gan.train import train

TRACE: list[dict] = []


class FidTrace(pl.Callback):
    """Records (iteration, seconds since training started, val/fid) after each evaluation, and
    stops training once the FID is below ``threshold`` (the question is answered)."""

    def __init__(self, threshold: float | None = None) -> None:
        self.threshold = threshold
        self.start: float | None = None
        self.last_fid = None

    def on_train_start(self, trainer, pl_module) -> None:
        self.start = time.perf_counter()
        TRACE.clear()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        fid = trainer.callback_metrics.get("val/fid")
        if fid is not None and fid is not self.last_fid:
            self.last_fid = fid
            TRACE.append({"iteration": pl_module.iteration, "seconds": round(time.perf_counter() - self.start, 1),
                          "fid": round(float(fid), 2)})
            if self.threshold is not None and float(fid) < self.threshold:
                trainer.should_stop = True


def make_trace(threshold: float | None = None) -> FidTrace:
    return FidTrace(threshold)


def time_to_quality(cfg, threshold: float, max_iterations: int, eval_every: int, eval_samples: int) -> dict:
    with open_dict(cfg):
        cfg.iterations = max_iterations
        cfg.eval_every = eval_every
        cfg.eval_samples = eval_samples
    # right after the evaluation callback, so it sees each FID at the iteration it was measured
    insert_callback(cfg, "fid_trace", {"_target_": "bench.quality.make_trace", "threshold": threshold}, after="evaluation")
    train(cfg)
    reached = next((p for p in TRACE if p["fid"] < threshold), None)
    return {"threshold": threshold, "reached": reached, "trace": list(TRACE),
            "eval_every": eval_every, "eval_samples": eval_samples}
