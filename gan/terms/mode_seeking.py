"""MSGAN's mode-seeking term (Mao et al., CVPR 2019) in G's loss."""

from __future__ import annotations

from typing import TYPE_CHECKING

from torch import Tensor

from gan.runtime.config import ConfigError
from gan.runtime.config import weight as check_weight
from gan.terms.base import Phase, Term

if TYPE_CHECKING:
    from gan.module import GAN


def mode_seeking(fake: Tensor, noise: Tensor, eps: float = 1e-5) -> Tensor:
    """For G to minimise: the reciprocal of how far apart G puts two images per unit of distance
    between their noise vectors, ``1 / (mean|G(z1) - G(z2)| / mean|z1 - z2| + eps)``. The pairs are
    the batch's first and second halves. Small when distinct noise gives distinct images; it grows
    as G ignores its noise."""
    half = len(fake) // 2
    if half == 0:
        raise ValueError("mode_seeking needs a batch of at least two images")
    image_gap = (fake[:half].float() - fake[half:2 * half].float()).abs().mean()
    noise_gap = (noise[:half].float() - noise[half:2 * half].float()).abs().mean()
    return 1.0 / (image_gap / noise_gap + eps)


class ModeSeeking(Term):
    """``weight * mode_seeking(G(z), z)`` in G's loss: G is asked to put distinct noise vectors on
    distinct images (within a class, when conditional: both halves are drawn with the same labels).
    Logs the unweighted term as ``train/mode_seeking``.

    Args:
        weight: the term's weight (0 switches it off).
        every: apply it every this many G updates.
    """

    phases = ("G",)
    pairs_halves = True
    where = "model.terms.mode_seeking"

    def __init__(self, weight: float = 1.0, every: int = 1) -> None:
        super().__init__(every)
        self.weight = check_weight(f"{self.where}.weight", weight)

    def applies(self, phase: str, update: int) -> bool:
        return self.weight > 0 and super().applies(phase, update)

    def loss(self, phase: Phase) -> tuple[Tensor, dict[str, Tensor]]:
        diversity = mode_seeking(phase.fake, phase.noise)
        return self.weight * diversity, {"mode_seeking": diversity}

    def setup(self, gan: GAN) -> None:
        if gan.num_classes is not None and gan.conditional.fake_labels == "real":
            raise ConfigError(f"{self.where} pairs generated images of the same label, which "
                              "model.conditional.fake_labels=real (the real batch's labels, unpaired) cannot give: "
                              "use fake_labels=uniform or drop the term")

