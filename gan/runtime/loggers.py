"""The loggers researchers use beside TensorBoard and CSV: Weights & Biases (``logger=wandb``) and
MLflow (``logger=mlflow``), and the one place that knows how each kind of logger takes what the
callbacks hand over: a picture, a text, and the run's composed config as parameters.

Both packages are optional extras (``pip install -e '.[wandb]'``, ``'.[mlflow]'``). A logger whose
package is missing refuses in one line when the loggers are built, before the run folder is written.
Scalars need nothing here: every logger takes ``log_metrics(..., step=GAN iteration)``.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import netrc
import os
import shlex
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytorch_lightning as pl
from pytorch_lightning.loggers import Logger, MLFlowLogger, TensorBoardLogger, WandbLogger
from pytorch_lightning.loggers.logger import rank_zero_experiment
from pytorch_lightning.utilities import rank_zero_only
from torchvision.transforms.functional import to_pil_image

from gan.runtime.errors import ConfigError
from gan.runtime.runs import flatten

log = logging.getLogger(__name__)

# W&B's x axis: every scalar, picture and table of a run is logged against the GAN iteration under
# this name (Lightning's own WandbLogger calls it trainer/global_step, which is not what it holds here).
WANDB_STEP = "iteration"
# A local SQLite store of MLflow keeps its runs' artifacts in this folder beside its file.
MLFLOW_ARTIFACTS = "mlartifacts"
SQLITE_PREFIX = "sqlite:///"


def require(package: str, extra: str) -> None:
    """Raise one :class:`ConfigError` line naming the extra to install when ``package`` cannot be imported."""
    try:
        importlib.import_module(package)
    except ModuleNotFoundError as err:
        if err.name is not None and err.name.split(".")[0] != package:
            raise  # the package is there but one of its own imports is missing: a real error
        raise ConfigError(f"logger={extra} needs the {package} package: pip install -e '.[{extra}]'") from None


# ---------------------------------------------------------------------------------- Weights & Biases
def wandb_api_key_set() -> bool:
    """Whether W&B would find an API key: ``WANDB_API_KEY``, or a ``wandb login`` entry for its server
    (``WANDB_BASE_URL``, else W&B's default) in the netrc file (``NETRC``, else ``~/.netrc``)."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    import wandb

    host = urlparse(wandb.Settings().base_url).hostname
    path = Path(os.environ.get("NETRC") or Path.home() / ".netrc").expanduser()
    try:
        return host is not None and netrc.netrc(path).authenticators(host) is not None
    except (OSError, netrc.NetrcParseError):
        return False


class WandbRunLogger(WandbLogger):
    """Lightning's :class:`~pytorch_lightning.loggers.WandbLogger` for one training run: its files
    under the run folder (``<run>/wandb``), named after the run folder, every value on the
    GAN-iteration axis (:data:`WANDB_STEP`), and the W&B run finished when training ends, so an
    offline run folder is complete and the next job of a sweep starts a run of its own.

    ``offline``: null logs offline when no API key is set (:func:`wandb_api_key_set`) and says so in
    one line; ``WANDB_MODE``, when set, decides instead."""

    def __init__(self, run_dir: str, project: str = "gan", name: str | None = None, entity: str | None = None,
                 group: str | None = None, tags: list[str] | None = None, offline: bool | None = None) -> None:
        require("wandb", "wandb")
        self.offline_without_key = offline is None and "WANDB_MODE" not in os.environ and not wandb_api_key_set()
        init = {"entity": entity, "group": group, "tags": list(tags) if tags else None}
        if offline or self.offline_without_key:
            init["mode"] = "offline"  # an argument of this run, not Lightning's process-wide WANDB_MODE
        super().__init__(name=name or Path(run_dir).name, save_dir=run_dir, project=project, **init)
        self._wandb_init.pop("anonymous", None)  # unset, yet W&B warns that the setting is deprecated

    @property
    @rank_zero_experiment
    def experiment(self) -> Any:
        fresh = self._experiment is None
        if fresh:
            Path(self.save_dir).mkdir(parents=True, exist_ok=True)  # else W&B falls back to a temporary folder
        run = super().experiment
        if fresh and callable(getattr(run, "define_metric", None)):
            run.define_metric(WANDB_STEP)
            run.define_metric("*", step_metric=WANDB_STEP, step_sync=True)
            if self.offline_without_key:
                folder = Path(run.dir).parent  # run.dir is the run's files/ folder
                log.info("W&B: no API key, logging offline to %s; `wandb sync %s` uploads it later",
                         folder, shlex.quote(str(folder)))
        return run

    @rank_zero_only
    def log_metrics(self, metrics: Mapping[str, Any], step: int | None = None) -> None:
        if step is None:
            super().log_metrics(metrics)
        else:
            self.experiment.log({**metrics, WANDB_STEP: step})

    @rank_zero_only
    def finalize(self, status: str) -> None:
        super().finalize(status)
        if self._experiment is not None and callable(getattr(self._experiment, "finish", None)):
            self._experiment.finish(exit_code=0 if status in ("success", "finished") else 1)


# ---------------------------------------------------------------------------------- MLflow
def local_artifact_location(tracking_uri: str) -> str | None:
    """``<folder of the SQLite file>/mlartifacts`` as a file URI for a local SQLite store, whose
    default would be ``./mlruns`` under whatever folder training was started from; None otherwise
    (a server, or a store that decides for itself)."""
    if not tracking_uri.startswith(SQLITE_PREFIX) or tracking_uri == SQLITE_PREFIX:
        return None
    database = Path(tracking_uri[len(SQLITE_PREFIX):].split("?")[0])
    return (database.resolve().parent / MLFLOW_ARTIFACTS).as_uri()


class _ClientMadeOnFirstUse:
    """What :class:`MLflowRunLogger` holds in place of an ``MlflowClient`` until its first use."""

    def __init__(self, tracking_uri: str) -> None:
        self.tracking_uri = tracking_uri


@contextlib.contextmanager
def _no_client_yet() -> Iterator[None]:
    """Within it, ``mlflow.tracking.MlflowClient`` is :class:`_ClientMadeOnFirstUse`. An
    MlflowClient opens its store as it is made (and creates a SQLite store's file and tables, some
    seconds), and MLFlowLogger's constructor makes one; building a run must write nothing, since
    the run can still be refused before its folder is written."""
    import mlflow.tracking

    client_class = mlflow.tracking.MlflowClient
    mlflow.tracking.MlflowClient = _ClientMadeOnFirstUse
    try:
        yield
    finally:
        mlflow.tracking.MlflowClient = client_class


def refused_file_store(tracking_uri: str) -> bool:
    """Whether ``tracking_uri`` is a plain folder (``file:...``, or a path such as ``./mlruns``; a bare
    word such as ``databricks`` names a service) that the installed MLflow refuses as its store: MLflow 3
    does unless ``MLFLOW_ALLOW_FILE_STORE=true``, and MLflow before it, which has no such switch, takes it."""
    import mlflow.environment_variables

    allowed = getattr(mlflow.environment_variables, "MLFLOW_ALLOW_FILE_STORE", None)
    scheme = urlparse(tracking_uri).scheme
    # a path has no scheme, or a one-letter one: a Windows drive (C:\runs)
    path = len(scheme) <= 1 and any(separator in tracking_uri for separator in "/\\")
    folder = scheme == "file" or path
    return folder and allowed is not None and not allowed.get()


class MLflowRunLogger(MLFlowLogger):
    """Lightning's :class:`~pytorch_lightning.loggers.MLFlowLogger` for one training run, named after
    the run folder, in experiment ``experiment_name`` of the store at ``tracking_uri`` (a server's
    address, or by default a SQLite file under ``outputs/``). The experiment's artifacts go to
    ``artifact_location``, or beside a local SQLite store (:func:`local_artifact_location`).

    The store is opened (a local one created) on first use, when training starts, not when the
    logger is built. A store MLflow refuses is one :class:`ConfigError` line: a plain folder when it
    is built, anything else on first use."""

    def __init__(self, run_dir: str, tracking_uri: str, experiment_name: str = "gan", run_name: str | None = None,
                 artifact_location: str | None = None, tags: Mapping[str, Any] | None = None) -> None:
        require("mlflow", "mlflow")
        if refused_file_store(tracking_uri):
            raise ConfigError(f"logger.mlflow.tracking_uri={tracking_uri}: MLflow no longer takes a plain folder "
                              "as its store; use a SQLite file (sqlite:///outputs/mlflow.db, the default), a "
                              "server's address, or set MLFLOW_ALLOW_FILE_STORE=true")
        with _no_client_yet():
            super().__init__(experiment_name=experiment_name, run_name=run_name or Path(run_dir).name,
                             tracking_uri=tracking_uri, tags=dict(tags) if tags else None,
                             artifact_location=artifact_location or local_artifact_location(tracking_uri))

    @property
    @rank_zero_experiment
    def experiment(self) -> Any:
        if isinstance(self._mlflow_client, _ClientMadeOnFirstUse):
            from mlflow.exceptions import MlflowException
            from mlflow.tracking import MlflowClient

            try:
                self._mlflow_client = MlflowClient(self._tracking_uri)
            except MlflowException as err:  # a store MLflow refuses: its own one-line reason
                reason = " ".join(str(err.message).split())
                raise ConfigError(f"logger.mlflow.tracking_uri={self._tracking_uri}: {reason}") from None
        return super().experiment


# ---------------------------------------------------------------------------------- pictures, texts, config
def add_to_loggers(trainer: pl.Trainer, kind: str, tag: str, value: Any, step: int) -> None:
    """Hand a picture (``kind="image"``: a (C, H, W) tensor in [0, 1]) or a text (``kind="text"``)
    to every logger of ``trainer`` that takes one, at GAN iteration ``step``: W&B as an image or a
    one-row table, MLflow as the artifact ``<tag>_<step>.png`` / ``.md``, TensorBoard (and any
    logger whose experiment has ``add_image`` / ``add_text``) through its writer. Rank 0 calls it."""
    for logger in trainer.loggers:
        add_to_logger(logger, kind, tag, value, step)


def add_to_logger(logger: Logger, kind: str, tag: str, value: Any, step: int) -> None:
    """:func:`add_to_loggers` for one logger."""
    if isinstance(logger, WandbLogger):
        if kind == "image":
            logger.log_image(key=tag, images=[to_pil_image(value.detach().float().cpu())], step=step)
        elif kind == "text":
            logger.log_text(key=tag, columns=["iteration", "text"], data=[[step, str(value)]], step=step)
    elif isinstance(logger, MLFlowLogger):
        if kind == "image":
            logger.experiment.log_image(logger.run_id, to_pil_image(value.detach().float().cpu()),
                                        artifact_file=f"{tag}_{step}.png")
        elif kind == "text":
            logger.experiment.log_text(logger.run_id, str(value), artifact_file=f"{tag}_{step}.md")
    else:
        add = getattr(getattr(logger, "experiment", None), f"add_{kind}", None)
        if callable(add):
            add(tag, value, global_step=step)


def log_run_config(trainer: pl.Trainer, config: Mapping[str, Any]) -> None:
    """The run's resolved config, flattened (:func:`flatten`), as the parameters of every logger but
    TensorBoard's, which keeps its own HPARAMS record (:func:`gan.runtime.tensorboard.write_hparams`).
    Rank 0 calls it once, when training starts."""
    params = flatten(config)
    if not params:
        return
    for logger in trainer.loggers:
        if not isinstance(logger, TensorBoardLogger):
            logger.log_hyperparams(params)
