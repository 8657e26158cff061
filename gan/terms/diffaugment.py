"""Differentiable augmentation (Zhao et al., NeurIPS 2020): every image D sees, real and generated,
in both phases, is randomly translated and has a square cut out, by differentiable operations, so
G's gradient flows through the augmentation and D cannot memorise a small training set."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from gan.runtime.config import ConfigError, fmt
from gan.terms.base import Term

if TYPE_CHECKING:
    from gan.module import GAN

POLICIES = ("translation", "cutout")


def translate(images: Tensor, ratio: float, fill: float) -> Tensor:
    """Shift each image by its own whole number of pixels, up to ``ratio`` of its size in each
    direction (drawn uniformly), filling the uncovered border with ``fill``."""
    n, _, height, width = images.shape
    sy, sx = int(height * ratio + 0.5), int(width * ratio + 0.5)
    if sy == 0 and sx == 0:
        return images
    dy = torch.randint(-sy, sy + 1, (n, 1), device=images.device)
    dx = torch.randint(-sx, sx + 1, (n, 1), device=images.device)
    padded = torch.nn.functional.pad(images, (sx, sx, sy, sy), value=fill)
    rows = torch.arange(height, device=images.device) + sy - dy  # (n, H): out[y] = in[y - dy]
    cols = torch.arange(width, device=images.device) + sx - dx
    batch = torch.arange(n, device=images.device)[:, None, None]
    return padded[batch, :, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2)


def cutout(images: Tensor, ratio: float, fill: float) -> Tensor:
    """Set a square of ``ratio`` of the image's size, centred at a uniformly drawn pixel and clipped
    at the borders, to ``fill`` in each image."""
    n, _, height, width = images.shape
    size_y, size_x = int(height * ratio + 0.5), int(width * ratio + 0.5)
    if size_y == 0 or size_x == 0:
        return images
    cy = torch.randint(0, height + (1 - size_y % 2), (n, 1, 1), device=images.device)
    cx = torch.randint(0, width + (1 - size_x % 2), (n, 1, 1), device=images.device)
    y = torch.arange(height, device=images.device)[None, :, None] - cy + size_y // 2
    x = torch.arange(width, device=images.device)[None, None, :] - cx + size_x // 2
    inside = ((y >= 0) & (y < size_y) & (x >= 0) & (x < size_x)).unsqueeze(1)  # (n, 1, H, W)
    return torch.where(inside, torch.full_like(images, fill), images)


class DiffAugment(Term):
    """DiffAugment as a term: no loss of its own; :meth:`d_input` augments every image D scores.

    Args:
        policy: the augmentations, applied in order: ``translation`` and/or ``cutout``.
        translation: the largest shift, as a fraction of the image size (1/8 in the paper).
        cutout: the side of the cut-out square, as a fraction of the image size (1/2 in the paper).

    The border and the cut-out are filled with the generator's lowest value (MNIST's black
    background: -1 for a tanh G, 0 for a sigmoid one), read from the GAN in :meth:`setup`.
    """

    where = "augment"

    def __init__(self, policy: Sequence[str] = POLICIES, translation: float = 0.125, cutout: float = 0.5) -> None:
        super().__init__()
        policy = list(policy) if not isinstance(policy, str) else [policy]
        unknown = [p for p in policy if p not in POLICIES]
        if unknown or not policy:
            raise ConfigError(f"augment.policy={fmt(policy)}: must be a non-empty list of {', '.join(POLICIES)}")
        for key, value in (("translation", translation), ("cutout", cutout)):
            if not (isinstance(value, (int, float)) and not isinstance(value, bool) and 0 <= value <= 1):
                raise ConfigError(f"augment.{key}={fmt(value)}: must be a fraction of the image size from 0 to 1")
        self.policy, self.translation, self.cutout = policy, float(translation), float(cutout)
        self.fill = -1.0

    def setup(self, gan: GAN) -> None:
        self.fill = float(gan.value_range[0])

    def d_input(self, images: Tensor) -> Tensor:
        for name in self.policy:
            if name == "translation":
                images = translate(images, self.translation, self.fill)
            else:
                images = cutout(images, self.cutout, self.fill)
        return images
