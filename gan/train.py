"""Train a GAN: ``python -m gan.train [overrides]``; ``train(cfg)`` is the same as a function.

Budgets and cadences count GAN iterations, not Lightning's ``global_step`` (README, "Counting").
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import sys
import warnings
from pathlib import Path
from typing import NamedTuple

import hydra
import pytorch_lightning as pl
from omegaconf import DictConfig, OmegaConf, open_dict
from pytorch_lightning.utilities import rank_zero_only

from gan.runtime.budget import resolve_iterations
from gan.runtime.build import build_run, build_trainer
from gan.callbacks.training import STOPPED_BY_SIGNAL, early_stop
from gan.runtime.checkpoints import (
    check_fits,
    check_resumable,
    checkpoint_dir,
    last_checkpoint,
    load_checkpoint,
    resolve_checkpoint,
    run_dir_of,
)
from gan.runtime.config import check_group_choices, validate
from gan.runtime.console import print_config_tree
from gan.runtime.errors import ConfigError, RunError, exit_after_signal, main_guard
from gan.runtime.naming import register_resolvers
from gan.runtime.runs import (
    CONFIG_FILE,
    FINISHED as FINISHED_STATUS,
    METRICS_FILE,
    PARENT_FILE,
    RunLock,
    move_log_file,
    write_hydra_record,
    write_parent,
    write_run_files,
)

log = logging.getLogger("gan.train")
FINISHED = "run/finished"  # in train()'s result: 1.0 when the run reached its budget
register_resolvers()  # before @hydra.main names the run folder (gan/runtime/naming.py)


class Plan(NamedTuple):
    """Where a run writes, and what it resumes from."""

    run_dir: Path
    checkpoint: Path | None = None  # the checkpoint resumed from
    ckpt: dict | None = None  # its contents
    resumed_at: int | None = None  # its GAN iteration
    parent_run: Path | None = None  # the run folder the checkpoint lies in, if any
    in_place: bool = False  # continues the checkpoint's own run folder


def plan_run(cfg: DictConfig) -> Plan:
    """Decide where the run writes (and set ``cfg.paths.output_dir``), refusing a folder that holds
    another run. A resume from a run's own ``last.ckpt`` (``ckpt_path=last`` too) continues that run
    in place; from any other checkpoint (``best_fid.ckpt``, an older copy, a file from elsewhere) it
    starts a new run folder that records its parent, so the run's newer ``last.ckpt`` is never replaced."""
    checkpoint = resolve_checkpoint(cfg.get("ckpt_path"), cfg.paths.log_dir) or requeued_checkpoint(Path(cfg.paths.output_dir))
    plan = Plan(run_dir=Path(cfg.paths.output_dir))
    if checkpoint is not None:
        ckpt = load_checkpoint(checkpoint, trust=bool(cfg.get("trust_checkpoint")))
        resumed_at = int(ckpt["gan"]["iteration"])
        parent = run_dir_of(checkpoint)
        in_place = parent is not None and checkpoint.resolve() == last_checkpoint(parent).resolve()
        plan = Plan(parent if in_place else plan.run_dir, checkpoint, ckpt, resumed_at, parent, in_place)
    RunLock(plan.run_dir).check_free()  # a run still writing there is named before anything else
    if not plan.in_place:
        existing = [p for p in (last_checkpoint(plan.run_dir), plan.run_dir / CONFIG_FILE) if p.exists()]
        if existing:
            raise RunError(
                f"{plan.run_dir} already holds a run ({existing[0]}); resume it with "
                f"ckpt_path={last_checkpoint(plan.run_dir)}, or set paths.output_dir to a new folder"
            )
    with open_dict(cfg):
        cfg.paths.output_dir = str(plan.run_dir)
    return plan


def requeued_checkpoint(run_dir: Path) -> Path | None:
    """The ``last.ckpt`` a requeued SLURM job continues from: SLURM sets ``SLURM_RESTART_COUNT``
    in a job it requeued (submitit requeues on the time-limit signal), and the job's folder, the
    same as before, holds a run that did not finish. None in every other case."""
    try:
        restarts = int(os.environ.get("SLURM_RESTART_COUNT") or 0)
    except ValueError:
        restarts = 0
    checkpoint = last_checkpoint(run_dir)
    if restarts < 1 or not checkpoint.is_file():
        return None
    try:
        status = json.loads((run_dir / METRICS_FILE).read_text()).get("status")
    except (OSError, ValueError, AttributeError):
        status = None  # killed before it could say
    if status == FINISHED_STATUS:
        return None
    log.info("requeued SLURM job (restart %d): continuing the run in %s from its last.ckpt", restarts, run_dir)
    return checkpoint


