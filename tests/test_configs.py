"""Every option of every config group composes, and what it describes can be built."""

import subprocess
import sys
from pathlib import Path

import pytest
import torch
from hydra.utils import instantiate

from gan.runtime.build import build_callbacks, build_gan, build_loggers, build_trainer
from gan.train import train
from tests.conftest import CONF_DIR, PROJECT, QUICK, data_root


def options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF_DIR / group).glob("*.yaml"))


def test_root_config_composes_the_documented_groups(make_cfg):
    cfg = make_cfg()
    for key in ("data", "model", "loss", "trainer", "logger", "callbacks", "paths"):
        assert key in cfg, key
    for key in ("seed", "iterations", "ckpt_path", "checkpoint_every", "sample_every"):
        assert key in cfg, key
    assert cfg.model.generator._target_ == "gan.nets.dcgan.InfoGANGenerator"
    assert cfg.data.scale_to == "tanh"  # follows the generator's output activation


@pytest.mark.parametrize("option", options("model"))
def test_every_model_builds_and_generates(make_cfg, option):
    cfg = make_cfg(f"model={option}", "loss=nonsaturating")  # a loss every update schedule runs
    gan = build_gan(cfg)
    z = gan.noise.sample(4)
    gan.eval()
    x = gan(z)
    assert x.shape == (4, 1, 28, 28)
    assert gan.discriminator(x).shape == (4, 1)
    assert cfg.data.scale_to == cfg.model.generator.output_activation


@pytest.mark.parametrize("option", options("loss"))
def test_every_loss_builds(make_cfg, option):
    loss = instantiate(make_cfg(f"loss={option}").loss)
    logits = torch.randn(8, 1)
    assert torch.isfinite(loss.d_loss(logits, -logits)) and torch.isfinite(loss.g_loss(logits, -logits))


@pytest.mark.parametrize("option", options("data"))
def test_every_data_option_composes(make_cfg, option):
    cfg = make_cfg(f"data={option}")
    dm = instantiate(cfg.data)
    assert dm.batch_size == cfg.data.batch_size


@pytest.mark.parametrize("option", options("trainer"))
def test_every_trainer_option_composes(make_cfg, option):
    cfg = make_cfg(f"trainer={option}")
    assert cfg.trainer.use_distributed_sampler is False
    needs_gpu = option in ("gpu", "ddp")
    if needs_gpu and not torch.cuda.is_available():
        assert cfg.trainer.accelerator == "gpu"
        return
    trainer = build_trainer(cfg, callbacks=[], loggers=[])
    assert trainer.max_epochs == -1


@pytest.mark.parametrize("option", options("logger"))
def test_every_logger_option_builds(make_cfg, option):
    loggers = build_loggers(make_cfg(f"logger={option}"))
    assert loggers


@pytest.mark.parametrize("option", options("callbacks"))
def test_every_callbacks_option_builds(make_cfg, option):
    names = {type(c).__name__ for c in build_callbacks(make_cfg(f"callbacks={option}"))}
    assert {"SampleGrids", "IterationCheckpoint", "IterationProgressBar"} <= names


def test_callbacks_can_be_switched_off(make_cfg):
    names = {type(c).__name__ for c in build_callbacks(make_cfg("callbacks.sample_grids=null"))}
    assert "SampleGrids" not in names and "IterationCheckpoint" in names


@pytest.mark.parametrize("option", options("debug"))
def test_every_debug_overlay_composes(make_cfg, option):
    make_cfg(f"debug={option}")


@pytest.mark.parametrize("option", options("experiment"))
def test_every_experiment_overlay_composes(make_cfg, option):
    build_gan(make_cfg(f"experiment={option}"))


def test_fast_dev_run_overlay_runs_one_batch(make_cfg):
    cfg = make_cfg("model=mlp", "data.batch_size=8", "debug=fdr", "callbacks.evaluation=null")
    train(cfg)


def test_sweep_runs_every_combination(tmp_path):
    cmd = [
        sys.executable, "-m", "gan.train", "-m", "model=mlp,dcgan", *QUICK[1:], "iterations=2",
        f"paths.log_dir={tmp_path}", f"data.root={data_root()}", "callbacks.progress_bar=null",
    ]
    done = subprocess.run(cmd, cwd=PROJECT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    ckpts = sorted(Path(tmp_path).glob("multiruns/**/checkpoints/last.ckpt"))
    assert len(ckpts) == 2
