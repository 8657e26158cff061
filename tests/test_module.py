"""What one GAN iteration does to each network, observed through optimizer step hooks."""

import pytest
import pytorch_lightning as pl
import torch
from omegaconf import open_dict

from gan.runtime.build import build_gan
from gan.data import MNISTDataModule


def snapshot(net):
    return [p.detach().clone() for p in net.parameters()]


def changed(before, net):
    return any(not torch.equal(b, p) for b, p in zip(before, net.parameters()))


class StepRecorder:
    """Records, for each optimizer step, which network it changed and D's gradients after it."""

    def __init__(self, module):
        self.module = module
        self.events = []
        self._before = None

    def attach(self, optimizers):
        opt_g, opt_d = optimizers
        for name, opt in (("G", opt_g), ("D", opt_d)):
            opt.register_step_pre_hook(lambda *_: self._pre())
            opt.register_step_post_hook(lambda *_, n=name: self._post(n))

    def _pre(self):
        self._before = (snapshot(self.module.generator), snapshot(self.module.discriminator))

    def _post(self, name):
        g0, d0 = self._before
        d_grads = [None if p.grad is None else p.grad.clone() for p in self.module.discriminator.parameters()]
        self.events.append(
            {
                "opt": name,
                "g_changed": changed(g0, self.module.generator),
                "d_changed": changed(d0, self.module.discriminator),
                "d_grads": d_grads,
                "d_grad_max": max(g.abs().max().item() for g in d_grads if g is not None) if name == "D" else None,
            }
        )


def run_one_iteration(make_cfg, mnist_root, *overrides):
    cfg = make_cfg("model=mlp", "data.batch_size=16", "iterations=1", *overrides)
    model = build_gan(cfg)
    recorder = StepRecorder(model)
    original = model.configure_optimizers

    def configure():
        opts = original()
        recorder.attach(opts)
        return opts

    model.configure_optimizers = configure
    dm = MNISTDataModule(str(mnist_root), batch_size=16, download=False)
    trainer = pl.Trainer(
        accelerator="cpu", max_epochs=-1, logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, use_distributed_sampler=False,
    )
    trainer.fit(model, datamodule=dm)
    assert model.iteration == 1
    return recorder.events


def test_d_phase_changes_only_d_and_g_phase_only_g(make_cfg, mnist_root):
    events = run_one_iteration(make_cfg, mnist_root)
    assert [e["opt"] for e in events] == ["D", "G"]
    d_step, g_step = events
    assert d_step["d_changed"] and not d_step["g_changed"]
    assert g_step["g_changed"] and not g_step["d_changed"]
    # the G phase leaves D's gradients exactly as the D phase left them
    for before, after in zip(d_step["d_grads"], g_step["d_grads"]):
        assert before is not None and torch.equal(before, after)


@pytest.mark.parametrize("d_steps,g_steps", [(3, 1), (1, 2), (2, 3)])
def test_schedule_updates_each_network_the_stated_number_of_times(make_cfg, mnist_root, d_steps, g_steps):
    events = run_one_iteration(make_cfg, mnist_root, f"model.updates.d_steps={d_steps}", f"model.updates.g_steps={g_steps}")
    assert [e["opt"] for e in events] == ["D"] * d_steps + ["G"] * g_steps


def test_simultaneous_schedule_steps_both_from_one_forward_pass(make_cfg, mnist_root):
    events = run_one_iteration(make_cfg, mnist_root, "loss=nonsaturating", "model.updates.schedule=simultaneous")
    assert [e["opt"] for e in events] == ["D", "G"]
    assert events[0]["d_changed"] and not events[0]["g_changed"]
    assert events[1]["g_changed"] and not events[1]["d_changed"]


def test_gradient_clipping_by_value_bounds_d_gradients(make_cfg, mnist_root):
    events = run_one_iteration(make_cfg, mnist_root, "model.updates.clip_d={val: 0.001, algorithm: value}")
    assert events[0]["d_grad_max"] <= 0.001 + 1e-9
    unclipped = run_one_iteration(make_cfg, mnist_root)
    assert unclipped[0]["d_grad_max"] > 0.001


def test_gradient_clipping_by_norm_bounds_the_total_norm(make_cfg, mnist_root):
    events = run_one_iteration(make_cfg, mnist_root, "model.updates.clip_d={val: 0.01, algorithm: norm}")
    norm = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in events[0]["d_grads"]]))
    assert norm.item() <= 0.01 * (1 + 1e-4)


