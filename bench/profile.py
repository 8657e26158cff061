"""``make profile``: where one GAN iteration of a recipe spends its time, by phase and by op.

    python -m bench.profile [--recipe default] [--warmup 20] [--iterations 20] [overrides ...]

The template's training step is instrumented from outside (nothing in ``gan/`` knows about the
profiler): G's and D's forward passes, each network's update (backward and optimizer step), the
the training terms, the optimizer steps, the EMA, the end-of-iteration bookkeeping (scalars) and
each callback's end-of-batch hook run under ``torch.profiler.record_function`` labels. After
``warmup`` iterations, ``iterations`` are profiled; the first table gives each phase's time per
iteration (inclusive: a backward is counted in the update that runs it) and what is left of the
wall time (Lightning's loop, the data loader); the second, torch's own per-op table.
"""

from __future__ import annotations

import argparse
import functools
import logging
import os
import sys
import tempfile
import time
import warnings
from collections.abc import Callable

import pytorch_lightning as pl
import torch
from torch.profiler import ProfilerActivity, profile, record_function

# label -> what the README's summary calls it
PHASES = {
    "G forward": "G forward passes",
    "D forward": "D forward passes (real and generated, both phases)",
    "D update": "D update: backward + step",
    "G update": "G update: backward + step",
    "terms": "training terms (R1/R2's double backward, before the D update; mode seeking, ...)",
    "optimizer step": "optimizer steps (both networks; inside the updates)",
    "EMA": "EMA of G",
    "bookkeeping": "end of iteration: scalars, budget",
    "callbacks": "callbacks: checkpoints, grids, progress bar, ...",
}


def labelled(label: str, fn: Callable) -> Callable:
    @functools.wraps(fn)
    def run(*args, **kwargs):
        with record_function(label):
            return fn(*args, **kwargs)

    return run


def instrument(trainer: pl.Trainer, module: pl.LightningModule) -> None:
    """Wrap the parts of an iteration in labels (instance attributes: the classes stay as they are)."""
    module.generator.forward = labelled("G forward", module.generator.forward)
    module.discriminator.forward = labelled("D forward", module.discriminator.forward)
    update = module._update
    module._update = lambda opt, loss, net, clip, phase: labelled(f"{phase} update", update)(opt, loss, net, clip, phase)
    for term in module.terms:
        term.loss = labelled("terms", term.loss)
    module._update_ema = labelled("EMA", module._update_ema)
    module._end_iteration = labelled("bookkeeping", module._end_iteration)
    for optimizer in trainer.optimizers:
        optimizer.step = labelled("optimizer step", optimizer.step)
    for callback in trainer.callbacks:
        if not isinstance(callback, ProfileWindow):
            callback.on_train_batch_end = labelled("callbacks", callback.on_train_batch_end)


class ProfileWindow(pl.Callback):
    """Profiles GAN iterations ``warmup + 1`` .. ``warmup + iterations``."""

    def __init__(self, warmup: int, iterations: int) -> None:
        self.warmup, self.iterations = warmup, iterations
        self.profiler: profile | None = None
        self.wall = 0.0
        self._started = 0.0

    def on_train_start(self, trainer, pl_module) -> None:
        instrument(trainer, pl_module)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if pl_module.iteration == self.warmup:
            self.profiler = profile(activities=[ProfilerActivity.CPU])
            self.profiler.__enter__()
            self._started = time.perf_counter()
        elif pl_module.iteration == self.warmup + self.iterations and self.profiler is not None:
            self.wall = time.perf_counter() - self._started
            self.profiler.__exit__(None, None, None)


def phase_table(prof: profile, wall: float, iterations: int) -> list[tuple[str, float, float]]:
    """``(phase, ms per iteration, share of the wall time)`` per label, and the rest of the wall time.
    The phases do not overlap but for the optimizer steps, which are inside the updates."""
    totals = {e.key: e.cpu_time_total / 1e3 for e in prof.key_averages() if e.key in PHASES}  # ms
    wall_ms = wall * 1e3
    rows = [(PHASES[k], totals.get(k, 0.0) / iterations, totals.get(k, 0.0) / wall_ms) for k in PHASES]
    rest = max(wall_ms - sum(v for k, v in totals.items() if k != "optimizer step"), 0.0)
    rows.append(("the rest: Lightning's loop, the data loader, losses, zero_grad", rest / iterations, rest / wall_ms))
    return rows


def profile_run(args: argparse.Namespace):
    """Train ``warmup + iterations`` of the recipe with the profiling window; the config and window."""
    from omegaconf import open_dict

    from bench.recipes import compose_recipe
    from gan.train import train

    window = ProfileWindow(args.warmup, args.iterations)
    with tempfile.TemporaryDirectory() as tmp:
        cfg = compose_recipe(args.recipe, args.overrides, os.path.join(tmp, "run"))
        with open_dict(cfg):
            cfg.iterations = args.warmup + args.iterations
            if cfg.callbacks.get("evaluation"):
                cfg.callbacks.evaluation = None  # an evaluation is not an iteration's cost
        train(cfg, callbacks=[window])
    return cfg, window


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipe", default="default", help="default, cs231n_dcgan or cs231n_gan (bench/recipes.py)")
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--iterations", type=int, default=20)
    parser.add_argument("--rows", type=int, default=20, help="rows of the per-op table")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides of the recipe, e.g. trainer.precision=32-true")
    args = parser.parse_args(argv)
    logging.disable(logging.WARNING)  # the run's own log lines would bury the tables
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            cfg, window = profile_run(args)
    finally:
        logging.disable(logging.NOTSET)
    print(f"\n{args.recipe} recipe, {args.iterations} GAN iterations after {args.warmup} warm-up; precision "
          f"{cfg.trainer.precision}; {torch.get_num_threads()} threads; {args.iterations / window.wall:.2f} it/s under the profiler\n")
    print("| phase | ms per iteration | share of wall time |")
    print("|---|---|---|")
    for name, ms, share in phase_table(window.profiler, window.wall, args.iterations):
        print(f"| {name} | {ms:.1f} | {100 * share:.0f}% |")
    print()
    print(window.profiler.key_averages().table(sort_by="self_cpu_time_total", row_limit=args.rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
