"""Sweeps: a failing combination does not stop the others; the failures are listed at the end
with their overrides and the sweep exits non-zero."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from gan.runtime.errors import FAILURES_DIR, SweepFailures, read_failures, report
from tests.conftest import PROJECT, data_root


def test_sweep_with_one_bad_combination_runs_the_others_and_fails_at_the_end(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "HYDRA_FULL_ERROR"}
    cmd = [
        sys.executable, "-m", "gan.train", "-m", "model=mlp", "data.batch_size=16,0,8", "iterations=2",
        "checkpoint_every=2", "sample_every=2", "log_every=1", f"paths.log_dir={tmp_path}",
        f"data.root={data_root()}", "callbacks.progress_bar=null", "+trainer.enable_progress_bar=false", "callbacks.evaluation=null",
    ]
    done = subprocess.run(cmd, cwd=PROJECT, capture_output=True, text=True, timeout=600, env=env)
    assert done.returncode != 0, done.stderr[-3000:]
    assert "Traceback" not in done.stderr + done.stdout, done.stderr[-3000:]

    (sweep,) = Path(tmp_path).glob("multiruns/*/*")
    ckpts = sorted(p.relative_to(sweep).parts[0].split("_", 1)[0] for p in sweep.glob("*/checkpoints/last.ckpt"))
    assert ckpts == ["0", "2"]  # the jobs before and after the bad one both trained

    report_lines = done.stderr[done.stderr.index("error: 1 of 3 sweep jobs failed"):].splitlines()
    assert report_lines[0] == f"error: 1 of 3 sweep jobs failed (records in {sweep / FAILURES_DIR}):"
    assert report_lines[1] == "  job 1 [data.batch_size=0]: data.batch_size=0: must be a positive integer"

    record = json.loads((sweep / FAILURES_DIR / "1.json").read_text())
    assert record["job"] == 1 and record["type"] == "ConfigError"
    assert "data.batch_size=0" in record["overrides"] and "model=mlp" in record["overrides"]
    assert record["error"] == "data.batch_size=0: must be a positive integer"


def _multirun_config(tmp_path: Path, overrides: list[str]):
    return OmegaConf.create(
        {"hydra": {"runtime": {"cwd": str(tmp_path)}, "sweep": {"dir": "sweep"}, "overrides": {"task": overrides}}}
    )


def test_the_callback_lists_recorded_failures_and_exits_non_zero(tmp_path):
    config = _multirun_config(tmp_path, ["model=mlp,dcgan", "seed=0"])
    folder = tmp_path / "sweep" / FAILURES_DIR
    folder.mkdir(parents=True)
    (folder / "stale.json").write_text("{}")
    callback = SweepFailures()
    callback.on_multirun_start(config)
    assert not list(folder.glob("*.json"))  # records of an earlier sweep in the same folder are dropped
    callback.on_multirun_end(config)  # no failures: returns, the sweep exits 0

    for num, model, error in [(10, "dcgan", "RunError: b"), (2, "mlp", "a")]:
        record = {"job": num, "overrides": [f"model={model}", "seed=0"], "error": error}
        (folder / f"{num}.json").write_text(json.dumps(record))
    with pytest.raises(SystemExit) as caught:
        callback.on_multirun_end(config)
    assert caught.value.code.splitlines() == [
        f"error: 2 sweep jobs failed (records in {folder}):",
        "  job 2 [model=mlp]: a",
        "  job 10 [model=dcgan]: RunError: b",
    ]


def test_report_shows_every_override_when_none_differs_from_the_sweep():
    records = [{"job": 0, "overrides": ["seed=1"], "error": "boom"}]
    assert report(records, ["seed=1"], 1, Path("f")).splitlines()[1] == "  job 0 [seed=1]: boom"


def test_unreadable_records_are_reported_not_fatal(tmp_path):
    (tmp_path / "3.json").write_text("{not json")
    (records,) = read_failures(tmp_path)
    assert records["job"] == "3" and "unreadable failure record" in records["error"]


# ---------------------------------------------------------------------------------- SLURM route
def test_slurm_ddp_launcher_asks_for_one_task_per_gpu_on_every_node():
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher")
    from hydra import compose, initialize_config_dir

    from tests.conftest import CONF_DIR

    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose(config_name="train", return_hydra_config=True, overrides=[
            "hydra/launcher=slurm_ddp", "trainer=ddp", "trainer.devices=4", "trainer.num_nodes=2",
            "hydra.launcher.partition=gpu",
        ])
    launcher = cfg.hydra.launcher
    assert launcher._target_.endswith("SlurmLauncher")
    assert (launcher.nodes, launcher.tasks_per_node, launcher.gpus_per_node) == (2, 4, 4)
    assert launcher.partition == "gpu" and launcher.timeout_min > 0


def test_sweep_through_the_submitit_launcher_runs_every_job(tmp_path):
    """The SLURM launcher's code path, with submitit's local executor standing in for sbatch."""
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher")
    cmd = [
        sys.executable, "-m", "gan.train", "-m", "hydra/launcher=submitit_local", "hydra.launcher.timeout_min=10",
        "model=mlp", "data.batch_size=16", "seed=0,1", "iterations=2", "checkpoint_every=2", "sample_every=2",
        "log_every=1", f"paths.log_dir={tmp_path}", f"data.root={data_root()}", "callbacks.progress_bar=null",
        "+trainer.enable_progress_bar=false", "callbacks.evaluation=null",
    ]
    done = subprocess.run(cmd, cwd=PROJECT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    (sweep,) = Path(tmp_path).glob("multiruns/*/*")
    jobs = sorted(p.relative_to(sweep).parts[0] for p in sweep.glob("*/checkpoints/last.ckpt"))
    assert [(j.split("_", 1)[0], f"seed={j[0]}" in j) for j in jobs] == [("0", True), ("1", True)]  # named in the worker
    assert list(sweep.glob(".submitit/*"))  # the jobs went through submitit
