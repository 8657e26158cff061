"""Errors that are the user's to fix, the one-line guard of the command lines, and sweeps that
survive a failing job.

- :class:`ConfigError`, :class:`RunError`, :class:`NonFiniteError` (and :class:`gan.data.idx.DataFileError`)
  are a user's to fix: :func:`main_guard` prints them as one ``error:`` line, no traceback.
- In a ``-m`` sweep (Hydra's basic launcher runs the jobs one after another in this process), a job
  that fails is caught by :func:`main_guard`, which logs it, writes a small JSON record
  (``<sweep dir>/failures/<job num>.json``: the job's overrides and the error line) via
  :func:`record_failure` and returns None, so the next job runs. :class:`SweepFailures`, a Hydra
  callback registered under ``hydra.callbacks`` (conf/hydra/default.yaml), reads the records when
  the sweep ends, lists the failed jobs with their overrides on stderr and exits with status 1.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.core.utils import JobReturn, JobStatus
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from gan.runtime.files import write_atomically
from gan.runtime.values import ConfigError  # defined without Hydra, for the networks
from gan.data.idx import DataFileError

log = logging.getLogger(__name__)

FAILURES_DIR = "failures"


class RunError(RuntimeError):
    """A run folder or checkpoint is not usable as asked."""


class NonFiniteError(RuntimeError):
    """A loss, a gradient or the weights became NaN or infinite."""


# ---------------------------------------------------------------------------------- the CLI guard
# Errors that are the user's to fix: one line, no traceback. Other features may add theirs.
USER_ERRORS: tuple[type[BaseException], ...] = (ConfigError, RunError, DataFileError, NonFiniteError, ValueError)


def full_error() -> bool:
    """Hydra's switch for full tracebacks."""
    return os.environ.get("HYDRA_FULL_ERROR", "") not in ("", "0")


def error_line(err: BaseException) -> str:
    """One line for ``err``: its message (ours are one line already), or its type for an empty one."""
    text = " ".join(str(err).split()) if str(err).strip() else ""
    return text if isinstance(err, USER_ERRORS) and text else f"{type(err).__name__}: {text}".rstrip(": ")


def main_guard(task: Callable[[DictConfig], Any]) -> Callable[[DictConfig], Any]:
    """Decorate the Hydra main (below ``@hydra.main``) so that

    - a single run that raises one of ``USER_ERRORS`` exits with ``error: <message>`` on stderr
      and status 1, no traceback (with ``HYDRA_FULL_ERROR=1`` the error propagates unchanged);
      any other exception propagates (it is a bug: Hydra prints its traceback);
    - a job of a ``-m`` sweep that raises anything is logged (with its traceback if it is not
      one of ours, or if ``HYDRA_FULL_ERROR=1``), recorded under ``<sweep dir>/failures/`` and
      returns None, so the sweep goes on; :class:`SweepFailures` lists the failures
      at the end and exits non-zero.
    """

    @functools.wraps(task)
    def guarded(cfg: DictConfig) -> Any:
        try:
            return task(cfg)
        except Exception as err:
            if in_multirun():
                line = error_line(err)
                if isinstance(err, USER_ERRORS) and not full_error():
                    log.error("job failed: %s", line)
                else:
                    log.exception("job failed: %s", line)
                record_failure(line, err)
                return None
            if isinstance(err, USER_ERRORS) and not full_error():
                sys.exit(f"error: {error_line(err)}")
            raise

    return guarded


# ---------------------------------------------------------------------------------- sweeps
def in_multirun() -> bool:
    """True inside a job of a ``-m`` sweep."""
    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


def failures_dir(hydra_cfg: DictConfig) -> Path:
    """``<sweep dir>/failures`` for a config's ``hydra`` node (relative sweep dirs are taken from
    the launch folder, whatever ``hydra.job.chdir`` did)."""
    return Path(hydra_cfg.runtime.cwd) / str(hydra_cfg.sweep.dir) / FAILURES_DIR


def record_failure(error: str, err: BaseException | None = None, hydra_cfg: DictConfig | None = None) -> Path:
    """Write the failure record of the current sweep job; returns its path."""
    hc = hydra_cfg if hydra_cfg is not None else HydraConfig.get()
    num = int(hc.job.num)
    record = {
        "job": num,
        "overrides": [str(o) for o in OmegaConf.to_container(hc.overrides.task, resolve=False)],
        "error": error,
        "type": type(err).__name__ if err is not None else None,
        "output_dir": str(hc.runtime.output_dir),
    }
    path = failures_dir(hc) / f"{num}.json"
    write_atomically(path, lambda p: p.write_text(json.dumps(record, indent=2) + "\n"))
    return path


def read_failures(folder: Path) -> list[dict]:
    """The failure records in ``folder``, by job number."""
    records = []
    for path in folder.glob("*.json"):
        try:
            records.append(json.loads(path.read_text()))
        except (OSError, ValueError) as err:
            records.append({"job": path.stem, "overrides": [], "error": f"unreadable failure record {path}: {err}"})
    return sorted(records, key=lambda r: (not str(r.get("job")).isdigit(), int(r["job"]) if str(r.get("job")).isdigit() else 0))


