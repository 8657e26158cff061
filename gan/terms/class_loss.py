"""ACGAN's class term (Odena et al. 2017): D names the class of real and generated images, G makes
D name the class it drew for."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch.nn.functional as F
from torch import Tensor

from gan.runtime.config import ConfigError
from gan.runtime.config import weight as check_weight
from gan.terms.base import Phase, Term

if TYPE_CHECKING:
    from gan.module import GAN


class AuxiliaryClassLoss(Term):
    """The cross-entropy of an ACGAN D's class logits (its output after the adversarial logit):
    in D's loss on the real and the generated batch, in G's on the generated one. The GAN adds it
    with weight 1, as Odena et al. do, when ``model.conditional.kind=acgan`` and the config lists
    none. Logs ``train/class_d`` and ``train/class_g``.

    Args:
        weight: the term's weight in both phases.
    """

    phases = ("D", "G")
    where = "model.terms.class_loss"

    def __init__(self, weight: float = 1.0) -> None:
        super().__init__()
        self.weight = check_weight(f"{self.where}.weight", weight)

    def loss(self, phase: Phase) -> tuple[Tensor, dict[str, Tensor]]:
        fake = F.cross_entropy(phase.fake_output[:, 1:], phase.fake_labels)
        if phase.name == "D":
            value = F.cross_entropy(phase.real_output[:, 1:], phase.real_labels) + fake
            return self.weight * value, {"class_d": value}
        return self.weight * fake, {"class_g": fake}

    def setup(self, gan: GAN) -> None:
        if not getattr(gan.discriminator, "auxiliary_classes", 0):
            raise ConfigError(f"{self.where} reads an ACGAN discriminator's class logits: it needs "
                              "model.conditional.kind=acgan")

