"""Class-conditional networks built around the template's own G and D (``model.conditioning``).

- :class:`ConditionalGenerator`: a label embedding joined to z (Mirza & Osindero 2014), ahead of any
  of the template's generators built for the wider input.
- :class:`ConditionalDiscriminator`: any discriminator that exposes ``features`` (phi: images to
  ``(n, F)``) and ``classify`` (psi: a linear layer from F to one logit), conditioned one of three ways:

  ``projection``  logit = psi(phi(x)) + <embed(y), phi(x)> (Miyato & Koyama, ICLR 2018)
  ``concat``      logit = MLP([phi(x), embed(y)]): the label joins the features before a hidden
                  layer (the joint hidden layer of Mirza & Osindero's D; a linear read-out of the
                  concatenation could only add a per-class bias)
  ``acgan``       logit = psi(phi(x)), plus K class logits from phi(x) (Odena et al. 2017): the
                  output is ``(n, 1 + K)`` and the GAN adds the cross-entropy of the class logits

Both take ``(x or z, labels)``; the labels are int64 class indices ``(n,)``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from gan.config import ConfigError, one_of, positive_int

CONDITIONINGS = ("projection", "concat", "acgan")
NUM_CLASSES = 10  # MNIST's digits, Fashion-MNIST's clothes
CONCAT_HIDDEN = 256


def cycling_labels(n: int, num_classes: int, device: torch.device | str | None = None) -> Tensor:
    """``0, 1, ..., K-1, 0, 1, ...``: every class in turn (what G draws when given no labels)."""
    return torch.arange(n, device=device) % num_classes


class ConditionalGenerator(nn.Module):
    """G(z, y) = generator([z, embed(y)]).

    Args:
        generator: builds the inner generator given ``noise_dim`` (a Hydra partial of any
            generator of ``conf/model``); it is built for ``noise_dim + label_dim`` inputs.
        noise_dim: size of z.
        num_classes: number of labels.
        label_dim: size of the label embedding.
    """

    def __init__(self, generator: Callable[..., nn.Module], noise_dim: int, num_classes: int = NUM_CLASSES, label_dim: int = 32) -> None:
        super().__init__()
        self.num_classes = positive_int("num_classes", num_classes)
        self.noise_dim = positive_int("model.noise.dim", noise_dim)
        self.embed = nn.Embedding(self.num_classes, positive_int("model.label_dim", label_dim))
        self.net = generator(noise_dim=noise_dim + label_dim)
        self.output_activation = getattr(self.net, "output_activation", "tanh")

    def forward(self, z: Tensor, labels: Tensor | None = None) -> Tensor:
        """Images of ``labels`` (default: every class in turn, :func:`cycling_labels`)."""
        if labels is None:
            labels = cycling_labels(len(z), self.num_classes, z.device)
        return self.net(torch.cat([z, self.embed(labels).to(z.dtype)], dim=1))


class ConditionalDiscriminator(nn.Module):
    """D(x, y) from an unconditional D's ``features`` (phi) and ``classify`` (psi); see the module doc.

    Args:
        discriminator: the unconditional discriminator whose layers it reuses.
        num_classes: number of labels.
        conditioning: ``projection``, ``concat`` or ``acgan``.
        label_dim: size of the label embedding of ``concat`` (``projection`` embeds in phi's size).
    """

    def __init__(self, discriminator: nn.Module, num_classes: int = NUM_CLASSES, conditioning: str = "projection", label_dim: int = 32) -> None:
        super().__init__()
        self.conditioning = one_of("model.conditioning", conditioning, CONDITIONINGS)
        self.num_classes = positive_int("num_classes", num_classes)
        features, classify = split_readout(discriminator)
        if features is None:
            raise ConfigError(f"model.conditioning={conditioning}: the discriminator {type(discriminator).__name__} has no "
                              "`features` and `classify` layers ending in a linear one to condition")
        self.features = features
        width = classify.in_features
        if self.conditioning == "concat":
            self.embed = nn.Embedding(self.num_classes, positive_int("model.label_dim", label_dim))
            self.classify = nn.Sequential(nn.Linear(width + label_dim, CONCAT_HIDDEN), nn.LeakyReLU(0.2), nn.Linear(CONCAT_HIDDEN, 1))
        else:
            self.classify = classify
        if self.conditioning == "projection":
            self.embed = nn.Embedding(self.num_classes, width)
            nn.init.xavier_uniform_(self.embed.weight)
        if self.conditioning == "acgan":
            self.classes = nn.Linear(width, self.num_classes)

    @property
    def auxiliary_classes(self) -> int:
        """How many class logits follow the adversarial logit in the output (ACGAN), else 0."""
        return self.num_classes if self.conditioning == "acgan" else 0

    def forward(self, x: Tensor, labels: Tensor) -> Tensor:
        h = self.features(x)
        if self.conditioning == "projection":
            return self.classify(h) + (self.embed(labels).to(h.dtype) * h).sum(1, keepdim=True)
        if self.conditioning == "concat":
            return self.classify(torch.cat([h, self.embed(labels).to(h.dtype)], dim=1))
        return torch.cat([self.classify(h), self.classes(h)], dim=1)


def split_readout(discriminator: nn.Module) -> tuple[nn.Module | None, nn.Linear | None]:
    """(phi, psi) of a D with ``features`` and ``classify``: psi is the last linear layer, phi
    everything before it. A ``classify`` stack (the cs231n D's FC 1024 -> LeakyReLU -> FC 1) gives
    its hidden layers to phi, so the projection acts on the 1024 features. (None, None) when the
    D has no such layers."""
    features, classify = getattr(discriminator, "features", None), getattr(discriminator, "classify", None)
    if isinstance(classify, nn.Sequential) and len(classify) > 1 and isinstance(classify[-1], nn.Linear):
        features, classify = nn.Sequential(features, *classify[:-1]), classify[-1]
    if features is None or not isinstance(classify, nn.Linear):
        return None, None
    return features, classify


def conditional_networks(
    generator: Callable[..., nn.Module], discriminator: nn.Module, noise_dim: int, conditioning: str, label_dim: int,
    num_classes: int = NUM_CLASSES,
) -> tuple[ConditionalGenerator, ConditionalDiscriminator]:
    """The conditional G and D of ``model.conditioning``, from the model's G partial and its D."""
    if isinstance(generator, nn.Module):
        raise ConfigError(f"model.conditioning={conditioning}: the generator must be given as a partial "
                          "(model.generator._partial_=true; experiment=conditional sets it), so it can be built "
                          "with room for the label embedding")
    return (ConditionalGenerator(generator, noise_dim, num_classes, label_dim),
            ConditionalDiscriminator(discriminator, num_classes, conditioning, label_dim))
