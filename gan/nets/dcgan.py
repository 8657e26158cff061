"""The InfoGAN-style DCGAN of the cs231n assignment (Chen et al. 2016, appendix C.1 for G).

The file is named after its config (``model=dcgan``); the classes after the paper whose MNIST
networks they are (InfoGAN), since "DCGAN" names a family, not these layer sizes.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from gan.data.images import output_layer
from gan.nets.init import initialize
from gan.nets.minibatch_std import MinibatchStd
from gan.nets.one_channel_conv import OneChannelConv2d


class InfoGANGenerator(nn.Module):
    """FC -> BN -> FC to (base*2)x7x7 -> BN -> ConvT to base x14x14 -> BN -> ConvT to 1x28x28.

    Each hidden layer is followed by ReLU then BatchNorm, as the assignment orders them.
    ``hidden=0`` leaves out the first FC layer (noise straight to the 7x7 projection).
    """

    def __init__(
        self,
        noise_dim: int = 96,
        hidden: int = 1024,
        base_channels: int = 64,
        output_activation: str = "tanh",
        init: str | None = "xavier_uniform",
    ) -> None:
        super().__init__()
        self.start_channels = base_channels * 2
        first = [nn.Linear(noise_dim, hidden), nn.ReLU(), nn.BatchNorm1d(hidden)] if hidden else []
        self.project = nn.Sequential(
            *first,
            nn.Linear(hidden or noise_dim, self.start_channels * 7 * 7),
            nn.ReLU(),
            nn.BatchNorm1d(self.start_channels * 7 * 7),
        )
        self.upsample = nn.Sequential(
            nn.ConvTranspose2d(self.start_channels, base_channels, 4, stride=2, padding=1),
            nn.ReLU(),
            nn.BatchNorm2d(base_channels),
            nn.ConvTranspose2d(base_channels, 1, 4, stride=2, padding=1),
            output_layer(output_activation),
        )
        self.noise_dim = noise_dim
        self.output_activation = output_activation
        initialize(self, init)

    def forward(self, z: Tensor) -> Tensor:
        h = self.project(z).view(z.shape[0], self.start_channels, 7, 7)
        if self.upsample[0].weight.is_contiguous(memory_format=torch.channels_last):
            h = h.contiguous(memory_format=torch.channels_last)  # as the convolutions' weights (model.speed.channels_last)
        return self.upsample(h)


class InfoGANDiscriminator(nn.Module):
    """conv 5x5 -> LeakyReLU -> maxpool, twice, then FC -> LeakyReLU -> FC to one logit.

    Each block runs as conv -> maxpool -> LeakyReLU: a max commutes with an increasing function,
    so the activation and its backward touch a quarter of the values (the 32x24x24 map is the
    largest tensor of D). In fp32 the outputs and gradients are the tutorial's to the bit. Under
    bf16 the outputs still are, but ``slope * x`` can round two negative values of a window to
    one number, and the tutorial order then sends that window's gradient to another element.
    The first conv is :class:`gan.nets.one_channel_conv.OneChannelConv2d`: ``nn.Conv2d``'s outputs
    and parameters, its input gradient computed another way (equal to rounding; the default recipe
    runs 1.12x faster for it on the AVX-512 BF16 kind without AMX).

    ``minibatch_std=k`` (0: off) appends the spread of each group of k images as one more 4x4
    channel before the FC layer (:class:`gan.nets.minibatch_std.MinibatchStd`).
    """

    def __init__(
        self,
        channels: tuple[int, int] = (32, 64),
        hidden: int = 1024,
        negative_slope: float = 0.01,
        init: str | None = "xavier_uniform",
        minibatch_std: int = 0,
    ) -> None:
        super().__init__()
        first, second = channels
        spread = [MinibatchStd(minibatch_std)] if minibatch_std else []
        self.features = nn.Sequential(
            OneChannelConv2d(first, 5),  # nn.Conv2d(1, first, 5) with a faster input gradient
            nn.MaxPool2d(2),
            nn.LeakyReLU(negative_slope),
            nn.Conv2d(first, second, 5),
            nn.MaxPool2d(2),
            nn.LeakyReLU(negative_slope),
            *spread,
            nn.Flatten(),
        )
        self.classify = nn.Sequential(
            nn.Linear((second + len(spread)) * 4 * 4, hidden),
            nn.LeakyReLU(negative_slope),
            nn.Linear(hidden, 1),
        )
        initialize(self, init)

    def forward(self, x: Tensor) -> Tensor:
        return self.classify(self.features(x))
