"""Run and sweep folder names, which TensorBoard shows as run names (gan/runtime/naming.py, issue 13)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from gan.runtime.naming import MAX_OVERRIDES_CHARS, job_name, run_name
from tests.conftest import PROJECT, data_root


@pytest.mark.parametrize(("experiment", "model", "name"), [
    ("cs231n_gan", "mlp", "cs231n_gan"), (None, "modern_dcgan", "modern_dcgan"), (None, None, "run"),
])
def test_run_name_is_the_experiment_else_the_model(experiment, model, name):
    assert run_name(experiment, model) == name


def test_job_name_is_the_number_and_the_overrides_with_long_floats_shortened():
    assert job_name(3, "loss.terms.r1_r2.r1_gamma=0.123456789,model.optimizer_g.lr=0.00012345678,seed=1") == \
        "3_loss.terms.r1_r2.r1_gamma=0.1235,model.optimizer_g.lr=0.0001235,seed=1"
    assert job_name(0, "model.optimizer_d.lr=1.5e-05,x=2") == "0_model.optimizer_d.lr=1.5e-05,x=2"
    assert job_name(4, "") == "4"
    assert job_name(5, "out=a/b") == "5_out=a-b"  # never a subfolder
    assert len(job_name(12, "k=" + "v" * 500)) == len("12_") + MAX_OVERRIDES_CHARS


def test_runs_and_sweep_jobs_are_named_and_tensorboard_shows_those_names(tmp_path):
    common = ["iterations=2", "data.batch_size=16", "log_every=1", "callbacks.evaluation=null", "callbacks.progress_bar=null",
              f"paths.log_dir={tmp_path}", f"data.root={data_root()}"]
    run = [sys.executable, "-m", "gan.train", "model=mlp", "loss=nonsaturating", *common]
    sweep = [sys.executable, "-m", "gan.train", "-m", "experiment=cs231n_gan,cs231n_lsgan", "model.optimizer_g.lr=0.000123456789",
             "trainer.max_epochs=1", *common]
    for cmd in (run, sweep):
        done = subprocess.run(cmd, cwd=PROJECT, capture_output=True, text=True, timeout=600, check=False)
        assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    (single,) = tmp_path.glob("runs/*/*")
    assert single.name.endswith("_mlp") and single.name[:2].isdigit()
    (sweep_dir,) = tmp_path.glob("multiruns/*/*")  # every job in one sweep folder
    jobs = sorted(p.name for p in sweep_dir.iterdir() if (p / "tensorboard").is_dir())
    fixed = "callbacks.evaluation=null,data.batch_size=16"
    rest = "iterations=2,log_every=1,model.optimizer_g.lr=0.0001235,trainer.max_epochs=1"  # no paths, no data root
    assert jobs == [f"0_{fixed},experiment=cs231n_gan,{rest}", f"1_{fixed},experiment=cs231n_lsgan,{rest}"]
    # TensorBoard names a run by the path of its event folder under --logdir: the same names
    runs = sorted(str(p.parent.relative_to(tmp_path)) for p in tmp_path.glob("**/events.out.tfevents.*"))
    assert runs[0].startswith("multiruns/") and runs[0].endswith("/0_" + jobs[0][2:] + "/tensorboard")
    assert runs[-1].startswith("runs/") and runs[-1].endswith("_mlp/tensorboard")
