"""What a run shows in TensorBoard beyond its scalars and images: the custom-scalars layout (FID
beside its floor, D's two accuracies, the two losses on one chart each), the real-data floor recorded
once per sample count as text, and the hyperparameters with the final metrics (the HPARAMS tab).

Only the writers of :class:`pytorch_lightning.loggers.TensorBoardLogger` loggers are touched, and
only on rank 0 (the callers check ``trainer.is_global_zero``).
"""

from __future__ import annotations

import weakref
from collections.abc import Mapping
from typing import Any

import pytorch_lightning as pl
from omegaconf import OmegaConf
from pytorch_lightning.loggers import TensorBoardLogger
from torch.utils.tensorboard.summary import hparams as hparams_summary

# Pictures and texts go to every kind of logger through one function (W&B, MLflow, TensorBoard);
# the callbacks import it from here.
from gan.runtime.loggers import add_to_loggers  # noqa: F401

# Custom scalars: category -> chart title -> tags. Tags are regular expressions to TensorBoard,
# hence anchored (``val/fid`` alone would also draw ``val/fid_raw``).
LAYOUT: dict[str, dict[str, list[str]]] = {
    "quality": {
        "FID (EMA generator, raw generator) and the real-data floor": ["val/fid", "val/fid_raw", "val_floor/fid"],
    },
    "discriminator": {"D's accuracy on real and on generated images": ["train/d_acc_real", "train/d_acc_fake"]},
    "losses": {"D and G losses": ["train/d_loss", "train/g_loss"]},
}

# The one floor figure logged as a scalar (the FID chart's reference line); the rest goes to text.
FLOOR_SCALAR = "val_floor/fid"

# The HPARAMS tab's hyperparameters: name -> key in the run's resolved config.
HPARAM_KEYS = {
    "dataset": "data.dataset",
    "batch_size": "data.batch_size",
    "loss": "loss.name",
    "lr_g": "model.optimizer_g.lr",
    "lr_d": "model.optimizer_d.lr",
    "betas_g": "model.optimizer_g.betas",
    "betas_d": "model.optimizer_d.betas",
    "d_steps": "model.updates.d_steps",
    "g_steps": "model.updates.g_steps",
    "r1_gamma": "loss.terms.r1_r2.r1_gamma",
    "r2_gamma": "loss.terms.r1_r2.r2_gamma",
    "ema_half_life_images": "model.ema.half_life_images",
    "noise_dim": "model.noise.dim",
    "g_hidden": "model.generator.hidden",
    "g_base_channels": "model.generator.base_channels",
    "d_channels": "model.discriminator.channels",
    "seed": "seed",
    "iterations": "iterations",
    "precision": "trainer.precision",
}
# The HPARAMS tab's metrics: scalar tags whose last value each run shows.
HPARAM_METRICS = ("val/fid", "val/best_fid", "val/kid", "val/precision", "val/recall", "val/coverage",
                  "val/eval_samples", "run/wall_time_s")

_floor_counts_written: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def tensorboard_writers(trainer: pl.Trainer) -> list[Any]:
    """The ``SummaryWriter`` of each TensorBoard logger of ``trainer``."""
    return [logger.experiment for logger in trainer.loggers if isinstance(logger, TensorBoardLogger)]


def write_layout(writer: Any, layout: Mapping[str, Mapping[str, list[str]]] = LAYOUT) -> None:
    """Register the custom-scalars layout (each chart a multiline chart of anchored tags)."""
    writer.add_custom_scalars({
        category: {title: ["Multiline", [f"^{tag}$" for tag in tags]] for title, tags in charts.items()}
        for category, charts in layout.items()
    })


def floor_markdown(floor: Mapping[str, float], n: int) -> str:
    """The real-data floor as a markdown table: the figures of ``n`` real training images."""
    rows = "\n".join(f"| {name} | {value:.4g} |" for name, value in floor.items())
    return f"Real-data floor: {n} real training images scored as if generated.\n\n| metric | floor |\n|---|---|\n{rows}"


def log_evaluation(trainer: pl.Trainer, iteration: int, scalars: Mapping[str, float], floor: Mapping[str, float],
                   n: int) -> None:
    """Hand one evaluation to the loggers. TensorBoard gets ``val/*`` and the FID floor as scalars
    and the whole floor once per sample count as text (not nine panels of constants); any other
    logger (CSV) gets every floor figure as a ``val_floor/*`` scalar."""
    floor_scalars = {f"val_floor/{k}": float(v) for k, v in floor.items()}
    for logger in trainer.loggers:
        if not isinstance(logger, TensorBoardLogger):
            logger.log_metrics({**scalars, **floor_scalars}, step=iteration)
            continue
        logger.log_metrics({**scalars, FLOOR_SCALAR: floor_scalars[FLOOR_SCALAR]}, step=iteration)
        written = _floor_counts_written.setdefault(logger.experiment, set())
        if n not in written:
            written.add(n)
            logger.experiment.add_text(f"val_floor/n={n}", floor_markdown(floor, n), global_step=iteration)


def run_hparams(config: Mapping[str, Any], choices: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The main hyperparameters of a run's resolved config, as TensorBoard takes them (numbers,
    strings, booleans): the chosen ``model``/``experiment`` (Hydra's choices, when known) and
    :data:`HPARAM_KEYS`. Keys a recipe does not have are left out; lists become strings."""
    cfg = OmegaConf.create(dict(config))
    found: dict[str, Any] = {name: str(choices[name]) for name in ("model", "experiment")
                             if choices and choices.get(name) is not None}
    if "model" not in found and OmegaConf.select(cfg, "model.generator._target_") is not None:
        found["model"] = str(cfg.model.generator._target_).rsplit(".", 1)[-1]  # no Hydra: G's class
    for name, key in HPARAM_KEYS.items():
        value = OmegaConf.select(cfg, key, default=None)
        if value is None:
            continue
        if OmegaConf.is_config(value):
            value = OmegaConf.to_container(value)
        found[name] = value if isinstance(value, (bool, int, float, str)) else str(value)
    return found


def write_hparams(writer: Any, hparams: Mapping[str, Any], metrics: Mapping[str, float]) -> None:
    """The hparams plugin's records for this run: its hyperparameters and which scalar tags are its
    metrics (TensorBoard shows each tag's last value). Written into the run's own event file, so
    the HPARAMS tab lists one row per run; the metrics are not logged again here."""
    experiment, session_start, session_end = hparams_summary(dict(hparams), dict(metrics))
    file_writer = writer._get_file_writer()
    for summary in (experiment, session_start, session_end):
        file_writer.add_summary(summary)
    writer.flush()
