"""How a run says it ended (metrics.json's ``status``), what the process does after a signal
(its exit status, a cluster launcher's handler), a requeued SLURM job continuing its run, the
Optuna search space checked before any trial, and pictures that keep sample counts apart."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import pytorch_lightning as pl
from hydra import compose, initialize_config_dir
from PIL import Image

from gan.callbacks.training import STOPPED_BY_SIGNAL
from gan.metrics.plots import curves_figure
from gan.runtime.bookkeeping import History
from gan.runtime.checkpoints import load_checkpoint
from gan.runtime.errors import RunError, exit_after_signal, missing_search_keys
from gan.train import FINISHED, train
from tests.conftest import CONF_DIR, PROJECT, QUICK, data_root


class SendSignal(pl.Callback):
    """Sends ``signum`` to this process at GAN iteration ``at``, as a user or a cluster would."""

    def __init__(self, at: int, signum: int = signal.SIGUSR2) -> None:
        self.at, self.signum = at, signum

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if pl_module.iteration == self.at:
            os.kill(os.getpid(), self.signum)


class Fail(pl.Callback):
    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if pl_module.iteration == 3:
            raise RuntimeError("the disk went away")


def report(run: Path) -> dict:
    return json.loads((run / "metrics.json").read_text())


@pytest.fixture
def previous_usr2():
    """A Python handler for SIGUSR2 installed before the run, as submitit installs its own; it
    records what the run had written when it was called."""
    calls: list[dict] = []
    old = signal.getsignal(signal.SIGUSR2)
    yield calls
    signal.signal(signal.SIGUSR2, old)


def test_a_failing_run_says_failed_with_its_error_line(make_cfg):
    cfg = make_cfg(*QUICK)
    with pytest.raises(RuntimeError, match="the disk went away"):
        train(cfg, callbacks=[Fail()])
    ending = report(Path(cfg.paths.output_dir))
    assert ending["status"] == "failed" and ending["error"] == "RuntimeError: the disk went away"
    assert ending["iteration"] == 3 and ending["budget"] == 6


def test_a_signal_hands_over_to_the_launchers_handler_once_the_checkpoint_is_written(make_cfg, previous_usr2):
    cfg = make_cfg(*QUICK)
    run = Path(cfg.paths.output_dir)

    def launcher_handler(signum, frame):  # submitit's would requeue the job here
        previous_usr2.append({"signum": signum, "checkpoint": load_checkpoint(run / "checkpoints" / "last.ckpt")["gan"]["iteration"],
                              "status": report(run)["status"]})

    signal.signal(signal.SIGUSR2, launcher_handler)
    metrics = train(cfg, callbacks=[SendSignal(at=2)])
    assert metrics[STOPPED_BY_SIGNAL] == signal.SIGUSR2 and metrics[FINISHED] == 0.0
    assert previous_usr2 == []  # the run held the signal back until its checkpoint was written
    assert signal.getsignal(signal.SIGUSR2) is launcher_handler  # and put the launcher's handler back
    exit_after_signal(int(metrics[STOPPED_BY_SIGNAL]))  # returns: the handler decided
    assert previous_usr2 == [{"signum": signal.SIGUSR2, "checkpoint": 2, "status": "interrupted"}]
    assert report(run)["stopped_by"] == "SIGUSR2"


@pytest.mark.parametrize(("signum", "status"), [(signal.SIGTERM, 143), (signal.SIGINT, 130), (signal.SIGUSR2, 140)])
def test_without_a_launchers_handler_the_process_exits_with_the_signals_status(signum, status):
    old = signal.getsignal(signum)
    signal.signal(signum, signal.default_int_handler if signum == signal.SIGINT else signal.SIG_DFL)
    try:
        with pytest.raises(SystemExit) as exited:
            exit_after_signal(signum)
    finally:
        signal.signal(signum, old)
    assert exited.value.code == status


def test_a_requeued_slurm_job_continues_its_unfinished_run_and_ends_finished(make_cfg, monkeypatch, previous_usr2):
    signal.signal(signal.SIGUSR2, lambda *_: None)  # submitit's handler stands in: the job is requeued
    overrides = [*QUICK, "checkpoint_every=100"]
    first = make_cfg(*overrides)
    train(first, callbacks=[SendSignal(at=2)])
    run = Path(first.paths.output_dir)
    assert report(run)["status"] == "interrupted" and report(run)["iteration"] == 2

    with pytest.raises(RunError, match="already holds a run"):  # not a requeue: the folder is refused
        train(make_cfg(*overrides))
    monkeypatch.setenv("SLURM_RESTART_COUNT", "1")
    metrics = train(make_cfg(*overrides))  # the same job, the same folder, no ckpt_path
    assert metrics[FINISHED] == 1.0
    assert report(run)["status"] == "finished" and report(run)["iteration"] == 6
    assert load_checkpoint(run / "checkpoints" / "last.ckpt")["gan"]["iteration"] == 6
    assert (run / "config.resume-2.yaml").is_file()  # resumed in place, at iteration 2

    with pytest.raises(RunError, match="already holds a run"):  # a finished run is not trained again
        train(make_cfg(*overrides))


def test_a_run_stopped_by_a_trainer_limit_before_its_budget_is_interrupted(make_cfg):
    cfg = make_cfg(*QUICK, "iterations=100000", "+trainer.max_time=00:00:00:01")
    metrics = train(cfg)
    ending = report(Path(cfg.paths.output_dir))
    assert ending["status"] == "interrupted" and ending["iteration"] < 100000
    assert metrics[FINISHED] == 0.0


def test_optuna_refuses_a_recipe_outside_its_search_space_before_any_trial(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "gan.train", "hparams_search=optuna", "model=mlp", "hydra.sweeper.n_trials=2",
         f"paths.log_dir={tmp_path}", f"data.root={data_root()}"],
        cwd=PROJECT, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("error: the search space of conf/hparams_search/optuna.yaml is the default recipe's; "
                               "model=mlp has no model.ema.half_life_images")
    assert lines[0].endswith("use model=modern_dcgan or write a space for it")
    assert "Traceback" not in done.stderr and "HYDRA_FULL_ERROR" not in done.stderr
    assert not list(tmp_path.rglob("config.yaml"))  # no trial ran


def test_the_default_recipe_has_every_key_of_the_optuna_space():
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        default = compose("train", ["hparams_search=optuna"], return_hydra_config=True)
        mlp = compose("train", ["hparams_search=optuna", "model=mlp"], return_hydra_config=True)
    assert missing_search_keys(default) == []
    assert "model.ema.half_life_images" in missing_search_keys(mlp)


def test_a_short_runs_timelapse_has_frames_spread_over_its_budget(make_cfg):
    cfg = make_cfg(*QUICK, "iterations=40", "sample_every=500")
    train(cfg)
    samples = Path(cfg.paths.output_dir) / "samples"
    kept = sorted(int(p.stem.rsplit("_", 1)[1]) for p in samples.glob("fixed_noise_*.png"))
    assert kept == [1, 5, 10, 15, 20, 25, 30, 35, 40]  # iteration 1, then 8 points over the 40
    with Image.open(samples / "timelapse.gif") as gif:
        assert gif.n_frames == 9


def test_curves_keep_each_sample_count_a_series_of_its_own_with_its_own_floor():
    history = History()
    for it in (10, 20, 30):
        history.add_evaluation(it, {"fid": 100.0 - it}, {"fid": 5.0}, samples=1000)
    history.add_evaluation(30, {"fid": 40.0}, {"fid": 1.0}, samples=10000)
    split = history.series_by_samples("fid")
    assert split == {1000: [(10, 90.0), (20, 80.0), (30, 70.0)], 10000: [(30, 40.0)]}
    assert history.floors == {1000: {"fid": 5.0}, 10000: {"fid": 1.0}}

    figure = curves_figure({}, split, {n: f["fid"] for n, f in history.floors.items()})
    fid_axes = figure.axes[2]
    series = {line.get_label(): (list(line.get_xdata()), line.get_marker()) for line in fid_axes.lines
              if line.get_label().startswith("FID")}
    assert series == {"FID, 1000 samples": ([10, 20, 30], "o"), "FID, 10000 samples": ([30], "s")}
    floors = sorted(line.get_label() for line in fid_axes.lines if line.get_label().startswith("floor"))
    assert floors == ["floor of 1000 real images: 5.00", "floor of 10000 real images: 1.00"]
