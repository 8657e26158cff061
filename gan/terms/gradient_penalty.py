"""WGAN-GP's gradient penalty (Gulrajani et al. 2017) on random interpolates of real and generated images."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from gan.runtime.config import ConfigError
from gan.runtime.config import weight as check_weight
from gan.terms.base import Phase, Term

if TYPE_CHECKING:
    from gan.module import GAN


def gradient_penalty(discriminator: Callable[[Tensor], Tensor], real: Tensor, fake: Tensor, weight: float = 10.0) -> Tensor:
    """weight * E[(||grad_x D(x_hat)||_2 - 1)^2] on random interpolates x_hat between real and
    generated images (one uniform mix per image). Builds a graph for double backprop."""
    alpha = torch.rand(real.shape[0], *([1] * (real.dim() - 1)), device=real.device, dtype=real.dtype)
    x_hat = (alpha * real.detach() + (1 - alpha) * fake.detach()).requires_grad_(True)
    scores = discriminator(x_hat)
    (grad,) = torch.autograd.grad(scores.sum(), x_hat, create_graph=True)
    norms = grad.flatten(1).norm(2, dim=1)
    return weight * (norms - 1.0).pow(2).mean()


class GradientPenalty(Term):
    """WGAN-GP's penalty in D's loss at every D update; logs the weighted value as ``train/gradient_penalty``.

    Args:
        weight: lambda (10 in the paper).
        every: apply it every this many D updates (1 in the paper).
    """

    phases = ("D",)
    where = "loss.terms.gradient_penalty"

    def __init__(self, weight: float = 10.0, every: int = 1) -> None:
        super().__init__(every)
        self.weight = check_weight(f"{self.where}.weight", weight)

    def loss(self, phase: Phase) -> tuple[Tensor, dict[str, Tensor]]:
        penalty = gradient_penalty(lambda x: phase.score(x, None), phase.real, phase.fake, self.weight)
        return penalty, {"gradient_penalty": penalty}

    def setup(self, gan: GAN) -> None:
        if gan.num_classes is not None:
            raise ConfigError(f"model.conditional.kind={gan.conditional.kind}: {self.where} scores interpolates "
                              "of images of two classes without labels; use a loss without it (rpgan, hinge, nonsaturating...)")

