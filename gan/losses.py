"""Adversarial losses as pure functions of the discriminator's logits.

Each loss is a pair: ``d_*(real_logits, fake_logits) -> scalar`` for the discriminator and
``g_*(fake_logits) -> scalar`` for the generator. ``AdversarialLoss`` holds a pair chosen by the
``loss`` config group. Every function works on raw logits (never on probabilities), so it stays
finite for a confident discriminator and is safe under mixed precision.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor


def d_nonsaturating(real_logits: Tensor, fake_logits: Tensor, real_label: float = 1.0) -> Tensor:
    """-E[log D(x)] - E[log(1 - D(G(z)))] with BCE on logits; ``real_label`` < 1 smooths it."""
    real = F.binary_cross_entropy_with_logits(real_logits, torch.full_like(real_logits, real_label))
    fake = F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))
    return real + fake


def g_nonsaturating(fake_logits: Tensor) -> Tensor:
    """-E[log D(G(z))]: the generator's non-saturating loss (Goodfellow et al. 2014, sec. 3)."""
    return F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))


class AdversarialLoss:
    """A named pair of discriminator and generator losses of logits.

    A plain class rather than a dataclass on purpose: Hydra would turn a dataclass instance
    passed to ``instantiate`` into a config node.
    """

    def __init__(
        self,
        name: str,
        discriminator: Callable[[Tensor, Tensor], Tensor],
        generator: Callable[[Tensor], Tensor],
    ) -> None:
        self.name = name
        self.discriminator = discriminator
        self.generator = generator

    def d_loss(self, real_logits: Tensor, fake_logits: Tensor) -> Tensor:
        return self.discriminator(real_logits, fake_logits)

    def g_loss(self, fake_logits: Tensor) -> Tensor:
        return self.generator(fake_logits)

    def __repr__(self) -> str:
        return f"AdversarialLoss({self.name!r})"