def report(records: list[dict], sweep_overrides: list[str], jobs: int | None, folder: Path) -> str:
    """The lines printed at the end of a sweep with failures. Each failed job shows the overrides
    that differ from the sweep's fixed ones (all of them when none differ)."""
    swept = _swept_keys(sweep_overrides)
    of = f" of {jobs}" if jobs else ""
    lines = [f"error: {len(records)}{of} sweep jobs failed (records in {folder}):"]
    for r in records:
        overrides = [str(o) for o in r.get("overrides", [])]
        if swept is None:
            varying = [o for o in overrides if o not in set(sweep_overrides)]
        else:
            varying = [o for o in overrides if _key(o) in swept]
        varying = varying or overrides
        lines.append(f"  job {r.get('job')} [{' '.join(varying)}]: {r.get('error')}")
    return "\n".join(lines)


def _key(override: str) -> str:
    """The key (or group) an override sets: ``+trainer.x=1`` -> ``trainer.x``."""
    return override.split("=", 1)[0].lstrip("+~")


def _swept_keys(sweep_overrides: list[str]) -> set[str] | None:
    """The keys the sweep varies (``a=1,2``, ``range(...)``, ...), or None if they cannot be parsed."""
    try:
        from hydra.core.override_parser.overrides_parser import OverridesParser

        parsed = OverridesParser.create().parse_overrides(sweep_overrides)
    except Exception:
        return None
    return {o.get_key_element().lstrip("+~") for o in parsed if o.is_sweep_override()}


BASIC_LAUNCHER = "hydra._internal.core_plugins.basic_launcher.BasicLauncher"


def exit_after_signal(signum: int) -> None:
    """End the process the way the signal that stopped training asks for, now that its checkpoint
    is written (:class:`gan.callbacks.training.StopOnSignal` deferred it to the end of the GAN
    iteration and has put the handlers of before the run back).

    - When something installed a Python handler for it before the run (a cluster launcher's:
      submitit's for SIGUSR2 writes its own checkpoint record, requeues the SLURM job and exits;
      its SIGTERM handler only logs), that handler gets the signal now; if it returns, so does this.
    - Otherwise the process exits with the shell's status for the signal, 128 + its number (130 for
      SIGINT, 143 for SIGTERM), so a script or a results table can tell the run from a finished one.
      A sweep run by Hydra's basic launcher ends there too: its later jobs are not started, and
      the jobs that failed before are listed first.
    """
    handler = signal.getsignal(signum)
    if callable(handler) and handler is not signal.default_int_handler:
        handler(signum, None)
        return
    if in_multirun():
        hc = HydraConfig.get()
        if hc.launcher.get("_target_") == BASIC_LAUNCHER:
            log.warning("the sweep stops here: the jobs after job %s are not started", hc.job.num)
            folder = failures_dir(hc)
            records = read_failures(folder)
            if records:
                print(report(records, [], None, folder), file=sys.stderr)
    sys.exit(128 + int(signum))


class SearchSpaceCheck(Callback):
    """Before a sweep starts, refuse in one line a searched key (``hydra.sweeper.params``) that the
    composed config does not have: a search space is written for one recipe (conf/hparams_search/
    optuna.yaml for the default one), and without this check the sweeper fails at its first trial
    with Hydra's "Could not override" and a traceback. Keys added on purpose (``+key``) and config
    groups (``model: choice(...)``) are not checked."""

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        missing = missing_search_keys(config)
        if not missing:
            return
        choices = config.hydra.runtime.choices
        space = (f"conf/hparams_search/{choices.hparams_search}.yaml" if choices.get("hparams_search")
                 else "hydra.sweeper.params")
        recipe = (f"experiment={choices.experiment}" if choices.get("experiment")
                  else f"model={choices.get('model')}")
        default = "the default recipe's" if choices.get("hparams_search") == "optuna" else "written for another recipe"
        sys.exit(f"error: the search space of {space} is {default}; {recipe} has no {', '.join(missing)}: "
                 "use model=modern_dcgan or write a space for it")


def missing_search_keys(config: DictConfig) -> list[str]:
    """The keys of ``hydra.sweeper.params`` that ``config`` lacks (or holds under a null node)."""
    params = OmegaConf.select(config, "hydra.sweeper.params", default=None) or {}
    groups = set(config.hydra.runtime.choices.keys())
    absent = object()
    missing = []
    for key in params:
        key = str(key)
        if key.startswith("+") or key in groups:
            continue
        if OmegaConf.select(config, key.lstrip("~"), default=absent, throw_on_resolution_failure=False) is absent:
            missing.append(key)
    return missing


class SweepFailures(Callback):
    """At the end of a ``-m`` sweep, list the failed jobs with their overrides and exit 1."""

    def __init__(self) -> None:
        self.jobs = 0

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        self.jobs = 0
        # A sweep folder reused on purpose (a fixed hydra.sweep.dir) must not report old failures.
        for old in failures_dir(config.hydra).glob("*.json"):
            old.unlink()

    def on_job_end(self, config: DictConfig, job_return: JobReturn, **kwargs: Any) -> None:
        if config.hydra.mode != RunMode.MULTIRUN:
            return
        self.jobs += 1
        if job_return.status == JobStatus.FAILED:
            # The job's exception escaped main_guard (or the main is not guarded): record it too.
            err = job_return._return_value
            record_failure(f"{type(err).__name__}: {err}", err, config.hydra)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        folder = failures_dir(config.hydra)
        records = read_failures(folder)
        if not records:
            return
        sweep_overrides = [str(o) for o in OmegaConf.to_container(config.hydra.overrides.task, resolve=False)]
        sys.exit(report(records, sweep_overrides, self.jobs or None, folder))
