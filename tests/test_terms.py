"""The training terms (gan/terms/): each term's value on a hand-computed case, that it joins only its
phase and only every k-th update, and that a term added through YAML alone changes the loss."""

from __future__ import annotations

import pytest
import pytorch_lightning as pl
import torch
from torch import Tensor

from gan.runtime.build import build_gan
from gan.runtime.config import ConfigError
from gan.data import MNISTDataModule
from gan.terms import AuxiliaryClassLoss, GradientPenalty, ModeSeeking, Phase, R1R2, Term
from gan.terms.gradient_penalty import gradient_penalty
from gan.terms.mode_seeking import mode_seeking
from gan.terms.r1_r2 import squared_gradient_norm
from tests.conftest import QUICK


def phase(name="D", update=0, real=None, fake=None, noise=None, real_output=None, fake_output=None,
          real_labels=None, fake_labels=None, score=None) -> Phase:
    fake = torch.zeros(4, 1, 2, 2) if fake is None else fake
    return Phase(name, update, real if real is not None else torch.zeros_like(fake), fake,
                 torch.zeros(len(fake), 3) if noise is None else noise, real_labels, fake_labels,
                 real_output, fake_output if fake_output is not None else torch.zeros(len(fake), 1), score)


# ---------------------------------------------------------------- R1 and R2
def linear_d() -> torch.nn.Linear:
    d = torch.nn.Linear(4, 1)
    with torch.no_grad():
        d.weight.copy_(torch.tensor([[1.0, -2.0, 0.5, 3.0]]))  # ||w||^2 = 14.25
    return d


def test_r1_and_r2_equal_the_squared_weight_norm_of_a_linear_d():
    # D(x) = <w, x> + b: grad_x D = w for every image, so E||grad||^2 = ||w||^2
    d, x, y = linear_d(), torch.randn(5, 4, requires_grad=True), torch.randn(5, 4, requires_grad=True)
    assert squared_gradient_norm(d(x), x).item() == pytest.approx(14.25)
    term = R1R2(r1_gamma=2.0, r2_gamma=1.0, every=4)
    value, scalars = term.loss(phase(real=x, fake=y, real_output=d(x), fake_output=d(y)))
    assert value.item() == pytest.approx(4 * (2.0 / 2 + 1.0 / 2) * 14.25)  # scaled by every
    assert scalars["r1"].item() == pytest.approx(14.25) and scalars["r2"].item() == pytest.approx(14.25)
    # its gradient reaches D's weights: d/dw of c * ||w||^2 is 2 c w
    (grad,) = torch.autograd.grad(value, d.weight)
    assert torch.allclose(grad, 2 * 4 * 1.5 * d.weight.detach())


def test_r1_alone_logs_no_r2_and_reads_only_the_adversarial_logit():
    d, x = linear_d(), torch.randn(5, 4, requires_grad=True)
    extra = torch.randn(5, 3)  # class logits after the adversarial one (ACGAN) are not penalised
    value, scalars = R1R2(r1_gamma=1.0, r2_gamma=0.0).loss(
        phase(real=x, fake=torch.zeros(5, 4), real_output=torch.cat([d(x), extra], 1), fake_output=torch.zeros(5, 4)))
    assert set(scalars) == {"r1"} and value.item() == pytest.approx(0.5 * 14.25)


def test_lazy_regularisation_applies_r1_r2_every_kth_d_update_and_never_in_g():
    term = R1R2(every=4)
    assert [term.applies("D", i) for i in range(6)] == [True, False, False, False, True, False]
    assert not term.applies("G", 0)
    assert not R1R2(r1_gamma=0.0, r2_gamma=0.0).applies("D", 0)  # both off: no input gradients asked for
    with pytest.raises(ConfigError, match="loss.terms.r1_r2.r1_gamma=-1"):
        R1R2(r1_gamma=-1)
    with pytest.raises(ConfigError, match="loss.terms.r1_r2.every=0"):
        R1R2(every=0)


