"""The networks of the ReNom GAN tutorial (after Goodfellow et al. 2014): a maxout D with dropout
and a batch-normalised MLP G.

Weights start uniform (D within +-0.005, G within +-0.05) and biases at zero, as ReNom's dense
layers do with the tutorial's ``Uniform`` initialiser.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any

from torch import Tensor, nn

from gan.nets.init import initialize
from gan.nets.mlp import MLPGenerator

MAXOUT_D_INIT: Mapping[str, Any] = MappingProxyType({"scheme": "uniform", "bound": 0.005, "bias": 0.0})
MAXOUT_G_INIT: Mapping[str, Any] = MappingProxyType({"scheme": "uniform", "bound": 0.05, "bias": 0.0})


class Maxout(nn.Module):
    """A linear map to ``units * pieces`` features, then the max over each unit's ``pieces``.

    Unit ``i`` takes the max of the linear outputs ``i * pieces`` to ``(i + 1) * pieces - 1``
    (consecutive groups, as a (1, pieces) max-pool over the reshaped outputs gives).
    """

    def __init__(self, in_features: int, units: int, pieces: int) -> None:
        super().__init__()
        if pieces < 1:
            raise ValueError(f"a maxout layer needs at least one piece per unit, got {pieces}")
        self.units, self.pieces = units, pieces
        self.linear = nn.Linear(in_features, units * pieces)

    def forward(self, x: Tensor) -> Tensor:
        return self.linear(x).view(x.shape[0], self.units, self.pieces).amax(dim=-1)

    def extra_repr(self) -> str:
        return f"units={self.units}, pieces={self.pieces}"


class MaxoutDiscriminator(nn.Module):
    """(n, 1, 28, 28) -> flatten -> maxout layers, each followed by dropout -> FC to one logit."""

    def __init__(
        self,
        hidden: Sequence[int] = (240, 240),
        pieces: int = 5,
        dropout: float = 0.5,
        init: str | Mapping[str, Any] | None = MAXOUT_D_INIT,
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Flatten()]
        width = 28 * 28
        for units in hidden:
            layers += [Maxout(width, units, pieces), nn.Dropout(dropout)]
            width = units
        layers.append(nn.Linear(width, 1))
        self.net = nn.Sequential(*layers)
        initialize(self, init)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


class BatchNormMLPGenerator(MLPGenerator):
    """The ReNom tutorial's G: BN on the noise, then FC -> ReLU -> BN per hidden layer, then FC to
    784 pixels through ``output_activation``, as (n, 1, 28, 28); an :class:`MLPGenerator` with
    ``batch_norm=True`` and the tutorial's sizes and init as defaults."""

    def __init__(
        self,
        noise_dim: int = 100,
        hidden: Sequence[int] = (1200, 1200),
        output_activation: str = "sigmoid",
        init: str | Mapping[str, Any] | None = MAXOUT_G_INIT,
    ) -> None:
        super().__init__(noise_dim, hidden, output_activation, init, hidden_activation="relu", batch_norm=True)
