"""Building the template's objects from a composed config (one place, used by every entry point).

Every object comes from its node's ``_target_``; the run-level settings (``iterations``,
``log_every``, ``seed``, ``on_nonfinite``) reach the model by interpolation in
``conf/shared/model_base.yaml``. Each constructor checks its own values and raises
:class:`gan.runtime.errors.ConfigError` naming the key; :func:`instantiate` lets that through unwrapped.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import pytorch_lightning as pl
import torch
from hydra.errors import InstantiationException
from hydra.utils import instantiate as hydra_instantiate
from omegaconf import DictConfig, open_dict
from pytorch_lightning.utilities import rank_zero_info
from pytorch_lightning.utilities.exceptions import MisconfigurationException

from gan.runtime.config import auto_iterations
from gan.runtime.errors import ConfigError
from gan.runtime.precision import choose_precision


def instantiate(conf: Any, **kwargs: Any) -> Any:
    """``hydra.utils.instantiate`` that lets our own ``ValueError`` (a bad setting) through unwrapped,
    so the user reads one sentence about the setting rather than Hydra's wrapper around it."""
    try:
        return hydra_instantiate(conf, **kwargs)
    except InstantiationException as err:
        cause = err.__cause__
        while isinstance(cause, InstantiationException):
            cause = cause.__cause__
        if isinstance(cause, ValueError):
            raise cause from None
        raise


class Run(NamedTuple):
    """What a training run is made of, before the trainer is built around it."""

    datamodule: pl.LightningDataModule
    model: pl.LightningModule
    callbacks: list[pl.Callback]
    loggers: list


def build_gan(cfg: DictConfig) -> pl.LightningModule:
    """The LightningModule of ``cfg.model`` (its loss and run-level settings come by interpolation)."""
    if auto_iterations(cfg):
        raise ConfigError("iterations=auto: gan.train fixes the count at start-up from the rate it measures "
                          "(gan.runtime.budget.resolve_iterations); to build a model from this config, set iterations=N")
    instantiate(cfg.model.noise)  # first: it checks model.noise.dim, which every generator takes as noise_dim
    return instantiate(cfg.model, _convert_="partial")


def build_run(cfg: DictConfig, **logger_overrides: Any) -> Run:
    """Every part of a run (after :func:`gan.runtime.config.validate` checked the keys); a bad value raises
    one :class:`~gan.runtime.errors.ConfigError` line from its constructor, before anything is written."""
    return Run(instantiate(cfg.data), build_gan(cfg), build_callbacks(cfg), build_loggers(cfg, **logger_overrides))


def build_trainer(cfg: DictConfig, callbacks: list[pl.Callback], loggers: list) -> pl.Trainer:
    """Lightning's Trainer of ``cfg.trainer``; ``precision: auto`` becomes the hardware's choice
    (:func:`gan.runtime.precision.choose_precision`), said once in the log and recorded in ``cfg``."""
    check_accelerator(str(cfg.trainer.get("accelerator", "cpu")))
    precision, why = choose_precision(cfg.trainer.get("precision", "32-true"), str(cfg.trainer.get("accelerator", "cpu")))
    with open_dict(cfg):
        cfg.trainer.precision = precision  # the run's config records what ran
    rank_zero_info(f"precision: {precision} ({why})")
    try:
        return instantiate(cfg.trainer, callbacks=callbacks, logger=loggers or False)
    except (ValueError, InstantiationException) as err:
        if isinstance(err, ConfigError):
            raise
        cause = err
        while isinstance(cause, InstantiationException) and cause.__cause__ is not None:
            cause = cause.__cause__
        # Lightning's refusal of a trainer.* value names the value and what it takes, in a sentence
        if not isinstance(cause, (ValueError, MisconfigurationException, ImportError)):
            raise
        raise ConfigError(f"trainer: Lightning refuses a trainer.* setting: {' '.join(str(cause).split())}") from None


def check_accelerator(accelerator: str) -> None:
    """A GPU asked for on a machine where torch sees none: one line, not Lightning's error."""
    if accelerator in ("gpu", "cuda") and not torch.cuda.is_available():
        build = ("this torch is a CPU-only build" if torch.version.cuda is None
                 else f"this torch is built for CUDA {torch.version.cuda} but finds no GPU or driver")
        raise ConfigError(f"trainer.accelerator={accelerator}: torch sees no CUDA GPU on this machine ({build}); "
                          "train on the CPU with trainer=cpu")


def build_callbacks(cfg: DictConfig) -> list[pl.Callback]:
    """Every entry of the ``callbacks`` group that has a ``_target_`` (null entries switch one off)."""
    return [instantiate(c) for c in (cfg.get("callbacks") or {}).values() if c and "_target_" in c]


def build_loggers(cfg: DictConfig, **overrides: Any) -> list:
    """Every entry of the ``logger`` group; ``overrides`` go to the loggers that take them
    (``purge_step``: TensorBoard's, for a resumed run)."""
    loggers = []
    for conf in (cfg.get("logger") or {}).values():
        if conf and "_target_" in conf:
            takes = {"purge_step"} if str(conf.get("_target_", "")).endswith("TensorBoardLogger") else set()
            loggers.append(instantiate(conf, **{k: v for k, v in overrides.items() if k in takes}))
    return loggers
