"""R1 and R2: zero-centred gradient penalties on D at real (R1) and generated (R2) images."""

from __future__ import annotations

import torch
from torch import Tensor

from gan.runtime.config import weight
from gan.terms.base import Phase, Term


def squared_gradient_norm(logits: Tensor, inputs: Tensor) -> Tensor:
    """E_x ||grad_x D(x)||^2 for ``logits = D(inputs)`` (``inputs`` must require grad): the R1 penalty
    at real images, R2 at generated ones (Mescheder et al. 2018; Roth et al. 2017). Builds a graph
    for the double backward, so D's update sees the penalty's gradient."""
    (grad,) = torch.autograd.grad(logits.float().sum(), inputs, create_graph=True)
    return grad.float().square().flatten(1).sum(1).mean()


class R1R2(Term):
    """``every * (r1_gamma / 2 * R1 + r2_gamma / 2 * R2)`` in D's loss, from the D pass's own logits.

    Applied every ``every`` D updates and scaled by it (lazy regularisation, Karras et al. 2020).
    R1 alone is Mescheder et al. 2018's; both together are R3GAN's (Huang et al. 2024). Logs the
    unweighted penalties as ``train/r1`` and ``train/r2`` at the updates that compute them.

    Args:
        r1_gamma, r2_gamma: the weights; 0 switches one off.
        every: the interval of lazy regularisation (1: every D update).
    """

    phases = ("D",)
    needs_input_grad = True
    where = "loss.terms.r1_r2"

    def __init__(self, r1_gamma: float = 1.0, r2_gamma: float = 1.0, every: int = 1) -> None:
        super().__init__(every)
        self.r1_gamma = weight(f"{self.where}.r1_gamma", r1_gamma)
        self.r2_gamma = weight(f"{self.where}.r2_gamma", r2_gamma)

    def applies(self, phase: str, update: int) -> bool:
        return (self.r1_gamma > 0 or self.r2_gamma > 0) and super().applies(phase, update)

    def loss(self, phase: Phase) -> tuple[Tensor, dict[str, Tensor]]:
        total = phase.fake_output.new_zeros((), dtype=torch.float32)
        scalars = {}
        if self.r1_gamma > 0:
            scalars["r1"] = squared_gradient_norm(phase.real_logits, phase.real)
            total = total + self.r1_gamma / 2 * scalars["r1"]
        if self.r2_gamma > 0:
            scalars["r2"] = squared_gradient_norm(phase.fake_logits, phase.fake)
            total = total + self.r2_gamma / 2 * scalars["r2"]
        return self.every * total, scalars
