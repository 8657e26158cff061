"""An exponential moving average of the generator's weights (Karras et al. 2020, StyleGAN2-ADA).

After every G update, ``ema = beta * ema + (1 - beta) * G`` with ``beta = 0.5 ** (batch / half_life)``:
the average forgets half of itself every ``half_life_images`` generated images. Early in training
the half-life ramps up with the images seen so far (``half_life = min(half_life_images, rampup *
images_seen)``), so the average is not dragged back towards the random initial weights. Buffers
(BatchNorm's running statistics) are copied from G, not averaged. D is never averaged.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from gan.runtime.config import ConfigError


class GeneratorEMA(nn.Module):
    """The averaged copy of a generator: ``average`` is a module like G, never trained directly.

    Args:
        generator: the generator whose weights are averaged (copied now, at the start).
        half_life_images: images after which the average keeps half of its old value (``model.ema.half_life_images``).
        rampup: None (no ramp-up) or the ramp-up ratio: the half-life is at most this share of the
            images seen so far (StyleGAN2-ADA uses 0.05).
    """

    def __init__(self, generator: nn.Module, half_life_images: float = 10_000.0, rampup: float | None = 0.05) -> None:
        super().__init__()
        if not half_life_images > 0:
            raise ConfigError(f"model.ema.half_life_images={half_life_images}: must be a positive number of images")
        if rampup is not None and not rampup > 0:
            raise ConfigError(f"model.ema.rampup={rampup}: must be a positive ratio, or null for no ramp-up")
        self.half_life_images = float(half_life_images)
        self.rampup = None if rampup is None else float(rampup)
        self.average = copy.deepcopy(generator).requires_grad_(False).eval()

    def beta(self, batch_size: int, images_seen: int) -> float:
        """The weight the average keeps at an update after ``images_seen`` generated images."""
        half_life = self.half_life_images
        if self.rampup is not None:
            half_life = min(half_life, self.rampup * images_seen)
        return 0.5 ** (batch_size / max(half_life, 1e-8))

    @torch.no_grad()
    def update(self, generator: nn.Module, batch_size: int, images_seen: int) -> None:
        beta = self.beta(batch_size, images_seen)
        averaged = [p for p in self.average.parameters()]
        current = [p.detach() for p in generator.parameters()]
        torch._foreach_lerp_(averaged, current, 1.0 - beta)
        for mine, theirs in zip(self.average.buffers(), generator.buffers()):
            mine.copy_(theirs)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.average(z)

    def train(self, mode: bool = True) -> GeneratorEMA:
        """The average stays in eval mode: it is only ever sampled from."""
        return super().train(False)
