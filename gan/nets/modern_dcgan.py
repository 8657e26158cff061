"""The discriminator of the template's own recipe (``model=modern_dcgan``).

G is the cs231n :class:`gan.nets.dcgan.InfoGANGenerator`; D is the strided discriminator below: no
normalisation (the zero-centred gradient penalties and the relativistic loss want a D that scores
each image on its own), no pooling, LeakyReLU 0.2.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from gan.nets.init import initialize


class StridedDiscriminator(nn.Module):
    """conv k x k stride 2 -> LeakyReLU, once per entry of ``channels`` (28 -> 14 -> 7), then a
    linear layer from the flattened features to one logit."""

    def __init__(
        self,
        channels: tuple[int, ...] = (32, 64),
        kernel_size: int = 4,
        negative_slope: float = 0.2,
        init: str | None = None,
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        previous = 1
        for width in channels:
            layers += [nn.Conv2d(previous, width, kernel_size, stride=2, padding=(kernel_size - 1) // 2),
                       nn.LeakyReLU(negative_slope)]
            previous = width
        self.features = nn.Sequential(*layers, nn.Flatten())
        with torch.no_grad():
            flat = self.features(torch.zeros(1, 1, 28, 28)).shape[1]
        self.classify = nn.Linear(flat, 1)
        initialize(self, init)

    def forward(self, x: Tensor) -> Tensor:
        return self.classify(self.features(x))
