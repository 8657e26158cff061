"""End to end: a short run writes checkpoints, grids and scalars on the GAN-iteration axis; resume."""

from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch
from omegaconf import open_dict
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from gan.runtime.checkpoints import load_checkpoint
from gan.runtime.errors import RunError
from gan.train import FINISHED, train
from tests.conftest import QUICK

SCALAR_TAGS = {f"train/{k}" for k in ("d_loss", "g_loss", "d_real", "d_fake", "d_acc_real", "d_acc_fake")}
IMAGE_TAGS = {"samples/fixed_noise", "samples/real_vs_generated"}


def events(run_dir: Path) -> EventAccumulator:
    acc = EventAccumulator(str(run_dir / "tensorboard"), size_guidance={"scalars": 0, "images": 0})
    acc.Reload()
    return acc


@pytest.fixture
def short_run(make_cfg):
    cfg = make_cfg(*QUICK)
    metrics = train(cfg)
    return cfg, Path(cfg.paths.output_dir), metrics


def test_short_run_writes_checkpoint_grids_and_scalars(short_run):
    cfg, run, metrics = short_run
    assert (run / "checkpoints" / "last.ckpt").is_file()
    assert not list((run / "checkpoints").glob(".*tmp*"))  # no temporary file left behind
    for name in ("fixed_noise", "real_vs_generated"):
        png = run / "samples" / f"{name}.png"
        assert png.is_file() and png.stat().st_size > 1000
    assert (run / "config.yaml").is_file() and (run / "versions.json").is_file()
    acc = events(run)
    tags = acc.Tags()
    assert SCALAR_TAGS <= set(tags["scalars"])
    assert IMAGE_TAGS <= set(tags["images"])
    for tag in SCALAR_TAGS:
        assert [e.step for e in acc.Scalars(tag)] == [2, 4, 6]  # log_every=2, on the iteration axis
    for tag in IMAGE_TAGS:
        # iteration 1, every 3, 8 frames over the budget of 6 (so every iteration), the end
        assert [e.step for e in acc.Images(tag)] == [1, 2, 3, 4, 5, 6]
    probs = [acc.Scalars(f"train/{k}")[-1].value for k in ("d_real", "d_fake", "d_acc_real", "d_acc_fake")]
    assert all(0.0 <= p <= 1.0 for p in probs)
    assert set(metrics) == SCALAR_TAGS | {"train/iteration", FINISHED} and metrics[FINISHED] == 1.0
    assert metrics["train/iteration"] == 6


def test_checkpoint_holds_iteration_fixed_noise_config_and_both_optimizers(short_run):
    cfg, run, _ = short_run
    ckpt = load_checkpoint(run / "checkpoints" / "last.ckpt")
    assert ckpt["gan"]["iteration"] == 6
    assert ckpt["gan"]["config"]["model"]["generator"]["_target_"] == "gan.nets.mlp.MLPGenerator"
    assert "fixed_noise" in ckpt["state_dict"]
    assert len(ckpt["optimizer_states"]) == 2
    for state in ckpt["optimizer_states"]:
        steps = {int(s["step"]) for s in state["state"].values()}
        assert steps == {6}  # one Adam step per iteration for each network


def test_resume_continues_the_iteration_count_and_the_curves(short_run, make_cfg):
    cfg, run, _ = short_run
    before = load_checkpoint(run / "checkpoints" / "last.ckpt")
    resumed = make_cfg(*QUICK, "iterations=10", "ckpt_path=last", run="ignored")
    train(resumed)
    after = load_checkpoint(run / "checkpoints" / "last.ckpt")  # the same run folder, continued
    assert after["gan"]["iteration"] == 10
    assert torch.equal(before["state_dict"]["fixed_noise"], after["state_dict"]["fixed_noise"])
    for state in after["optimizer_states"]:
        assert {int(s["step"]) for s in state["state"].values()} == {10}
    steps = [e.step for e in events(run).Scalars("train/g_loss")]
    assert steps == [2, 4, 6, 8, 10]  # no gap, no duplicate
    assert (run / "config.resume-6.yaml").is_file()


@pytest.mark.parametrize(
    "extra,stop_at,total",
    [
        ([], 5, 8),  # interrupted mid-epoch at its budget
        (["data.digits=[1]", "data.batch_size=1000"], 6, 9),  # interrupted exactly at an epoch's end
        (["checkpoint_every=2"], 4, 7),  # resumed from a periodic checkpoint
    ],
)
def test_interrupted_and_resumed_run_matches_a_straight_run(make_cfg, extra, stop_at, total):
    common = [*QUICK, "checkpoint_every=100", *extra]
    straight = make_cfg(*common, f"iterations={total}", run="straight")
    train(straight)
    first = make_cfg(*common, f"iterations={stop_at}", run="interrupted")
    train(first)
    ckpt = Path(first.paths.output_dir) / "checkpoints" / "last.ckpt"
    assert load_checkpoint(ckpt)["gan"]["iteration"] == stop_at
    train(make_cfg(*common, f"iterations={total}", f"ckpt_path={ckpt}", run="unused"))
    a = load_checkpoint(Path(straight.paths.output_dir) / "checkpoints" / "last.ckpt")
    b = load_checkpoint(ckpt)
    assert b["gan"]["iteration"] == total
    for key in a["state_dict"]:
        assert torch.equal(a["state_dict"][key], b["state_dict"][key]), key  # bit-exact on the CPU


