import pytest
import torch

from gan.noise import NoisePrior


def test_uniform_noise_has_shape_and_bounds():
    z = NoisePrior(96, "uniform", -1.0, 1.0).sample(10000)
    assert z.shape == (10000, 96)
    assert z.min() >= -1.0 and z.max() <= 1.0
    assert z.mean().item() == pytest.approx(0.0, abs=0.01)
    assert z.min() < -0.99 and z.max() > 0.99


def test_unit_uniform_noise():
    z = NoisePrior(100, "uniform", 0.0, 1.0).sample(5000)
    assert z.min() >= 0.0 and z.max() <= 1.0
    assert z.mean().item() == pytest.approx(0.5, abs=0.01)


def test_normal_noise_moments():
    z = NoisePrior(64, "normal", mean=1.0, std=2.0).sample(20000)
    assert z.mean().item() == pytest.approx(1.0, abs=0.02)
    assert z.std().item() == pytest.approx(2.0, abs=0.02)


def test_same_generator_seed_gives_the_same_noise():
    prior = NoisePrior(8)
    a = prior.sample(4, generator=torch.Generator().manual_seed(3))
    b = prior.sample(4, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a, b)


def test_unknown_distribution_is_rejected():
    with pytest.raises(ValueError, match="model.noise.distribution=laplace: must be one of uniform, normal"):
        NoisePrior(8, "laplace")
