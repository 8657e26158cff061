"""Killed, terminated or interrupted runs leave a loadable checkpoint and resume to their budget."""

import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gan.runtime.checkpoints import load_checkpoint
from tests.conftest import PROJECT, data_root

RECIPE = ["model=mlp", "data.batch_size=16", "checkpoint_every=15", "sample_every=100000", "log_every=5",
          "callbacks.evaluation=null"]


def start_training(log_dir: Path, *overrides: str, multirun: bool = False) -> subprocess.Popen:
    keys = {o.split("=", 1)[0] for o in overrides}
    recipe = [o for o in RECIPE if o.split("=", 1)[0] not in keys]
    cmd = [sys.executable, "-m", "gan.train", *(["-m"] if multirun else []), *recipe, f"paths.log_dir={log_dir}", f"data.root={data_root()}",
           "callbacks.progress_bar=null", *overrides]
    return subprocess.Popen(cmd, cwd=PROJECT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def wait_for_checkpoint(log_dir: Path, proc: subprocess.Popen, min_iteration: int, timeout: float = 120,
                        pattern: str = "runs/**/checkpoints/last.ckpt") -> Path:
    deadline = time.time() + timeout
    while time.time() < deadline:
        assert proc.poll() is None, proc.stdout.read()[-3000:]
        for ckpt in log_dir.glob(pattern):
            try:
                if load_checkpoint(ckpt)["gan"]["iteration"] >= min_iteration:
                    return ckpt
            except Exception:
                pass  # being replaced right now: try again
        time.sleep(0.2)
    proc.kill()
    raise AssertionError("no checkpoint appeared in time")


def resume_to(log_dir: Path, ckpt: Path, iterations: int) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "gan.train", *RECIPE, f"paths.log_dir={log_dir}", f"data.root={data_root()}",
         "callbacks.progress_bar=null", f"ckpt_path={ckpt}", f"iterations={iterations}"],
        cwd=PROJECT, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert load_checkpoint(ckpt)["gan"]["iteration"] == iterations


def test_sigkill_mid_run_leaves_a_loadable_checkpoint_and_resume_reaches_the_budget(tmp_path):
    proc = start_training(tmp_path, "iterations=100000")
    ckpt = wait_for_checkpoint(tmp_path, proc, min_iteration=30)  # at least one checkpoint replaced
    time.sleep(0.3)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    state = load_checkpoint(ckpt)  # complete, whatever moment the kill hit
    at = state["gan"]["iteration"]
    assert at >= 30 and at % 15 == 0
    assert not [p for p in ckpt.parent.iterdir() if p.name != "last.ckpt" and not p.name.startswith(".")]
    resume_to(tmp_path, ckpt, at + 7)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_sigterm_and_sigint_save_a_checkpoint_say_interrupted_and_exit_with_the_signal_status(tmp_path, signum):
    name = signal.Signals(signum).name
    proc = start_training(tmp_path, "iterations=2000")
    ckpt = wait_for_checkpoint(tmp_path, proc, min_iteration=15)
    proc.send_signal(signum)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signum, out[-3000:]  # 143 for SIGTERM, 130 for SIGINT, as a shell reports them
    assert f"{name} received" in out and "finished at GAN iteration" not in out
    stopped = re.search(rf"interrupted by {name} at GAN iteration (\d+) of 2000; resume with ckpt_path=(\S+)", out)
    assert stopped, out[-3000:]
    assert Path(stopped.group(2)) == ckpt.resolve()  # the run's real path, wherever it lives
    at = load_checkpoint(ckpt)["gan"]["iteration"]
    assert at == int(stopped.group(1)) >= 15  # saved at the iteration it stopped, not the last period
    report = json.loads((ckpt.parent.parent / "metrics.json").read_text())
    assert (report["status"], report["stopped_by"], report["iteration"], report["budget"]) == ("interrupted", name, at, 2000)
    resume_to(tmp_path, ckpt, at + 5)
    report = json.loads((ckpt.parent.parent / "metrics.json").read_text())
    assert (report["status"], report["iteration"], report["budget"]) == ("finished", at + 5, at + 5)
    assert "stopped_by" not in report


def test_sigterm_without_a_checkpoint_callback_does_not_claim_one(tmp_path):
    proc = start_training(tmp_path, "iterations=100000", "callbacks.checkpoint=null", "log_every=1")
    deadline = time.time() + 120
    while not list(tmp_path.glob("runs/**/tensorboard/events.*")) and time.time() < deadline:
        assert proc.poll() is None, proc.stdout.read()[-3000:]
        time.sleep(0.2)
    time.sleep(1.0)  # training is under way
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 143, out[-3000:]
    assert "SIGTERM received: stopping after this GAN iteration" in out
    assert "no checkpoint was saved (callbacks.checkpoint is off)" in out
    assert "saving a checkpoint" not in out and "resume with" not in out
    assert not list(tmp_path.glob("runs/**/*.ckpt"))


def test_a_signal_during_a_sweep_stops_the_whole_sweep_and_reports_earlier_failures(tmp_path):
    # job 0 fails (batch size 0), job 1 trains until the signal, job 2 must never start
    proc = start_training(tmp_path, "data.batch_size=0,16,8", "iterations=100000", multirun=True)
    ckpt = wait_for_checkpoint(tmp_path, proc, min_iteration=15, pattern="multiruns/**/checkpoints/last.ckpt")
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=60)
    assert "the sweep stops here" in out, out[-3000:]
    assert proc.returncode == 143 and "error: 1 sweep jobs failed" in out, out[-3000:]
    assert "  job 0 [" in out and "data.batch_size=0: must be a positive integer" in out
    job = ckpt.parent.parent
    assert job.name.startswith("1_") and load_checkpoint(ckpt)["gan"]["iteration"] >= 15  # the stopped job saved its state
    assert not list(job.parent.glob("2_*"))  # and the next one never started (job folders: <num>_<overrides>)
