"""The run's report to the researcher: the TensorBoard layout when training starts (and the config
as the other loggers' parameters), and when it ends the hyperparameters beside the final metrics
(TensorBoard's HPARAMS tab) and ``metrics.json`` in the run folder. Rank 0 only; the wall time
carries over a resume (it is in the checkpoint).

Every run says how it ended (``status`` in metrics.json and in the HPARAMS record): ``finished``
(its budget reached), ``interrupted`` (a signal, or a trainer limit, stopped it before the budget:
it can be resumed) or ``failed`` (an error; ``error`` holds its line). Tools that read runs take
only ``finished`` runs as results.

List it after the evaluation callback, so the end-of-training evaluation is in the final metrics.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
from hydra.core.hydra_config import HydraConfig
from pytorch_lightning.callbacks import Callback

from gan.callbacks.training import stopped_by
from gan.runtime.errors import error_line
from gan.runtime.files import write_atomically
from gan.runtime.runs import FAILED, FINISHED, INTERRUPTED, METRICS_FILE
from gan.runtime.loggers import log_run_config
from gan.runtime.tensorboard import (
    HPARAM_METRICS,
    run_hparams,
    tensorboard_writers,
    write_hparams,
    write_layout,
)

log = logging.getLogger(__name__)

WALL_TIME = "run/wall_time_s"


class RunReport(Callback):
    """Writes the custom-scalars layout at the start, and at the end ``<dirpath>/metrics.json``
    (``val/*`` and ``val_floor/*`` of the last evaluation, iteration, wall time, dataset) and the
    hparams records (:func:`gan.runtime.tensorboard.write_hparams`). ``dirpath`` defaults to the run folder
    (``trainer.default_root_dir``)."""

    def __init__(self, dirpath: str | None = None) -> None:
        self.dirpath = Path(dirpath) if dirpath else None
        self.wall_time_before = 0.0  # seconds trained before this process (a resumed run)
        self._started: float | None = None

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if self.dirpath is None:
            self.dirpath = Path(trainer.default_root_dir)

    def wall_time(self) -> float:
        return self.wall_time_before + (time.perf_counter() - self._started if self._started is not None else 0.0)

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._started = time.perf_counter()
        if trainer.is_global_zero:
            for writer in tensorboard_writers(trainer):
                write_layout(writer)
            log_run_config(trainer, getattr(pl_module, "run_config", None) or {})  # W&B, MLflow, CSV

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        why = stopped_by(trainer, pl_module)
        self.write(trainer, pl_module, {"status": FINISHED} if why is None else {"status": INTERRUPTED, "stopped_by": why})

    def on_exception(self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException) -> None:
        if isinstance(exception, KeyboardInterrupt):  # a second Ctrl+C: no checkpoint at this iteration
            self.write(trainer, pl_module, {"status": INTERRUPTED, "stopped_by": "a second SIGINT (KeyboardInterrupt)"})
        else:
            self.write(trainer, pl_module, {"status": FAILED, "error": error_line(exception)})

    def write(self, trainer: pl.Trainer, pl_module: pl.LightningModule, ending: dict[str, Any]) -> None:
        """``metrics.json`` (how the run ended, the final figures, every evaluation) and the
        HPARAMS record, on rank 0."""
        if not trainer.is_global_zero:
            return
        wall = round(self.wall_time(), 1)
        final = {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith(("val/", "val_floor/"))}
        config = getattr(pl_module, "run_config", None) or {}
        history = getattr(pl_module, "history", None)
        report = {
            **ending,
            "iteration": int(pl_module.iteration),
            "budget": getattr(pl_module, "max_iterations", None),
            "wall_time_s": wall,
            "dataset": (config.get("data") or {}).get("dataset"),
            "evaluated_at": int(final.pop("val/iteration")) if "val/iteration" in final else None,
            "metrics": {k: v for k, v in final.items() if k.startswith("val/")},
            "floor": {k: v for k, v in final.items() if k.startswith("val_floor/")},
            "evaluations": [{"iteration": it, **values} for it, values in history.evaluations] if history else [],
        }
        assert self.dirpath is not None, "setup() sets the folder"
        write_atomically(self.dirpath / METRICS_FILE, lambda p: p.write_text(json.dumps(report, indent=2) + "\n"))
        for logger in trainer.loggers:
            logger.log_metrics({WALL_TIME: wall}, step=pl_module.iteration)
        writers = tensorboard_writers(trainer)
        if not writers:
            return
        hparams = run_hparams(config, _hydra_choices()) | {"status": ending["status"]}
        metrics = {k: final.get(k, wall if k == WALL_TIME else float("nan")) for k in HPARAM_METRICS}
        for writer in writers:
            write_hparams(writer, hparams, metrics)

    def state_dict(self) -> dict[str, Any]:
        return {"wall_time_s": self.wall_time()}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.wall_time_before = float(state_dict.get("wall_time_s", 0.0))


def _hydra_choices() -> dict[str, Any]:
    """Hydra's chosen option per config group (``model``, ``experiment``...), when run by Hydra."""
    if not HydraConfig.initialized():
        return {}
    return dict(HydraConfig.get().runtime.choices)