# ---------------------------------------------------------------- WGAN-GP
def test_gradient_penalty_is_zero_for_a_unit_gradient_critic_and_positive_otherwise():
    w = torch.zeros(1, 784)
    w[0, 0] = 1.0  # D(x) = x_0: gradient norm exactly 1 everywhere
    unit = lambda x: x.flatten(1) @ w.T  # noqa: E731
    real, fake = torch.rand(16, 1, 28, 28), torch.rand(16, 1, 28, 28)
    assert gradient_penalty(unit, real, fake).item() == pytest.approx(0.0, abs=1e-10)
    steep = lambda x: 3 * x.flatten(1) @ w.T  # noqa: E731  norm 3: penalty = 10 * (3 - 1)^2
    assert gradient_penalty(steep, real, fake, weight=10.0).item() == pytest.approx(40.0)
    term = GradientPenalty(weight=2.5)
    value, scalars = term.loss(phase(real=real, fake=fake, score=lambda x, labels: steep(x)))
    assert value.item() == pytest.approx(10.0) and scalars["gradient_penalty"].item() == pytest.approx(10.0)
    assert term.applies("D", 0) and term.applies("D", 1) and not term.applies("G", 0)


def test_gradient_penalty_gives_the_critic_gradients():
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 1))
    penalty = gradient_penalty(net, torch.rand(4, 1, 28, 28), torch.rand(4, 1, 28, 28))
    penalty.backward()
    assert net[1].weight.grad is not None and net[1].weight.grad.abs().sum() > 0


# ---------------------------------------------------------------- ACGAN's class term
def test_class_term_is_the_cross_entropy_of_the_class_logits_in_both_phases():
    # two images, two classes; logits after the adversarial column
    real_out = torch.tensor([[9.0, 0.0, 0.0], [9.0, 0.0, 0.0]])  # uniform: ln 2 each
    fake_out = torch.tensor([[-9.0, 100.0, 0.0], [-9.0, 0.0, 100.0]])  # certain and right: 0
    labels = torch.tensor([0, 1])
    term = AuxiliaryClassLoss(weight=2.0)
    d_value, d_scalars = term.loss(phase("D", real_output=real_out, fake_output=fake_out,
                                         real_labels=labels, fake_labels=labels))
    assert d_value.item() == pytest.approx(2.0 * torch.log(torch.tensor(2.0)).item())
    assert d_scalars["class_d"].item() == pytest.approx(torch.log(torch.tensor(2.0)).item())
    wrong = torch.tensor([[-9.0, 0.0, 100.0], [-9.0, 100.0, 0.0]])  # certain and wrong: 100 each
    g_value, g_scalars = term.loss(phase("G", fake_output=wrong, fake_labels=labels))
    assert set(g_scalars) == {"class_g"} and g_value.item() == pytest.approx(2.0 * 100.0)
    assert term.applies("D", 3) and term.applies("G", 3)


def test_acgan_brings_its_class_term_and_projection_refuses_one(make_cfg):
    gan = build_gan(make_cfg("experiment=conditional", "model.conditional.kind=acgan"))
    assert [t.name for t in gan.terms] == ["class_loss", "r1_r2"]
    assert [t.name for t in build_gan(make_cfg("experiment=conditional", run="p")).terms] == ["r1_r2"]
    with pytest.raises(ConfigError, match="needs model.conditional.kind=acgan"):
        build_gan(make_cfg("experiment=conditional", "+model.terms.class_loss={_target_: gan.terms.AuxiliaryClassLoss}",
                           run="bad"))


# ---------------------------------------------------------------- mode seeking
def test_mode_seeking_is_the_reciprocal_of_image_gap_per_noise_gap():
    fake = torch.cat([torch.zeros(3, 1, 2, 2), torch.full((3, 1, 2, 2), 0.5)])  # pairs 0.5 apart everywhere
    noise = torch.cat([torch.zeros(3, 4), torch.full((3, 4), 2.0)])  # their noise 2 apart
    assert mode_seeking(fake, noise, eps=0.0).item() == pytest.approx(1 / (0.5 / 2.0))
    # an odd image out is left unpaired; the term does not see it
    odd = torch.cat([fake, torch.full((1, 1, 2, 2), 9.0)])
    assert mode_seeking(odd, torch.cat([noise, torch.zeros(1, 4)]), eps=0.0).item() == pytest.approx(4.0)
    value, scalars = ModeSeeking(weight=0.5).loss(phase("G", fake=fake, noise=noise))
    assert value.item() == pytest.approx(0.5 * 4.0, rel=1e-4) and scalars["mode_seeking"].item() == pytest.approx(4.0, rel=1e-4)


