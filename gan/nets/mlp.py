"""The vanilla fully connected GAN of the cs231n assignment (Goodfellow et al. 2014 style)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from torch import Tensor, nn

from gan.data.images import output_layer
from gan.nets.init import initialize

HIDDEN_ACTIVATIONS = {"relu": nn.ReLU, "sigmoid": nn.Sigmoid}


class MLPGenerator(nn.Module):
    """noise -> hidden layers (ReLU or sigmoid) -> 784 pixels through ``output_activation``, as (n, 1, 28, 28).

    ``batch_norm=True`` normalises the noise and each hidden layer's output (after its activation),
    as the ReNom maxout GAN's generator does.
    """

    def __init__(
        self,
        noise_dim: int = 96,
        hidden: Sequence[int] = (1024, 1024),
        output_activation: str = "tanh",
        init: str | Mapping[str, Any] | None = "xavier_uniform",
        hidden_activation: str = "relu",
        batch_norm: bool = False,
    ) -> None:
        super().__init__()
        if hidden_activation not in HIDDEN_ACTIVATIONS:
            raise ValueError(f"hidden_activation={hidden_activation!r}: use one of {sorted(HIDDEN_ACTIVATIONS)}")
        layers: list[nn.Module] = [nn.BatchNorm1d(noise_dim)] if batch_norm else []
        width = noise_dim
        for size in hidden:
            layers += [nn.Linear(width, size), HIDDEN_ACTIVATIONS[hidden_activation]()]
            if batch_norm:
                layers.append(nn.BatchNorm1d(size))
            width = size
        layers += [nn.Linear(width, 28 * 28), output_layer(output_activation)]
        self.net = nn.Sequential(*layers)
        self.noise_dim = noise_dim
        self.output_activation = output_activation
        initialize(self, init)

    def forward(self, z: Tensor) -> Tensor:
        return self.net(z).view(z.shape[0], 1, 28, 28)


class MLPDiscriminator(nn.Module):
    """(n, 1, 28, 28) images -> hidden LeakyReLU layers -> (n, 1) logits."""

    def __init__(
        self,
        hidden: Sequence[int] = (256, 256),
        negative_slope: float = 0.01,
        init: str | None = "xavier_uniform",
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Flatten()]
        width = 28 * 28
        for size in hidden:
            layers += [nn.Linear(width, size), nn.LeakyReLU(negative_slope)]
            width = size
        layers.append(nn.Linear(width, 1))
        self.net = nn.Sequential(*layers)
        initialize(self, init)

    @property
    def features(self) -> nn.Module:
        """Every layer but the last (phi, for :class:`gan.nets.conditional.ConditionalDiscriminator`)."""
        return self.net[:-1]

    @property
    def classify(self) -> nn.Linear:
        """The last linear layer, features to one logit (psi)."""
        return self.net[-1]

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)
