"""Train a GAN: ``python -m gan.train [overrides]``; ``train(cfg)`` is the same as a function.

Budgets and cadences count GAN iterations, not Lightning's ``global_step`` (README, "Counting").
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import hydra
import pytorch_lightning as pl
from omegaconf import DictConfig, OmegaConf, open_dict

from gan.build import build_run, build_trainer
from gan.callbacks.training import STOPPED_BY_SIGNAL
from gan.checkpoints import (
    checkpoint_dir,
    last_checkpoint,
    load_checkpoint,
    resolve_checkpoint,
    run_dir_of,
)
from gan.config import validate
from gan.console import print_config_tree
from gan.errors import ConfigError, RunError, end_sweep_after_signal, main_guard
from gan.naming import register_resolvers
from gan.runs import write_run_files

log = logging.getLogger("gan.train")
register_resolvers()  # before @hydra.main names the run folder (gan/naming.py)


def _prepare_run_dir(cfg: DictConfig) -> tuple[Path | None, int | None]:
    """Decide where the run writes; for a resume, that is the checkpoint's own run folder."""
    checkpoint = resolve_checkpoint(cfg.get("ckpt_path"), cfg.paths.log_dir)
    if checkpoint is None:
        existing = last_checkpoint(cfg.paths.output_dir)
        if existing.exists():
            raise RunError(
                f"{Path(cfg.paths.output_dir)} already holds a run ({existing}); resume it with "
                f"ckpt_path={existing}, or set paths.output_dir to a new folder"
            )
        return None, None
    resumed_at = int(load_checkpoint(checkpoint, trust=bool(cfg.get("trust_checkpoint")))["gan"]["iteration"])
    run_dir = run_dir_of(checkpoint)
    if run_dir is not None:
        with open_dict(cfg):
            cfg.paths.output_dir = str(run_dir)
    return checkpoint, resumed_at


def train(cfg: DictConfig, callbacks: list[pl.Callback] = ()) -> dict[str, float]:
    """Train from a composed config; returns the last training scalars and evaluation figures
    (``trainer.callback_metrics``). ``callbacks`` run before the config's own (the bench's timers)."""
    validate(cfg)
    unlimited = (None, -1)
    if (cfg.get("iterations") is None and cfg.trainer.get("max_epochs", -1) in unlimited
            and cfg.trainer.get("max_steps", -1) in unlimited and cfg.trainer.get("max_time") is None):
        raise ConfigError("no training budget: set iterations=N (GAN iterations), trainer.max_epochs=N "
                         "or +trainer.max_time=DD:HH:MM:SS")
    checkpoint, resumed_at = _prepare_run_dir(cfg)
    if cfg.get("seed") is not None:
        pl.seed_everything(int(cfg.seed), workers=True, verbose=False)

    purge = {"purge_step": resumed_at + 1} if resumed_at is not None else {}
    run = build_run(cfg, **purge)
    model = run.model
    trainer = build_trainer(cfg, [*callbacks, *run.callbacks], run.loggers)  # resolves precision=auto in cfg
    model.run_config = OmegaConf.to_container(cfg, resolve=True)

    run_dir = Path(cfg.paths.output_dir)
    if trainer.is_global_zero:
        write_run_files(run_dir, cfg, resumed_at)
        if cfg.get("print_config"):
            print_config_tree(cfg)
    if resumed_at is not None:
        log.info("resuming %s at GAN iteration %d", checkpoint, resumed_at)
    log.info("run folder: %s", run_dir.resolve())
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
        trainer.fit(model, datamodule=run.datamodule, ckpt_path=str(checkpoint) if checkpoint else None,
                    weights_only=not cfg.get("trust_checkpoint"))  # plain data only: loading runs no code
    # callback_metrics also come back from spawned DDP workers (STOPPED_BY_SIGNAL among them)
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}
    log.info("finished at GAN iteration %d; checkpoints in %s", metrics.get("train/iteration", 0), checkpoint_dir(run_dir))
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
    if metrics.get(STOPPED_BY_SIGNAL):
        end_sweep_after_signal()
    name = cfg.get("optimized_metric")
    return metrics.get(name) if name else None


if __name__ == "__main__":
    main()
