"""The networks of the TensorFlow "simple GAN" tutorial: a sigmoid MLP G and a small conv D.

Every linear and conv layer of both nets starts with normal(0, 0.1) weights and biases of 0.2.
The tutorial's D ends in a sigmoid in its first loss form; here it returns the logit (its second,
cross-entropy form, which is what the template's losses take).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any

from torch import Tensor, nn

from gan.nets.init import initialize
from gan.nets.mlp import MLPGenerator

# the tutorial's initialiser: weights normal(0, 0.1), biases constant 0.2
TF_SIMPLE_INIT: Mapping[str, Any] = MappingProxyType({"scheme": "normal", "std": 0.1, "bias": 0.2})


class TFSimpleGenerator(MLPGenerator):
    """The MLP generator with sigmoid hidden layers (256, 512) and sigmoid output, TF-style init."""

    def __init__(
        self,
        noise_dim: int = 100,
        hidden: Sequence[int] = (256, 512),
        output_activation: str = "sigmoid",
        init: str | Mapping[str, Any] | None = TF_SIMPLE_INIT,
    ) -> None:
        super().__init__(noise_dim, hidden, output_activation, init, hidden_activation="sigmoid")


class TFSimpleDiscriminator(nn.Module):
    """Stride-2 'same' convs with sigmoid, then a sigmoid FC layer and an FC layer to one logit.

    TensorFlow's 'same' with stride 2 gives ceil(size / 2): 28 -> 14 -> 7. PyTorch pads both sides
    equally, so each conv pads ``kernel // 2`` (2 for 5x5, 1 for 3x3), which gives the same sizes:
    (28 + 4 - 5) // 2 + 1 = 14 and (14 + 2 - 3) // 2 + 1 = 7. (TF pads the odd leftover pixel at
    the bottom/right only, so the sampling grid sits half a pixel apart; the sizes agree.)
    """

    def __init__(
        self,
        channels: Sequence[int] = (16, 32),
        kernel_sizes: Sequence[int] = (5, 3),
        hidden: int = 128,
        init: str | Mapping[str, Any] | None = TF_SIMPLE_INIT,
    ) -> None:
        super().__init__()
        if len(channels) != len(kernel_sizes):
            raise ValueError(f"give one kernel size per conv layer: channels={channels}, kernel_sizes={kernel_sizes}")
        layers: list[nn.Module] = []
        width, size = 1, 28
        for out, k in zip(channels, kernel_sizes):
            layers += [nn.Conv2d(width, out, k, stride=2, padding=k // 2), nn.Sigmoid()]
            width, size = out, (size + 2 * (k // 2) - k) // 2 + 1
        self.features = nn.Sequential(*layers, nn.Flatten())
        self.classify = nn.Sequential(
            nn.Linear(width * size * size, hidden),
            nn.Sigmoid(),
            nn.Linear(hidden, 1),
        )
        initialize(self, init)

    def forward(self, x: Tensor) -> Tensor:
        return self.classify(self.features(x))
