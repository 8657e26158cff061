"""gan.ema: the generator's moving average against hand-computed values."""

import pytest
import torch
from torch import nn

from gan.runtime.config import ConfigError
from gan.ema import GeneratorEMA


class Tiny(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(1, 1, bias=False)
        self.norm = nn.BatchNorm1d(1)

    def forward(self, z):
        return self.norm(self.linear(z))


def test_beta_halves_the_average_every_half_life():
    ema = GeneratorEMA(Tiny(), half_life_images=1000, rampup=None)
    assert ema.beta(batch_size=1000, images_seen=10**6) == pytest.approx(0.5)
    assert ema.beta(batch_size=500, images_seen=10**6) == pytest.approx(0.5 ** 0.5)
    # ramp-up: after 2000 images with ratio 0.05 the half-life is 100 images, not 1000
    ramped = GeneratorEMA(Tiny(), half_life_images=1000, rampup=0.05)
    assert ramped.beta(batch_size=100, images_seen=2000) == pytest.approx(0.5)
    assert ramped.beta(batch_size=100, images_seen=10**6) == pytest.approx(0.5 ** 0.1)


def test_update_averages_weights_and_copies_buffers():
    g = Tiny()
    with torch.no_grad():
        g.linear.weight.fill_(1.0)
    ema = GeneratorEMA(g, half_life_images=100, rampup=None)
    with torch.no_grad():
        g.linear.weight.fill_(3.0)
        g.norm.running_mean.fill_(7.0)
    ema.update(g, batch_size=100, images_seen=10**6)  # beta = 0.5
    assert ema.average.linear.weight.item() == pytest.approx(0.5 * 1.0 + 0.5 * 3.0)
    assert ema.average.norm.running_mean.item() == 7.0  # copied, not averaged
    ema.update(g, batch_size=100, images_seen=10**6)
    assert ema.average.linear.weight.item() == pytest.approx(0.5 * 2.0 + 0.5 * 3.0)
    assert not any(p.requires_grad for p in ema.parameters())


def test_the_average_stays_in_eval_mode_and_rejects_bad_settings():
    ema = GeneratorEMA(Tiny())
    ema.train()
    assert not ema.average.training
    with pytest.raises(ConfigError, match="model.ema.half_life_images=0"):
        GeneratorEMA(Tiny(), half_life_images=0)
    with pytest.raises(ConfigError, match="model.ema.rampup=-1"):
        GeneratorEMA(Tiny(), rampup=-1)
