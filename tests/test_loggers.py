"""gan.runtime.loggers: logger=wandb and logger=mlflow. A 6-iteration run with each, read back with
the tool's own reader (MLflow's MlflowClient; W&B's ``wandb leet inspect`` over the offline run's
.wandb file), and the one line a missing package gets."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlparse

import pytest

from gan.runtime.errors import ConfigError
from gan.runtime.loggers import local_artifact_location
from gan.runtime.runs import flatten
from gan.train import train
from tests.conftest import PROJECT, QUICK, data_root

PNG = b"\x89PNG\r\n\x1a\n"

# QUICK with the evaluation switched on once, at the end, on the quick classifier and 100 samples,
# so the loggers get val/* and val_floor/* beside train/*
EVALUATED = [o for o in QUICK if o != "callbacks.evaluation=null"] + [
    "callbacks.evaluation.recipe=quick", "eval_every=6", "eval_samples=100", "eval_final_samples=100",
    "callbacks.sample_grids.frames=2",
]


# ---------------------------------------------------------------------------------- pure helpers
def test_the_config_is_flattened_to_the_keys_of_the_command_line():
    config = {"model": {"optimizer_g": {"lr": 2e-4, "betas": [0.5, 0.999]}, "terms": {}}, "seed": 0, "ckpt_path": None}
    assert flatten(config) == {"model.optimizer_g.lr": 2e-4, "model.optimizer_g.betas": [0.5, 0.999],
                               "model.terms": {}, "seed": 0, "ckpt_path": None}


def test_a_local_sqlite_store_keeps_its_artifacts_beside_it_whatever_the_working_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    expected = (tmp_path / "outputs" / "mlartifacts").as_uri()
    assert local_artifact_location("sqlite:///outputs/mlflow.db") == expected  # relative: from the folder launched in
    assert local_artifact_location(f"sqlite:///{tmp_path}/outputs/mlflow.db") == expected
    assert local_artifact_location("http://localhost:5000") is None  # a server keeps its own
    assert local_artifact_location("databricks") is None


# ---------------------------------------------------------------------------------- MLflow
def test_an_mlflow_run_holds_the_scalars_the_config_and_the_grids(make_cfg, cache, monkeypatch):
    pytest.importorskip("mlflow")
    from mlflow.tracking import MlflowClient

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    cfg = make_cfg(*EVALUATED, "logger=mlflow")
    outputs = Path(cfg.paths.log_dir)
    metrics = train(cfg)

    uri = cfg.logger.mlflow.tracking_uri
    assert uri == f"sqlite:///{outputs}/mlflow.db" and (outputs / "mlflow.db").is_file()
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name("gan")
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.info.run_name == "run" and run.info.status == "FINISHED"  # named after the run folder
    assert run.info.artifact_uri.startswith((outputs / "mlartifacts").as_uri())

    d_loss = client.get_metric_history(run.info.run_id, "train/d_loss")
    assert [m.step for m in d_loss] == [2, 4, 6]  # log_every=2, on the GAN-iteration axis
    (fid,) = client.get_metric_history(run.info.run_id, "val/fid")
    assert fid.step == 6 and fid.value == pytest.approx(metrics["val/fid"])
    assert run.data.metrics["val_floor/fid"] == pytest.approx(metrics["val_floor/fid"])
    assert run.data.metrics["run/wall_time_s"] > 0

    params = run.data.params  # the composed config, by its command-line keys
    assert params["iterations"] == "6" and params["data.batch_size"] == "16"
    assert params["model._target_"] == "gan.module.GAN" and params["loss.name"] == "nonsaturating"

    grids = {Path(a.path).name for a in client.list_artifacts(run.info.run_id, "samples")}
    assert {"fixed_noise_6.png", "real_vs_generated_6.png"} <= grids
    local = client.download_artifacts(run.info.run_id, "samples/fixed_noise_6.png", str(outputs.parent))
    assert Path(local).read_bytes()[:8] == PNG


def test_building_the_mlflow_logger_writes_nothing_until_training_starts(tmp_path):
    pytest.importorskip("mlflow")
    from gan.runtime.loggers import MLflowRunLogger

    store = tmp_path / "outputs" / "mlflow.db"
    logger = MLflowRunLogger(run_dir=str(tmp_path / "outputs" / "run"), tracking_uri=f"sqlite:///{store}")
    assert not (tmp_path / "outputs").exists()  # a run refused after its loggers are built leaves no store
    assert logger.run_id and store.is_file()  # made on first use


def test_a_store_mlflow_refuses_is_one_line(tmp_path):
    pytest.importorskip("mlflow")
    from gan.runtime.loggers import MLflowRunLogger

    with pytest.raises(ConfigError, match=r"^logger.mlflow.tracking_uri=file:.*: MLflow no longer takes a plain folder"):
        MLflowRunLogger(run_dir=str(tmp_path / "run"), tracking_uri=f"file:{tmp_path}/mlruns")  # when built
    unknown = MLflowRunLogger(run_dir=str(tmp_path / "run"), tracking_uri="nosuch://host")
    with pytest.raises(ConfigError, match=r"^logger.mlflow.tracking_uri=nosuch://host: \S") as refused:
        unknown.experiment  # on first use, in MLflow's words
    assert "\n" not in str(refused.value)


# ---------------------------------------------------------------------------------- Weights & Biases
@pytest.fixture
def wandb_without_key(tmp_path, monkeypatch):
    """No W&B API key anywhere (no WANDB_API_KEY, an empty netrc file), and W&B's own folders in tmp_path."""
    pytest.importorskip("wandb")
    for name in ("WANDB_API_KEY", "WANDB_MODE", "WANDB_BASE_URL", "WANDB_DIR"):
        monkeypatch.delenv(name, raising=False)
    netrc = tmp_path / "netrc"
    netrc.write_text("")
    monkeypatch.setenv("NETRC", str(netrc))
    for name in ("WANDB_CONFIG_DIR", "WANDB_CACHE_DIR", "WANDB_DATA_DIR"):
        monkeypatch.setenv(name, str(tmp_path / name.lower()))
    return netrc


