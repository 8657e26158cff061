"""Training terms: the pieces of a GAN objective beyond the adversarial loss, one class per file
on the interface of :mod:`gan.terms.base`, listed in YAML (``loss.terms``, ``model.terms``,
``augment``)."""

from gan.terms.base import PHASES, Phase, Term
from gan.terms.class_loss import AuxiliaryClassLoss
from gan.terms.gradient_penalty import GradientPenalty
from gan.terms.mode_seeking import ModeSeeking
from gan.terms.r1_r2 import R1R2

__all__ = ["PHASES", "AuxiliaryClassLoss", "GradientPenalty", "ModeSeeking", "Phase", "R1R2", "Term"]
