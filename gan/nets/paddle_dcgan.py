"""The DCGAN of the PaddlePaddle book, chapter 09 (conv + max-pool D, FC + transposed-conv G).

The book's D ends in a sigmoid; here it returns the logit, as every discriminator of the template
does (the loss applies the sigmoid). Both nets keep PyTorch's default initialisation.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import Tensor, nn

from gan.data.images import output_layer
from gan.nets.init import initialize


class PaddleGenerator(nn.Module):
    """FC -> BN -> ReLU, FC to ``channels`` x7x7 -> BN -> ReLU, then two 5x5 stride-2 transposed
    convolutions: to ``channels`` x14x14 (ReLU, no BN) and to 1x28x28 (``output_activation``).

    Padding 2 with output_padding 1 makes each transposed conv double the size exactly:
    (7 - 1) * 2 - 2 * 2 + 5 + 1 = 14 and (14 - 1) * 2 - 4 + 5 + 1 = 28.
    """

    def __init__(
        self,
        noise_dim: int = 100,
        hidden: int = 2048,
        channels: int = 128,
        output_activation: str = "tanh",
        init: str | Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.channels = channels
        self.project = nn.Sequential(
            nn.Linear(noise_dim, hidden),
            nn.BatchNorm1d(hidden),
            nn.ReLU(),
            nn.Linear(hidden, channels * 7 * 7),
            nn.BatchNorm1d(channels * 7 * 7),
            nn.ReLU(),
        )
        self.upsample = nn.Sequential(
            nn.ConvTranspose2d(channels, channels, 5, stride=2, padding=2, output_padding=1),
            nn.ReLU(),
            nn.ConvTranspose2d(channels, 1, 5, stride=2, padding=2, output_padding=1),
            output_layer(output_activation),
        )
        self.noise_dim = noise_dim
        self.output_activation = output_activation
        initialize(self, init)

    def forward(self, z: Tensor) -> Tensor:
        return self.upsample(self.project(z).view(z.shape[0], self.channels, 7, 7))


class PaddleDiscriminator(nn.Module):
    """conv 5x5 -> LeakyReLU -> maxpool 2; conv 5x5 -> maxpool 2 -> BN -> LeakyReLU;
    FC -> BN -> LeakyReLU; FC to one logit.

    The convolutions have no padding: 28 -> 24 -> (pool) 12 -> 8 -> (pool) 4, so the first FC
    layer takes ``channels[1] * 4 * 4`` features. Paddle's leaky_relu slope is 0.02.
    """

    def __init__(
        self,
        channels: tuple[int, int] = (64, 128),
        hidden: int = 1024,
        negative_slope: float = 0.02,
        init: str | Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__()
        first, second = channels
        self.features = nn.Sequential(
            nn.Conv2d(1, first, 5),
            nn.LeakyReLU(negative_slope),
            nn.MaxPool2d(2),
            nn.Conv2d(first, second, 5),
            nn.MaxPool2d(2),
            nn.BatchNorm2d(second),
            nn.LeakyReLU(negative_slope),
            nn.Flatten(),
        )
        self.classify = nn.Sequential(
            nn.Linear(second * 4 * 4, hidden),
            nn.BatchNorm1d(hidden),
            nn.LeakyReLU(negative_slope),
            nn.Linear(hidden, 1),
        )
        initialize(self, init)

    def forward(self, x: Tensor) -> Tensor:
        return self.classify(self.features(x))
