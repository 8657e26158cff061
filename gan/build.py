"""Building the template's objects from a composed config (one place, used by every entry point)."""

from __future__ import annotations

from typing import Any

import pytorch_lightning as pl
from hydra.errors import InstantiationException
from hydra.utils import instantiate as hydra_instantiate
from omegaconf import DictConfig, OmegaConf

from gan.module import GAN


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


def build_gan(cfg: DictConfig) -> GAN:
    """The LightningModule of ``cfg.model`` with ``cfg.loss`` and the run-level settings."""
    return instantiate(
        cfg.model,
        loss=instantiate(cfg.loss),
        max_iterations=cfg.get("iterations"),
        log_every=cfg.get("log_every", 10),
        fixed_noise_seed=cfg.get("seed") or 0,
        on_nonfinite=cfg.get("on_nonfinite", "stop"),
        _convert_="partial",
    )


def build_callbacks(cfg: DictConfig) -> list[pl.Callback]:
    """Every entry of the ``callbacks`` group that has a ``_target_`` (null entries switch one off)."""
    return [instantiate(c) for c in (cfg.get("callbacks") or {}).values() if c and "_target_" in c]


def build_loggers(cfg: DictConfig, **overrides: Any) -> list:
    """Every entry of the ``logger`` group; ``overrides`` go to each logger's constructor."""
    loggers = []
    for conf in (cfg.get("logger") or {}).values():
        if conf and "_target_" in conf:
            extra = {k: v for k, v in overrides.items() if k in _accepted_kwargs(conf)}
            loggers.append(instantiate(conf, **extra))
    return loggers


def _accepted_kwargs(conf: DictConfig) -> set[str]:
    target = OmegaConf.select(conf, "_target_") or ""
    return {"purge_step"} if target.endswith("TensorBoardLogger") else set()