def train(cfg: DictConfig, callbacks: list[pl.Callback] = ()) -> dict[str, float]:
    """Train from a composed config; returns the last training scalars and evaluation figures
    (``trainer.callback_metrics``). ``callbacks`` run before the config's own (the bench's timers).

    Everything that can be refused is checked before the run folder is written: the config, the
    checkpoint and whether it fits the model, the data files, the folder's lock."""
    validate(cfg)
    unlimited = (None, -1)
    if (cfg.get("iterations") is None and cfg.trainer.get("max_epochs", -1) in unlimited
            and cfg.trainer.get("max_steps", -1) in unlimited and cfg.trainer.get("max_time") is None):
        raise ConfigError("no training budget: set iterations=N (GAN iterations), trainer.max_epochs=N "
                         "or +trainer.max_time=DD:HH:MM:SS")
    plan = plan_run(cfg)
    resolve_iterations(cfg, plan.ckpt)  # iterations=auto: a count from this machine's rate (before seeding)
    if plan.ckpt is not None:
        check_resumable(plan.ckpt, cfg, plan.checkpoint)
    if cfg.get("seed") is not None:
        pl.seed_everything(int(cfg.seed), workers=True, verbose=False)

    purge = {"purge_step": plan.resumed_at + 1} if plan.in_place else {}
    run = build_run(cfg, **purge)
    model = run.model
    if plan.ckpt is not None:
        check_fits(plan.ckpt, model, plan.checkpoint)
    rank_zero = rank_zero_only.rank == 0
    if rank_zero:  # missing or corrupt data files fail now, not after the run folder is written
        run.datamodule.prepare_data()
        run.datamodule.setup("fit")
    trainer = build_trainer(cfg, [*callbacks, *run.callbacks], run.loggers)  # resolves precision=auto in cfg
    model.run_config = OmegaConf.to_container(cfg, resolve=True)

    with RunLock(plan.run_dir) if rank_zero else contextlib.nullcontext():
        if rank_zero:
            write_run_files(plan.run_dir, cfg, plan.resumed_at if plan.in_place else None)
            if not plan.in_place:
                write_hydra_record(plan.run_dir)
            if plan.checkpoint is not None and not plan.in_place:
                write_parent(plan.run_dir, plan.checkpoint, plan.parent_run, plan.resumed_at)
            move_log_file(plan.run_dir)
            if cfg.get("print_config"):
                print_config_tree(cfg)
        return _fit(cfg, plan, trainer, run)


def _fit(cfg: DictConfig, plan: Plan, trainer: pl.Trainer, run) -> dict[str, float]:
    if plan.in_place:
        log.info("resuming %s at GAN iteration %d, in its own run folder", plan.checkpoint, plan.resumed_at)
    elif plan.checkpoint is not None:
        log.info("resuming %s at GAN iteration %d in a new run folder (%s records the parent; the parent "
                 "run's own checkpoints are left as they are)", plan.checkpoint, plan.resumed_at, PARENT_FILE)
    log.info("run folder: %s", plan.run_dir.resolve())
    if trainer.is_global_zero:
        log.info(batch_size_line(int(cfg.data.batch_size), trainer.world_size, trainer.num_nodes))

    with warnings.catch_warnings():
        # Mid-epoch resume is handled by the data module's sampler (it skips consumed batches).
        warnings.filterwarnings("ignore", message=".*resuming from a checkpoint that ended before the epoch ended.*")
        warnings.filterwarnings("ignore", message=".*does not have many workers.*")
        # Lightning's log_every_n_steps is for self.log, which the template does not use.
        warnings.filterwarnings("ignore", message=".*smaller than the logging interval.*")
        # the EMA generator is only sampled from, so it stays in eval mode on purpose
        warnings.filterwarnings("ignore", message=".*module\\(s\\) in eval mode at the start of training.*")
        trainer.fit(run.model, datamodule=run.datamodule, ckpt_path=str(plan.checkpoint) if plan.checkpoint else None,
                    weights_only=not cfg.get("trust_checkpoint"))  # plain data only: loading runs no code
    # callback_metrics also come back from spawned DDP workers (STOPPED_BY_SIGNAL among them)
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}
    # from the metrics, not the model: a spawned DDP worker's model is not this process's
    iteration, budget = int(metrics.get("train/iteration", 0)), run.model.max_iterations
    signum = int(metrics.get(STOPPED_BY_SIGNAL, 0))
    why = early_stop(signal.Signals(signum).name if signum else None, iteration, budget)
    metrics[FINISHED] = float(why is None)
    if why is None:
        log.info("finished at GAN iteration %d; checkpoints in %s", iteration, checkpoint_dir(plan.run_dir))
    elif not signum:  # a trainer limit (a signal's stop is logged by StopOnSignal)
        log.warning("interrupted at GAN iteration %d of %d by a trainer limit; resume with ckpt_path=%s",
                    iteration, budget, last_checkpoint(plan.run_dir).resolve())
    return metrics


def batch_size_line(per_process: int, world_size: int, num_nodes: int = 1) -> str:
    """The log line that says how many images one GAN iteration sees, summed over processes."""
    processes = f"{world_size} process{'es' if world_size != 1 else ''}"
    if num_nodes > 1:
        processes += f" on {num_nodes} nodes"
    return (f"batch size: {per_process} per process x {processes} = effective batch {per_process * world_size} "
            "(D and G gradients are averaged over all processes)")


@hydra.main(version_base="1.3", config_path="../conf", config_name="train")
@main_guard
def main(cfg: DictConfig) -> float | None:
    metrics = train(cfg)
    if metrics.get(STOPPED_BY_SIGNAL):  # its checkpoint is written: now the signal's own ending
        exit_after_signal(int(metrics[STOPPED_BY_SIGNAL]))
    name = cfg.get("optimized_metric")
    # only a finished run is a result a sweeper may compare
    return metrics.get(name) if name and metrics.get(FINISHED) else None


if __name__ == "__main__":
    try:  # a group option that does not exist, before Hydra fails on it in many lines
        check_group_choices(sys.argv[1:])
    except ConfigError as err:
        sys.exit(f"error: {err}")
    main()
