"""Minibatch standard deviation (Karras et al., ICLR 2018, "Progressive Growing of GANs", section 3).

D sees, beside each image's features, how much the images of its group differ from each other: a
generator that draws the same digit for every z gives a group of near-identical images, whose
standard deviation a real group never has, so D can call it out and G is pushed to vary.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from gan.runtime.values import ConfigError, fmt, is_int


def group_size_for(batch: int, group_size: int) -> int:
    """The largest group of at most ``group_size`` images that divides ``batch`` (1 for a prime
    batch, where each image is its own group and the feature is 0)."""
    return next(g for g in range(min(group_size, batch), 0, -1) if batch % g == 0)


class MinibatchStd(nn.Module):
    """Appends one channel to ``(n, c, h, w)`` features: for each group of ``group_size``
    consecutive images, the standard deviation over the group of every feature, averaged over
    features and positions, broadcast to the group's images.

    Groups are consecutive images (0-3, 4-7, ...). A D with this layer scores an image by its
    batch, so ``model.speed.joint_d_pass`` (one D pass over the real and the generated batch) refuses
    it, as it refuses BatchNorm.
    """

    def __init__(self, group_size: int = 4, eps: float = 1e-8) -> None:
        super().__init__()
        if not (is_int(group_size) and group_size >= 2):
            raise ConfigError(f"model.discriminator.minibatch_std={fmt(group_size)}: the group size must be an integer >= 2 "
                              "(0 switches the minibatch standard deviation off)")
        self.group_size, self.eps = group_size, eps

    def forward(self, x: Tensor) -> Tensor:
        n, _, h, w = x.shape
        g = group_size_for(n, self.group_size)
        groups = x.float().reshape(n // g, g, -1)
        spread = (groups.var(dim=1, unbiased=False) + self.eps).sqrt().mean(dim=1)  # (n // g,)
        feature = spread.repeat_interleave(g).to(x.dtype).view(n, 1, 1, 1).expand(n, 1, h, w)
        return torch.cat([x, feature], dim=1)

    def extra_repr(self) -> str:
        return f"group_size={self.group_size}"