def inspect_wandb(run_folder: Path, *flags: str) -> str:
    """``wandb leet inspect --json``: W&B's own reader of a run's .wandb file."""
    done = subprocess.run([sys.executable, "-m", "wandb", "leet", "inspect", "--json", *flags, str(run_folder)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def test_a_wandb_run_without_a_key_logs_offline_under_the_run_folder(make_cfg, cache, wandb_without_key, caplog):
    cfg = make_cfg(*EVALUATED, "logger=wandb")
    run_dir = Path(cfg.paths.output_dir)
    with caplog.at_level(logging.INFO, logger="gan.runtime.loggers"):
        metrics = train(cfg)

    (offline,) = (run_dir / "wandb").glob("offline-run-*")
    said = [r.getMessage() for r in caplog.records if r.getMessage().startswith("W&B:")]
    assert said == [f"W&B: no API key, logging offline to {offline}; `wandb sync {offline}` uploads it later"]

    records = [json.loads(line) for line in inspect_wandb(offline).splitlines() if line.strip()]
    rows = [r["history"]["item"] for r in records if r.get("type") == "history"]
    assert [row["iteration"] for row in rows if "train/d_loss" in row] == [2, 4, 6]  # the GAN-iteration axis
    (final,) = [row for row in rows if "val/fid" in row]
    assert final["iteration"] == 6 and final["val/fid"] == pytest.approx(metrics["val/fid"])
    assert final["val_floor/fid"] == pytest.approx(metrics["val_floor/fid"])

    grids = [row for row in rows if "samples/fixed_noise.filenames" in row]
    assert grids and grids[-1]["iteration"] == 6
    for name in grids[-1]["samples/fixed_noise.filenames"]:
        assert (offline / "files" / name).read_bytes()[:8] == PNG

    summary = json.loads(inspect_wandb(offline, "--summary"))
    assert summary["config"]["iterations"] == 6 and summary["config"]["model._target_"] == "gan.module.GAN"
    assert "finished" in json.dumps(summary).lower()  # the run was closed when training ended


def test_wandb_goes_online_only_with_a_key(tmp_path, wandb_without_key, monkeypatch):
    from gan.runtime.loggers import WandbRunLogger

    offline = WandbRunLogger(run_dir=str(tmp_path / "run"))
    assert offline._wandb_init["mode"] == "offline" and offline._wandb_init["name"] == "run"
    import wandb

    host = urlparse(wandb.Settings().base_url).hostname  # W&B's server, as `wandb login` records it
    wandb_without_key.write_text(f"machine {host}\n  login user\n  password {'0' * 40}\n")
    assert "mode" not in WandbRunLogger(run_dir=str(tmp_path / "run"))._wandb_init  # `wandb login` was run
    monkeypatch.setenv("NETRC", str(tmp_path / "absent"))
    monkeypatch.setenv("WANDB_API_KEY", "0" * 40)
    assert "mode" not in WandbRunLogger(run_dir=str(tmp_path / "run"))._wandb_init
    assert WandbRunLogger(run_dir=str(tmp_path / "run"), offline=True)._wandb_init["mode"] == "offline"


# ---------------------------------------------------------------------------------- a missing package
@pytest.mark.parametrize("package", ["wandb", "mlflow"])
def test_a_missing_package_is_refused_naming_the_extra_before_anything_is_written(package, make_cfg, monkeypatch):
    monkeypatch.setitem(sys.modules, package, None)  # as if it were not installed
    cfg = make_cfg(*QUICK, f"logger={package}")
    with pytest.raises(ConfigError) as refused:
        train(cfg)
    assert str(refused.value) == f"logger={package} needs the {package} package: pip install -e '.[{package}]'"
    log_dir = Path(cfg.paths.log_dir)
    assert not log_dir.exists() or not any(log_dir.iterdir())  # no run folder, no W&B folder, no MLflow store


def test_the_command_line_says_which_extra_to_install_in_one_line(tmp_path):
    log_dir, run = tmp_path / "outputs", tmp_path / "outputs" / "run"
    overrides = [*QUICK, "logger=wandb", f"paths.log_dir={log_dir}", f"paths.output_dir={run}", f"hydra.run.dir={run}",
                 f"data.root={data_root()}"]
    script = ("import runpy, sys; sys.modules['wandb'] = None  # as if it were not installed\n"
              f"sys.argv = ['gan.train', *{overrides!r}]\n"
              "runpy.run_module('gan.train', run_name='__main__', alter_sys=True)")  # = python -m gan.train
    done = subprocess.run([sys.executable, "-c", script], cwd=PROJECT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr[-3000:]
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert errors == ["error: logger=wandb needs the wandb package: pip install -e '.[wandb]'"]
    written = {p.relative_to(log_dir).as_posix() for p in log_dir.rglob("*") if p.is_file()}
    assert written <= {"run/train.log"}  # Hydra's own log alone: no run files, no W&B folder