def test_invalid_schedule_settings_are_rejected(make_cfg):
    cfg = make_cfg("model=mlp")
    with open_dict(cfg):
        cfg.model.updates.d_steps = 0
    with pytest.raises(ValueError, match="model.updates.d_steps=0: must be a positive integer"):
        build_gan(cfg)
    cfg = make_cfg("model=mlp", "model.updates.schedule=simultaneous", "model.updates.d_steps=2")
    with pytest.raises(ValueError, match="simultaneous takes one step"):
        build_gan(cfg)
    cfg = make_cfg("model=mlp", "model.updates.clip_g={val: 1.0, algorithm: sideways}")
    with pytest.raises(ValueError, match="clip_g"):
        build_gan(cfg)


def test_fixed_noise_is_a_buffer_fixed_by_the_seed(make_cfg):
    a, b = build_gan(make_cfg("model=mlp", "seed=3")), build_gan(make_cfg("model=mlp", "seed=3"))
    assert "fixed_noise" in dict(a.named_buffers())
    assert torch.equal(a.fixed_noise, b.fixed_noise)
    assert a.fixed_noise.shape == (64, 96)
    assert not torch.equal(a.fixed_noise, build_gan(make_cfg("model=mlp", "seed=4")).fixed_noise)


# ---------------------------------------------------------------- regularisers, schedules, switches

from pathlib import Path  # noqa: E402

import gan.losses  # noqa: E402
from gan.runtime.checkpoints import load_checkpoint  # noqa: E402
from gan.runtime.errors import NonFiniteError  # noqa: E402
from gan.train import train  # noqa: E402
from tests.conftest import QUICK  # noqa: E402


def test_wasserstein_clips_critic_weights_after_each_update(make_cfg, mnist_root):
    cfg = make_cfg(*QUICK, "loss=wasserstein", "iterations=2", "model.updates.d_steps=2")
    model = build_gan(cfg)
    trainer = pl.Trainer(accelerator="cpu", max_epochs=-1, logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, use_distributed_sampler=False)
    trainer.fit(model, datamodule=MNISTDataModule(str(mnist_root), batch_size=16, download=False))
    assert max(p.abs().max().item() for p in model.discriminator.parameters()) <= 0.01
    assert max(p.abs().max().item() for p in model.generator.parameters()) > 0.01  # G is not clipped


def test_gradient_penalty_loss_trains(make_cfg, mnist_root):
    events = run_one_iteration(make_cfg, mnist_root, "loss=wasserstein_gp")
    assert [e["opt"] for e in events] == ["D", "G"] and events[0]["d_changed"]


def count_generator_forwards(make_cfg, mnist_root, *overrides):
    cfg = make_cfg(*QUICK, "iterations=3", *overrides)
    model = build_gan(cfg)
    calls = []
    model.generator.register_forward_hook(lambda *_: calls.append(1) if model.generator.training else None)
    trainer = pl.Trainer(accelerator="cpu", max_epochs=-1, logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, use_distributed_sampler=False)
    trainer.fit(model, datamodule=MNISTDataModule(str(mnist_root), batch_size=16, download=False))
    return len(calls)


def test_reuse_fake_saves_one_generator_pass_per_iteration(make_cfg, mnist_root):
    assert count_generator_forwards(make_cfg, mnist_root) == 6
    assert count_generator_forwards(make_cfg, mnist_root, "model.speed.reuse_fake=true") == 3


def test_inverse_time_decay_schedule_follows_the_update_count(make_cfg, mnist_root):
    cfg = make_cfg(*QUICK, "iterations=4", "model.updates.d_steps=2",
                   "model.updates.scheduler_d={_target_: gan.schedules.InverseTimeDecay, _partial_: true, decay: 0.5}")
    model = build_gan(cfg)
    trainer = pl.Trainer(accelerator="cpu", max_epochs=-1, logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, use_distributed_sampler=False)
    trainer.fit(model, datamodule=MNISTDataModule(str(mnist_root), batch_size=16, download=False))
    opt_g, opt_d = model.optimizers()
    assert opt_d.param_groups[0]["lr"] == pytest.approx(1e-3 / (1 + 0.5 * 8))  # 8 D updates
    assert opt_g.param_groups[0]["lr"] == pytest.approx(1e-3)  # G has no schedule


def poison_d_loss(monkeypatch, when):
    """Make D's loss NaN on the calls whose number (from 1) ``when`` picks."""
    real = gan.losses.d_nonsaturating
    calls = []

    def poisoned(real_logits, fake_logits, **kw):
        calls.append(1)
        loss = real(real_logits, fake_logits, **kw)
        return loss * float("nan") if when(len(calls)) else loss

    monkeypatch.setattr(gan.losses, "d_nonsaturating", poisoned)


def nan_on_call(monkeypatch, call_number):
    poison_d_loss(monkeypatch, lambda call: call == call_number)


