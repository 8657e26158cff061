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
