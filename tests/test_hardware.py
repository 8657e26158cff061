"""Precision and distributed settings come from Lightning and work with the manual optimization."""

import logging
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch
from omegaconf import open_dict

from gan.runtime.build import build_gan
from gan.runtime.checkpoints import load_checkpoint
from gan.train import batch_size_line, train
from tests.conftest import PROJECT, QUICK


def test_bf16_mixed_precision_trains_with_manual_backward(make_cfg):
    metrics = train(make_cfg(*QUICK, "trainer.precision=bf16-mixed"))
    assert metrics["train/iteration"] == 6
    assert all(math.isfinite(v) for v in metrics.values())


def test_bf16_with_the_default_recipe_clipping_and_fused_adam(make_cfg):
    # Lightning refuses to clip for a fused optimizer under mixed precision; bf16 needs no scaler,
    # so the template clips directly. The default recipe's R1/R2 double backward runs under bf16.
    metrics = train(make_cfg("data.batch_size=16", "iterations=4", "callbacks.evaluation=null", "trainer.precision=bf16-mixed",
                             "model.updates.clip_d={val: 1.0, algorithm: norm}", "model.updates.clip_g={val: 0.5, algorithm: value}",
                             "loss.terms.r1_r2.every=1"))
    assert metrics["train/iteration"] == 4
    assert all(math.isfinite(v) for v in metrics.values())


class RankRecord(pl.Callback):
    """Each rank writes what it did to ``<dirpath>/rank<r>.pt``: its GAN iteration count, a checksum
    of every real batch it was served, and its generator's weights at the end."""

    def __init__(self, dirpath: str) -> None:
        self.dirpath = Path(dirpath)
        self.batch_sums: list[float] = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        real = batch[0] if isinstance(batch, (list, tuple)) else batch
        self.batch_sums.append(float(real.double().sum()))

    def on_train_end(self, trainer, pl_module) -> None:
        self.dirpath.mkdir(parents=True, exist_ok=True)
        torch.save({
            "iteration": pl_module.iteration, "world_size": trainer.world_size, "batch_sums": self.batch_sums,
            "generator": {k: v.detach().cpu().clone() for k, v in pl_module.generator.state_dict().items()},
        }, self.dirpath / f"rank{trainer.global_rank}.pt")


def test_ddp_sim_trains_two_cpu_processes_and_writes_once(make_cfg, tmp_path, caplog):
    cfg = make_cfg(*QUICK, "trainer=ddp_sim", "callbacks.progress_bar=null")
    records = tmp_path / "ranks"
    with open_dict(cfg):
        cfg.callbacks.rank_record = {"_target_": "tests.test_hardware.RankRecord", "dirpath": str(records)}
    with caplog.at_level(logging.INFO, logger="gan.train"):
        metrics = train(cfg)
    assert metrics["train/iteration"] == 6  # reported back from rank 0
    assert "batch size: 16 per process x 2 processes = effective batch 32" in caplog.text

    # both ranks trained, each on its own share of the data, and ended with the same G
    ranks = [torch.load(records / f"rank{r}.pt") for r in (0, 1)]
    assert [r["iteration"] for r in ranks] == [6, 6] and all(r["world_size"] == 2 for r in ranks)
    assert all(len(r["batch_sums"]) == 6 for r in ranks)
    assert ranks[0]["batch_sums"] != ranks[1]["batch_sums"]
    g0, g1 = ranks[0]["generator"], ranks[1]["generator"]
    assert g0.keys() == g1.keys() and all(torch.equal(g0[k], g1[k]) for k in g0)

    # rank 0 alone wrote: one checkpoint, one set of event files, one copy of each grid
    run = Path(cfg.paths.output_dir)
    saved = load_checkpoint(run / "checkpoints" / "last.ckpt")
    assert saved["gan"]["iteration"] == 6
    assert all(torch.equal(saved["state_dict"][f"generator.{k}"], g0[k]) for k in g0)
    pl.seed_everything(int(cfg.seed), verbose=False)
    initial = build_gan(cfg).generator.state_dict()  # the seed of the run builds its initial G
    assert not all(torch.equal(initial[k], g0[k]) for k in g0), "G did not change: no training happened"
    assert len(list((run / "tensorboard").glob("events.out.tfevents.*"))) == 1
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["last.ckpt"]
    assert sorted(p.name for p in (run / "samples").iterdir()) == [
        "fixed_noise.png", *(f"fixed_noise_{i}.png" for i in range(1, 7)), "real_vs_generated.png", "timelapse.gif"]


def test_batch_size_line_names_processes_nodes_and_the_effective_batch():
    assert batch_size_line(64, 1) == (
        "batch size: 64 per process x 1 process = effective batch 64 (D and G gradients are averaged over all processes)")
    assert "64 per process x 8 processes on 2 nodes = effective batch 512" in batch_size_line(64, 8, 2)


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


@pytest.mark.parametrize(("given", "expected"), [
    ({}, "1000"),  # the template's short spin
    ({"GOMP_SPINCOUNT": "300000"}, "300000"),  # the user's own value wins
    ({"OMP_WAIT_POLICY": "ACTIVE"}, None),  # a wait policy of the user's: no spin count is added
])
def test_importing_gan_sets_a_short_openmp_spin_unless_the_environment_has_its_own(given, expected):
    env = {k: v for k, v in os.environ.items() if k not in ("GOMP_SPINCOUNT", "OMP_WAIT_POLICY")} | given
    done = subprocess.run([sys.executable, "-c", "import gan, os; print(os.environ.get('GOMP_SPINCOUNT'))"],
                          cwd=PROJECT, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(expected)
