"""Noise priors for the generator's input."""

from __future__ import annotations

import torch
from torch import Tensor

from gan.runtime.values import one_of, positive_int


class NoisePrior:
    """Draws ``(n, dim)`` noise vectors, uniform in [low, high] or normal(mean, std).

    Args:
        dim: size of each noise vector (the generator's ``noise_dim``).
        distribution: ``"uniform"`` or ``"normal"``.
        low, high: bounds of the uniform prior.
        mean, std: parameters of the normal prior.
    """

    DISTRIBUTIONS = ("uniform", "normal")

    def __init__(
        self,
        dim: int,
        distribution: str = "uniform",
        low: float = -1.0,
        high: float = 1.0,
        mean: float = 0.0,
        std: float = 1.0,
    ) -> None:
        self.distribution = one_of("model.noise.distribution", distribution, self.DISTRIBUTIONS)
        self.dim = positive_int("model.noise.dim", dim)
        self.low, self.high, self.mean, self.std = low, high, mean, std

    def sample(
        self,
        n: int,
        device: torch.device | str | None = None,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        if self.distribution == "uniform":
            z = torch.rand(n, self.dim, device=device, generator=generator)
            return z.mul_(self.high - self.low).add_(self.low)
        z = torch.randn(n, self.dim, device=device, generator=generator)
        return z.mul_(self.std).add_(self.mean)

    def __repr__(self) -> str:
        if self.distribution == "uniform":
            return f"NoisePrior(dim={self.dim}, uniform[{self.low}, {self.high}])"
        return f"NoisePrior(dim={self.dim}, normal({self.mean}, {self.std}))"
