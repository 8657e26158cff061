import math

import pytest
import torch

from gan.losses import AdversarialLoss, d_nonsaturating, g_nonsaturating


def test_nonsaturating_losses_at_an_undecided_discriminator():
    zeros = torch.zeros(4, 1)
    assert d_nonsaturating(zeros, zeros).item() == pytest.approx(2 * math.log(2))
    assert g_nonsaturating(zeros).item() == pytest.approx(math.log(2))


def test_nonsaturating_losses_against_hand_computed_values():
    real = torch.tensor([[2.0], [-1.0]])
    fake = torch.tensor([[0.5], [-3.0]])
    sp = lambda x: math.log1p(math.exp(x))  # softplus: -log(sigmoid(-x))
    expected_d = (sp(-2.0) + sp(1.0)) / 2 + (sp(0.5) + sp(-3.0)) / 2
    expected_g = (sp(-0.5) + sp(3.0)) / 2
    assert d_nonsaturating(real, fake).item() == pytest.approx(expected_d, rel=1e-6)
    assert g_nonsaturating(fake).item() == pytest.approx(expected_g, rel=1e-6)


def test_label_smoothing_moves_the_real_target():
    real = torch.tensor([[3.0]])
    fake = torch.tensor([[-30.0]])
    p = 1 / (1 + math.exp(-3.0))
    smoothed = -(0.9 * math.log(p) + 0.1 * math.log(1 - p))
    fake_term = math.log1p(math.exp(-30.0))
    assert d_nonsaturating(real, fake, real_label=0.9).item() == pytest.approx(smoothed + fake_term, rel=1e-6)


def test_losses_stay_finite_for_a_confident_discriminator():
    confident = torch.tensor([[80.0], [-80.0]])
    assert torch.isfinite(d_nonsaturating(confident, -confident))
    assert torch.isfinite(g_nonsaturating(-confident))


def test_adversarial_loss_dispatches_to_its_pair():
    loss = AdversarialLoss("ns", d_nonsaturating, g_nonsaturating)
    x = torch.randn(3, 1)
    assert torch.equal(loss.d_loss(x, -x), d_nonsaturating(x, -x))
    assert torch.equal(loss.g_loss(x), g_nonsaturating(x))


# ---------------------------------------------------------------- the loss zoo

from gan.losses import (  # noqa: E402
    d_hinge,
    d_least_squares,
    d_minimax,
    d_wasserstein,
    g_hinge,
    g_least_squares,
    g_minimax,
    g_wasserstein,
)

REAL = torch.tensor([[2.0], [-1.0], [0.5]])
FAKE = torch.tensor([[0.5], [-3.0], [1.5]])


def test_minimax_generator_loss_is_log_one_minus_d():
    p = torch.sigmoid(FAKE)
    assert g_minimax(FAKE).item() == pytest.approx(torch.log(1 - p).mean().item(), rel=1e-6)
    assert d_minimax(REAL, FAKE).item() == pytest.approx(d_nonsaturating(REAL, FAKE).item())


def test_least_squares_against_hand_values():
    # D: 0.5 * mean((r - 1)^2) + 0.5 * mean(f^2); G: 0.5 * mean((f - 1)^2)
    d = 0.5 * ((1.0**2 + 2.0**2 + 0.5**2) / 3) + 0.5 * ((0.25 + 9.0 + 2.25) / 3)
    g = 0.5 * ((0.25 + 16.0 + 0.25) / 3)
    assert d_least_squares(REAL, FAKE).item() == pytest.approx(d, rel=1e-6)
    assert g_least_squares(FAKE).item() == pytest.approx(g, rel=1e-6)


def test_wasserstein_and_hinge_against_hand_values():
    mean_r, mean_f = (2.0 - 1.0 + 0.5) / 3, (0.5 - 3.0 + 1.5) / 3
    assert d_wasserstein(REAL, FAKE).item() == pytest.approx(mean_f - mean_r)
    assert g_wasserstein(FAKE).item() == pytest.approx(-mean_f)
    # relu(1 - r) = [0, 2, 0.5]; relu(1 + f) = [1.5, 0, 2.5]
    assert d_hinge(REAL, FAKE).item() == pytest.approx(2.5 / 3 + 4.0 / 3)
    assert g_hinge(FAKE).item() == pytest.approx(-mean_f)


