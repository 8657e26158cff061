"""A strided discriminator for the template's own recipe (``model=modern_dcgan``).

The recipe's default networks are the cs231n tutorial's (:mod:`gan.nets.dcgan`); this D is the
one it had before (``experiment=ablate_strided_d``): no normalisation (the zero-centred gradient
penalties and the relativistic loss want a D that scores each image on its own), no pooling,
LeakyReLU 0.2, and optionally a hidden fully connected layer before the logit, as the tutorial's D has.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from gan.nets.init import initialize
from gan.nets.minibatch_std import MinibatchStd


class StridedDiscriminator(nn.Module):
    """conv k x k stride 2 -> LeakyReLU, once per entry of ``channels`` (28 -> 14 -> 7 -> 3), then a
    linear layer from the flattened features to one logit (through a hidden layer of ``hidden``
    units and LeakyReLU, if given). ``minibatch_std=k`` (0: off) appends the spread of each group
    of k images as one more channel of the last feature map (:mod:`gan.nets.minibatch_std`)."""

    def __init__(
        self,
        channels: tuple[int, ...] = (32, 64),
        kernel_size: int = 4,
        negative_slope: float = 0.2,
        init: str | None = None,
        hidden: int | None = None,
        minibatch_std: int = 0,
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        previous = 1
        for width in channels:
            layers += [nn.Conv2d(previous, width, kernel_size, stride=2, padding=(kernel_size - 1) // 2),
                       nn.LeakyReLU(negative_slope)]
            previous = width
        if minibatch_std:
            layers.append(MinibatchStd(minibatch_std))
        self.features = nn.Sequential(*layers, nn.Flatten())
        with torch.no_grad():
            flat = self.features(torch.zeros(1, 1, 28, 28)).shape[1]
        if hidden:
            self.classify: nn.Module = nn.Sequential(nn.Linear(flat, hidden), nn.LeakyReLU(negative_slope), nn.Linear(hidden, 1))
        else:
            self.classify = nn.Linear(flat, 1)
        initialize(self, init)

    def forward(self, x: Tensor) -> Tensor:
        return self.classify(self.features(x))