def test_nonfinite_loss_stops_naming_iteration_and_phase_and_keeps_the_checkpoint(make_cfg, monkeypatch):
    nan_on_call(monkeypatch, 3)
    cfg = make_cfg(*QUICK, "checkpoint_every=2")
    with pytest.raises(NonFiniteError, match=r"non-finite D loss at GAN iteration 3 \(D phase\)"):
        train(cfg)
    ckpt = load_checkpoint(Path(cfg.paths.output_dir) / "checkpoints" / "last.ckpt")
    assert ckpt["gan"]["iteration"] == 2
    assert all(torch.isfinite(v).all() for v in ckpt["state_dict"].values())


def test_nonfinite_loss_with_skip_drops_that_update_and_counts_it(make_cfg, monkeypatch):
    nan_on_call(monkeypatch, 3)
    metrics = train(make_cfg(*QUICK, "on_nonfinite=skip"))
    assert metrics["train/iteration"] == 6
    assert metrics["train/skipped_updates"] == 1


def test_skip_gives_up_after_max_skipped_in_a_row_but_not_after_scattered_skips(make_cfg, monkeypatch):
    poison_d_loss(monkeypatch, lambda call: call >= 2)
    cfg = make_cfg(*QUICK, "iterations=12", "on_nonfinite=skip", "model.run.max_skipped_in_a_row=3")
    with pytest.raises(NonFiniteError, match=r"GAN iteration 4 .*3 D updates in a row not finite"):
        train(cfg)
    # a D update that works in between resets the count: every other call poisoned never gives up
    monkeypatch.undo()
    poison_d_loss(monkeypatch, lambda call: call % 2 == 1)
    metrics = train(make_cfg(*QUICK, "iterations=12", "on_nonfinite=skip", "model.run.max_skipped_in_a_row=2", run="second"))
    assert (metrics["train/iteration"], metrics["train/skipped_updates"]) == (12, 6)


def test_joint_d_pass_gives_the_separate_passes_gradients(make_cfg, mnist_root):
    runs = {}
    for joint in ("true", "false"):
        pl.seed_everything(0, verbose=False)
        runs[joint] = run_one_iteration(make_cfg, mnist_root, f"model.speed.joint_d_pass={joint}")
    joint, separate = runs["true"][0]["d_grads"], runs["false"][0]["d_grads"]
    assert len(joint) == len(separate) > 0
    for a, b in zip(joint, separate):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)  # the same sums, in another order


def test_joint_d_pass_is_refused_for_a_discriminator_with_batch_norm(make_cfg):
    with pytest.raises(ValueError, match="joint_d_pass=true needs a discriminator that scores each image on its own.*BatchNorm"):
        build_gan(make_cfg("model=paddle_dcgan", "model.speed.joint_d_pass=true"))


def test_joint_d_pass_is_refused_for_spectral_norm(make_cfg):
    from gan.module import _has_spectral_norm

    assert _has_spectral_norm(torch.nn.utils.parametrizations.spectral_norm(torch.nn.Linear(3, 1)))
    assert _has_spectral_norm(torch.nn.utils.spectral_norm(torch.nn.Linear(3, 1)))
    assert not _has_spectral_norm(torch.nn.Linear(3, 1))


@pytest.mark.parametrize("schedule", ["alternating", "simultaneous"])
def test_joint_d_pass_gives_the_separate_passes_updates_in_both_schedules(make_cfg, mnist_root, schedule):
    runs = {}
    for joint in ("true", "false"):
        pl.seed_everything(0, verbose=False)
        runs[joint] = run_one_iteration(make_cfg, mnist_root, "loss=nonsaturating", f"model.speed.joint_d_pass={joint}",
                                        f"model.updates.schedule={schedule}")
    for a, b in zip(runs["true"][0]["d_grads"], runs["false"][0]["d_grads"]):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)


def test_relativistic_scalars_ignore_a_constant_shift_of_the_logits():
    from gan.runtime.bookkeeping import iteration_scalars

    real, fake = torch.tensor([[2.0], [1.0]]), torch.tensor([[0.0], [-1.0]])
    loss = torch.tensor(0.0)
    shifted = [iteration_scalars(loss, loss, real + c, fake + c, relativistic=True) for c in (0.0, 50.0)]
    assert torch.allclose(shifted[0], shifted[1])
    # every real image above the mean generated one, every generated below the mean real: D ranks them all
    assert shifted[0][4].item() == 1.0 and shifted[0][5].item() == 1.0
    # the absolute view would call every image real after the shift
    assert iteration_scalars(loss, loss, real + 50, fake + 50)[5].item() == 0.0