def test_mode_seeking_pushes_collapsed_pairs_apart():
    noise = torch.randn(8, 5)
    fake = torch.zeros(8, 1, 3, 3)
    fake[4:] = 0.01  # G nearly ignores its noise
    fake.requires_grad_(True)
    mode_seeking(fake, noise).backward()
    # a descent step moves each pair's second image away from the first one
    step = -fake.grad
    assert (step[4:] > 0).all() and (step[:4] < 0).all()
    with pytest.raises(ValueError, match="at least two"):
        mode_seeking(torch.zeros(1, 1, 3, 3), torch.zeros(1, 5))


def test_mode_seeking_joins_only_g_and_refuses_unpaired_labels(make_cfg):
    assert ModeSeeking().applies("G", 0) and not ModeSeeking().applies("D", 0)
    assert not ModeSeeking(weight=0.0).applies("G", 0)
    with pytest.raises(ConfigError, match="model.terms.mode_seeking.weight=-1"):
        ModeSeeking(weight=-1)
    with pytest.raises(ConfigError, match="fake_labels=real"):
        build_gan(make_cfg("experiment=conditional", "+terms=mode_seeking", "model.conditional.fake_labels=real"))


# ---------------------------------------------------------------- the interface, through a real run
class Spy(Term):
    """A term that records when it is asked for its loss, and adds ``weight`` times the mean of
    the generated images to its phases' losses."""

    calls: list[tuple[str, int]] = []

    def __init__(self, phases: list[str], weight: float = 0.0, every: int = 1) -> None:
        super().__init__(every)
        self.phases, self.weight = tuple(phases), weight

    def loss(self, phase: Phase) -> tuple[Tensor, dict[str, Tensor]]:
        Spy.calls.append((phase.name, phase.update))
        value = phase.fake.float().mean()
        return self.weight * value, {f"spy_{phase.name}": value}


def fit(cfg) -> pl.LightningModule:
    model = build_gan(cfg)
    trainer = pl.Trainer(accelerator="cpu", max_epochs=-1, logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, use_distributed_sampler=False)
    trainer.fit(model, datamodule=MNISTDataModule(cfg.data.root, batch_size=16, download=False))
    return model


@pytest.mark.parametrize("phases,expected", [
    ("[D]", [("D", 0), ("D", 2), ("D", 4)]),
    ("[G]", [("G", 0), ("G", 2)]),
    ("[D,G]", [("D", 0), ("G", 0), ("D", 2), ("D", 4), ("G", 2)]),
])
def test_a_term_joins_only_its_phases_at_every_kth_update(make_cfg, phases, expected):
    Spy.calls = []
    # 3 iterations of 2 D updates and 1 G update: D updates 0-5, G updates 0-2; every=2
    model = fit(make_cfg(*QUICK, "iterations=3", "model.updates.d_steps=2",
                         f"+model.terms.spy={{_target_: tests.test_terms.Spy, phases: {phases}, every: 2}}"))
    assert Spy.calls == expected
    logged = model.bookkeeping.latest  # the last write: iteration 3, D updates 4-5 and G update 2
    assert ("spy_D" in logged, "spy_G" in logged) == ("D" in phases, "G" in phases)


def test_a_term_added_through_yaml_alone_changes_the_loss(make_cfg):
    torch.manual_seed(0)
    plain = fit(make_cfg(*QUICK, "iterations=2", "seed=3", run="plain"))
    torch.manual_seed(0)
    spied = fit(make_cfg(*QUICK, "iterations=2", "seed=3",
                         "+model.terms.spy={_target_: tests.test_terms.Spy, phases: [G], weight: 100.0}", run="spied"))
    torch.manual_seed(0)
    idle = fit(make_cfg(*QUICK, "iterations=2", "seed=3",
                        "+model.terms.spy={_target_: tests.test_terms.Spy, phases: [G], weight: 0.0}", run="idle"))
    same = lambda a, b: all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))  # noqa: E731
    assert same(plain.generator, idle.generator)  # a term of weight 0 leaves training as it was
    assert not same(plain.generator, spied.generator)  # the same term, weighted, changes G's updates


def test_an_entry_that_is_not_a_term_is_refused_in_one_line(make_cfg):
    with pytest.raises(ConfigError, match="terms.oops: Linear is not a gan.terms.Term"):
        build_gan(make_cfg(*QUICK, "+model.terms.oops={_target_: torch.nn.Linear, in_features: 1, out_features: 1}"))


def test_terms_need_the_alternating_schedule(make_cfg):
    with pytest.raises(ConfigError, match="schedule=simultaneous runs no terms"):
        build_gan(make_cfg("model=tf_simple", "loss=nonsaturating", "+terms=mode_seeking"))