def test_probability_form_and_logits_form_are_the_same_function():
    """The TF tutorial's -mean(log D(x) + log(1 - D(G(z)))) on probabilities equals BCE with logits."""
    real, fake = torch.randn(64, 1) * 3, torch.randn(64, 1) * 3
    d_real, d_fake = torch.sigmoid(real), torch.sigmoid(fake)
    prob_form = -(torch.log(d_real) + torch.log(1 - d_fake)).mean()
    assert torch.isfinite(prob_form)
    assert d_nonsaturating(real, fake).item() == pytest.approx(prob_form.item(), rel=1e-5)
    # a confident D: sigmoid saturates to exactly 1 / 0 in float32, the probability form breaks
    confident_real, confident_fake = torch.full((4, 1), 120.0), torch.full((4, 1), 120.0)
    broken = -(torch.log(torch.sigmoid(confident_real)) + torch.log(1 - torch.sigmoid(confident_fake))).mean()
    assert not torch.isfinite(broken)
    assert torch.isfinite(d_nonsaturating(confident_real, confident_fake))
    assert d_nonsaturating(confident_real, confident_fake).item() == pytest.approx(120.0, rel=1e-4)


def test_saturating_generator_gradient_vanishes_where_d_confidently_rejects():
    rejected = torch.full((8, 1), -12.0, requires_grad=True)  # D(G(z)) = sigmoid(-12) ~ 6e-6
    (g_sat,) = torch.autograd.grad(g_minimax(rejected), rejected)
    (g_ns,) = torch.autograd.grad(g_nonsaturating(rejected), rejected)
    assert g_sat.abs().max() < 1e-5  # the minimax G learns nothing here
    assert g_ns.abs().min() > 0.1  # the non-saturating G still gets a full-size gradient (-1/n each)


def test_weight_clip_must_be_positive():
    with pytest.raises(ValueError, match="weight_clip=0"):
        AdversarialLoss("w", d_wasserstein, g_wasserstein, weight_clip=0)


# ---------------------------------------------------------------- relativistic pairing

from gan.losses import d_relativistic, g_relativistic  # noqa: E402


def test_relativistic_pairing_losses_against_hand_values():
    sp = lambda x: math.log1p(math.exp(x))  # noqa: E731
    # D: mean softplus(-(r - f)); G: mean softplus(-(f - r)), pair by pair
    d = sum(sp(-(r - f)) for r, f in ((2.0, 0.5), (-1.0, -3.0), (0.5, 1.5))) / 3
    g = sum(sp(-(f - r)) for r, f in ((2.0, 0.5), (-1.0, -3.0), (0.5, 1.5))) / 3
    assert d_relativistic(REAL, FAKE).item() == pytest.approx(d, rel=1e-6)
    assert g_relativistic(FAKE, REAL).item() == pytest.approx(g, rel=1e-6)
    # an undecided D: log 2 for both
    zeros = torch.zeros(4, 1)
    assert d_relativistic(zeros, zeros).item() == pytest.approx(math.log(2))


def test_relativistic_generator_loss_sends_no_gradient_to_the_real_scores():
    real = REAL.clone().requires_grad_(True)
    fake = FAKE.clone().requires_grad_(True)
    g_relativistic(fake, real).backward()
    assert real.grad is None and fake.grad is not None


def test_only_a_relativistic_generator_loss_asks_for_the_real_scores():
    assert AdversarialLoss("rp", d_relativistic, g_relativistic).g_needs_real
    assert not AdversarialLoss("ns", d_nonsaturating, g_nonsaturating).g_needs_real


def test_a_loss_keeps_its_listed_terms_and_leaves_out_null_ones():
    from gan.terms import R1R2

    r1 = R1R2(r1_gamma=1.0, r2_gamma=0.0)
    loss = AdversarialLoss("rp", d_relativistic, g_relativistic, terms={"r1_r2": r1, "off": None})
    assert loss.terms == {"r1_r2": r1}
