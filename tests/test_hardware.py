"""Precision and distributed settings come from Lightning and work with the manual optimization."""

import math
from pathlib import Path

import pytest
import torch

from gan.runs import load_checkpoint
from gan.train import train
from tests.conftest import QUICK


def test_bf16_mixed_precision_trains_with_manual_backward(make_cfg):
    metrics = train(make_cfg(*QUICK, "trainer.precision=bf16-mixed"))
    assert metrics["train/iteration"] == 6
    assert all(math.isfinite(v) for v in metrics.values())


def test_ddp_sim_trains_two_cpu_processes_and_writes_once(make_cfg):
    cfg = make_cfg(*QUICK, "trainer=ddp_sim", "callbacks.progress_bar=null")
    metrics = train(cfg)
    assert metrics["train/iteration"] == 6  # reported back from rank 0
    run = Path(cfg.paths.output_dir)
    assert load_checkpoint(run / "checkpoints" / "last.ckpt")["gan"]["iteration"] == 6
    assert len(list((run / "tensorboard").glob("events.out.tfevents.*"))) == 1
    assert len(list((run / "checkpoints").iterdir())) == 1


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("precision", ["32-true", "16-mixed", "bf16-mixed"])
def test_gpu_training_in_every_precision(make_cfg, precision):
    if precision == "bf16-mixed" and not torch.cuda.is_bf16_supported():
        pytest.skip("this GPU has no bf16")
    cfg = make_cfg(*QUICK, "model=dcgan", "trainer=gpu", f"trainer.precision={precision}")
    metrics = train(cfg)
    assert metrics["train/iteration"] == 6
    assert all(math.isfinite(v) for v in metrics.values())
