"""``iterations=auto``: a budget in minutes, turned into GAN iterations on the machine that trains.

Before the run is built, a throwaway copy of the run's model and data trains a few iterations
(no logger, callbacks or files) and its iteration rate is measured; the budget becomes
``floor(rate * train_minutes * 60)`` iterations, rounded down to a multiple of ``log_every``. From
then on the run is an ordinary run of that many iterations: the schedules, the EMA ramp, the
evaluation points and exact resume all count iterations, ``config.yaml`` and every checkpoint
record the count, and a resume of the run (``iterations=auto`` again, or the count itself) takes
the recorded count instead of measuring again. A rerun elsewhere with ``iterations=<that count>``
trains the same run.

``train_minutes`` is the training loop's time; the evaluations in training, the end-of-training
evaluation and the metrics classifier's first-use training come on top (README, "Budget").
"""

from __future__ import annotations

import contextlib
import logging
import math
import tempfile
import time
import warnings
from typing import Any

import pytorch_lightning as pl
from omegaconf import DictConfig, open_dict

from gan.runtime.build import build_gan, build_trainer, instantiate
from gan.runtime.config import auto_iterations
from gan.runtime.errors import ConfigError
from gan.runtime.memory import release_free_memory

log = logging.getLogger(__name__)

# the probe: untimed iterations first (oneDNN builds its kernels on the first calls), then timed
# ones until both counts below are reached (or MAX_TIMED iterations)
WARMUP = 5
MIN_TIMED = 20
MIN_SECONDS = 3.0
MAX_TIMED = 300
# the provisional budget the probe's schedules decay over: long enough that they stay at their
# starting values while it runs
PROBE_BUDGET = 10**6


class RateProbe(pl.Callback):
    """Times GAN iterations after ``warmup`` untimed ones and stops training once at least
    ``min_timed`` iterations and ``min_seconds`` are timed (or ``max_timed`` iterations)."""

    def __init__(self, warmup: int = WARMUP, min_timed: int = MIN_TIMED, min_seconds: float = MIN_SECONDS,
                 max_timed: int = MAX_TIMED) -> None:
        self.warmup, self.min_timed, self.min_seconds, self.max_timed = warmup, min_timed, min_seconds, max_timed
        self.batches = 0
        self.timed = 0
        self.seconds = 0.0
        self._start: float | None = None

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        self.batches += 1
        now = time.perf_counter()
        if self.batches == self.warmup:
            self._start = now
        elif self._start is not None:
            self.timed = self.batches - self.warmup
            self.seconds = now - self._start
            if self.timed >= self.max_timed or (self.timed >= self.min_timed and self.seconds >= self.min_seconds):
                trainer.should_stop = True

    @property
    def rate(self) -> float:
        """GAN iterations per second over the timed iterations."""
        if self.timed == 0:
            raise RuntimeError("iterations=auto: the rate probe timed no iteration (the data ran out first)")
        return self.timed / self.seconds


def check_auto(cfg: DictConfig) -> None:
    """``iterations=auto`` needs ``train_minutes`` and one training process (each DDP process would
    measure its own rate and could pick another count)."""
    minutes = cfg.get("train_minutes")
    if not (isinstance(minutes, (int, float)) and not isinstance(minutes, bool) and 0 < minutes < math.inf):
        raise ConfigError(f"iterations=auto: train_minutes={minutes!r} must be a positive number of minutes")
    devices, nodes = cfg.trainer.get("devices", 1), cfg.trainer.get("num_nodes", 1)
    if devices not in (1, "1", [0]) or nodes not in (1, None):
        raise ConfigError(f"iterations=auto measures the rate in one process, and trainer.devices={devices} "
                          f"trainer.num_nodes={nodes} train in several; set iterations=N")


def resolve_iterations(cfg: DictConfig, checkpoint: dict | None = None) -> None:
    """Replace ``iterations=auto`` in ``cfg`` by a count: the one recorded in ``checkpoint`` (the
    run being resumed), else ``train_minutes`` at the rate :func:`measure_rate` finds here."""
    if not auto_iterations(cfg):
        return
    check_auto(cfg)
    recorded = ((checkpoint or {}).get("gan") or {}).get("config") or {}
    if isinstance(recorded.get("iterations"), int):
        count = recorded["iterations"]
        log.info("iterations=auto: %d iterations, the count the resumed run fixed at its start", count)
    else:
        rate = measure_rate(cfg)
        count = iterations_for(rate, float(cfg.train_minutes), int(cfg.get("log_every") or 1))
        log.info("iterations=auto: %.2f GAN iterations/s measured here, so %d iterations for train_minutes=%g "
                 "(rerun exactly with iterations=%d)", rate, count, cfg.train_minutes, count)
    with open_dict(cfg):
        cfg.iterations = count


def iterations_for(rate: float, minutes: float, multiple: int = 1) -> int:
    """The iterations that ``minutes`` hold at ``rate`` per second, rounded down to a multiple of
    ``multiple`` (at least one ``multiple``)."""
    count = int(rate * minutes * 60)
    return max(multiple, count // multiple * multiple)


@contextlib.contextmanager
def quiet_lightning():
    """Lightning's INFO lines (the accelerator, the device count) and the data module's are about
    the probe, not the run: shown from WARNING up while it runs."""
    prefixes = ("pytorch_lightning", "lightning.pytorch", "lightning.fabric", "gan.data")
    names = [name for name in list(logging.root.manager.loggerDict) if name.startswith(prefixes)]
    loggers = [logging.getLogger(name) for name in {*names, *prefixes}]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)


def measure_rate(cfg: DictConfig) -> float:
    """GAN iterations per second of the run ``cfg`` describes, on this machine: a throwaway copy
    of its model and data, on the trainer the run would get (:func:`gan.runtime.build.build_trainer`: the
    same accelerator check and precision choice), trains a few iterations in one process with no
    logger, callbacks or checkpoints, in a temporary folder."""
    probe = RateProbe()
    with tempfile.TemporaryDirectory(prefix="gan-rate-probe-") as folder, warnings.catch_warnings(), quiet_lightning():
        warnings.simplefilter("ignore")  # Lightning's notes are about the probe, not the run
        probe_cfg = cfg.copy()
        with open_dict(probe_cfg):
            probe_cfg.iterations = PROBE_BUDGET
            probe_cfg.trainer.update(devices=1, num_nodes=1, max_epochs=-1, max_steps=-1, enable_checkpointing=False,
                                     enable_progress_bar=False, enable_model_summary=False, default_root_dir=folder)
        trainer = build_trainer(probe_cfg, [probe], [])
        trainer.fit(build_gan(probe_cfg), datamodule=instantiate(probe_cfg.data))
        del trainer
    release_free_memory(collect_cycles=True)  # the throwaway copy's memory, before the run allocates its own
    return probe.rate