class StopAt(pl.Callback):
    """Stops training at GAN iteration ``at``, as a signal would (the budget stays the same)."""

    def __init__(self, at: int) -> None:
        self.at = at

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if pl_module.iteration == self.at:
            trainer.should_stop = True


def test_resume_is_exact_with_ema_budget_schedules_and_lazy_penalties(make_cfg):
    """The default recipe's parts (EMA, rpgan with R1/R2 every 2nd D update) with a cosine decay
    over the budget, stopped at iteration 5 of 9 and resumed, end bit-identical to a straight run."""
    common = ["model=modern_dcgan", "experiment=ablate_cosine_decay", "loss=rpgan", "loss.terms.r1_r2.every=2", "trainer.precision=32-true",
              "data.batch_size=16", "iterations=9", "checkpoint_every=100", "callbacks.evaluation=null",
              "model.ema.half_life_images=100"]
    straight = make_cfg(*common, run="straight")
    train(straight)
    first = make_cfg(*common, run="interrupted")
    train(first, callbacks=[StopAt(5)])
    ckpt = Path(first.paths.output_dir) / "checkpoints" / "last.ckpt"
    assert load_checkpoint(ckpt)["gan"]["iteration"] == 5
    train(make_cfg(*common, f"ckpt_path={ckpt}", run="unused"))
    a = load_checkpoint(Path(straight.paths.output_dir) / "checkpoints" / "last.ckpt")
    b = load_checkpoint(ckpt)
    assert b["gan"]["iteration"] == 9
    assert any(k.startswith("generator_ema.") for k in a["state_dict"])
    for key in a["state_dict"]:
        assert torch.equal(a["state_dict"][key], b["state_dict"][key]), key
    assert a["lr_schedulers"] == b["lr_schedulers"]


def test_a_new_run_never_writes_into_an_existing_run(short_run, make_cfg):
    cfg, run, _ = short_run
    before = (run / "checkpoints" / "last.ckpt").read_bytes()
    with pytest.raises(RunError, match="already holds a run"):
        train(make_cfg(*QUICK))  # same output_dir, no ckpt_path
    assert (run / "checkpoints" / "last.ckpt").read_bytes() == before


def test_ckpt_path_errors_are_clear(make_cfg):
    with pytest.raises(RunError, match="ckpt_path=last: no checkpoints/last.ckpt under"):
        train(make_cfg(*QUICK, "ckpt_path=last"))
    with pytest.raises(RunError, match="no such file"):
        train(make_cfg(*QUICK, "ckpt_path=/nonexistent/x.ckpt"))


def test_training_by_epochs_still_works(make_cfg, mnist_root):
    cfg = make_cfg(*QUICK, "iterations=null", "trainer.max_epochs=1", "data.digits=[1]", "data.batch_size=1000")
    train(cfg)
    ckpt = load_checkpoint(Path(cfg.paths.output_dir) / "checkpoints" / "last.ckpt")
    assert ckpt["gan"]["iteration"] == 6742 // 1000  # one epoch of full batches of ones


def test_no_budget_is_rejected(make_cfg):
    with pytest.raises(ValueError, match="no training budget"):
        train(make_cfg(*QUICK, "iterations=null"))


def test_missing_data_gives_the_clear_error(make_cfg, tmp_path, monkeypatch):
    import gan.data

    monkeypatch.setattr(gan.data.datamodule, "_download", lambda root, dataset: (_ for _ in ()).throw(OSError("offline")))
    cfg = make_cfg(*QUICK)
    with open_dict(cfg):
        cfg.data.root = str(tmp_path / "empty")
    with pytest.raises(gan.data.DataNotFoundError, match="GAN_DATA_ROOT"):
        train(cfg)


def test_same_seed_gives_the_same_weights_and_samples(make_cfg):
    from gan.sample import load_generator, sample_images

    runs = []
    for name, seed in (("a", 1), ("b", 1), ("c", 2)):
        cfg = make_cfg(*QUICK, f"seed={seed}", run=name)
        train(cfg)
        g, noise = load_generator(Path(cfg.paths.output_dir) / "checkpoints" / "last.ckpt")
        runs.append(sample_images(g, noise, 8, seed=0))
        assert f"seed: {seed}" in (Path(cfg.paths.output_dir) / "config.yaml").read_text()
    assert torch.equal(runs[0], runs[1])
    assert not torch.equal(runs[0], runs[2])
