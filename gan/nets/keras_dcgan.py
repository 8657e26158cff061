"""The networks of the Keras DCGAN tutorial: strided-conv D with dropout, upsampling G.

Both nets start as Keras layers do (``glorot_uniform``: Xavier-uniform weights, zero biases).
The tutorial's D ends in a sigmoid; here it returns the logit (the loss applies the sigmoid).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from torch import Tensor, nn

from gan.data.images import output_layer
from gan.nets.init import initialize


def same_size(size: int, stride: int) -> int:
    """Keras' 'same' output size, ceil(size / stride)."""
    return -(-size // stride)


class KerasGenerator(nn.Module):
    """FC to ``channels[0]`` x7x7 -> BN -> ReLU -> dropout; then 5x5 'same' transposed convs, each
    followed by BN -> ReLU, to ``channels[1:]`` (the first two after a nearest x2 upsampling,
    7 -> 14 -> 28); a last 5x5 transposed conv to 1 channel through ``output_activation``.

    Batch norm: Keras' ``BatchNormalization(momentum=0.9)`` keeps 0.9 of the running statistics
    per step, while PyTorch's ``momentum`` is the weight of the new batch, so 0.9 in Keras is
    ``bn_momentum=0.1`` here; Keras' epsilon default is 1e-3 (PyTorch's is 1e-5).
    """

    def __init__(
        self,
        noise_dim: int = 100,
        channels: Sequence[int] = (256, 128, 64, 32),
        dropout: float = 0.4,
        bn_momentum: float = 0.1,
        bn_eps: float = 1e-3,
        output_activation: str = "sigmoid",
        init: str | Mapping[str, Any] | None = "glorot_uniform",
    ) -> None:
        super().__init__()
        if len(channels) < 3:
            raise ValueError(f"the Keras generator needs at least 3 channel sizes (7x7 map, 14x14, 28x28), got {channels}")
        start = channels[0]
        self.start_channels = start
        self.project = nn.Sequential(
            nn.Linear(noise_dim, start * 7 * 7),
            nn.BatchNorm1d(start * 7 * 7, eps=bn_eps, momentum=bn_momentum),
            nn.ReLU(),
            nn.Dropout(dropout),
        )
        layers: list[nn.Module] = []
        width = start
        for i, out in enumerate(channels[1:]):
            if i < 2:  # two nearest x2 upsamplings take 7x7 to 28x28
                layers.append(nn.Upsample(scale_factor=2, mode="nearest"))
            layers += [
                nn.ConvTranspose2d(width, out, 5, stride=1, padding=2),
                nn.BatchNorm2d(out, eps=bn_eps, momentum=bn_momentum),
                nn.ReLU(),
            ]
            width = out
        layers += [nn.ConvTranspose2d(width, 1, 5, stride=1, padding=2), output_layer(output_activation)]
        self.upsample = nn.Sequential(*layers)
        self.noise_dim = noise_dim
        self.output_activation = output_activation
        initialize(self, init)

    def forward(self, z: Tensor) -> Tensor:
        return self.upsample(self.project(z).view(z.shape[0], self.start_channels, 7, 7))


class KerasDiscriminator(nn.Module):
    """5x5 'same' convs, each followed by LeakyReLU and dropout; flatten; FC to one logit.

    Keras' 'same' gives ceil(size / stride): with the default strides (2, 2, 2, 1),
    28 -> 14 -> 7 -> 4 -> 4. PyTorch's symmetric padding 2 on a 5x5 kernel gives the same sizes:
    (28 + 4 - 5) // 2 + 1 = 14, (14 + 4 - 5) // 2 + 1 = 7, (7 + 4 - 5) // 2 + 1 = 4 and
    (4 + 4 - 5) // 1 + 1 = 4; in general (size - 1) // stride + 1 = ceil(size / stride).
    """

    def __init__(
        self,
        channels: Sequence[int] = (64, 128, 256, 512),
        strides: Sequence[int] = (2, 2, 2, 1),
        negative_slope: float = 0.2,
        dropout: float = 0.4,
        init: str | Mapping[str, Any] | None = "glorot_uniform",
    ) -> None:
        super().__init__()
        if len(channels) != len(strides):
            raise ValueError(f"give one stride per conv layer: channels={channels}, strides={strides}")
        layers: list[nn.Module] = []
        width, size = 1, 28
        for out, stride in zip(channels, strides):
            layers += [
                nn.Conv2d(width, out, 5, stride=stride, padding=2),
                nn.LeakyReLU(negative_slope),
                nn.Dropout(dropout),
            ]
            width, size = out, same_size(size, stride)
        self.features = nn.Sequential(*layers, nn.Flatten())
        self.classify = nn.Linear(width * size * size, 1)
        initialize(self, init)

    def forward(self, x: Tensor) -> Tensor:
        return self.classify(self.features(x))
