"""Class-conditional networks built around the template's own G and D (``model.conditional``).

- :class:`ConditionalGenerator`: a label embedding joined to z (Mirza & Osindero 2014), ahead of any
  of the template's generators built for the wider input.
- :class:`ConditionalDiscriminator`: any discriminator that exposes ``features`` (phi: images to
  ``(n, F)``) and ``classify`` (psi: a linear layer from F to one logit), conditioned one of three ways:

  ``projection``  logit = psi(phi(x)) + <embed(y), phi(x)> (Miyato & Koyama, ICLR 2018)
  ``concat``      logit = MLP([phi(x), embed(y)]): the label joins the features before a hidden
                  layer (the joint hidden layer of Mirza & Osindero's D; a linear read-out of the
                  concatenation could only add a per-class bias)
  ``acgan``       logit = psi(phi(x)), plus K class logits from phi(x) (Odena et al. 2017): the
                  output is ``(n, 1 + K)`` and its class term (:class:`gan.terms.AuxiliaryClassLoss`) is the cross-entropy of the class logits

Both take ``(x or z, labels)``; the labels are int64 class indices ``(n,)``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from gan.runtime.values import ConfigError, one_of, positive_int

CONDITIONINGS = ("projection", "concat", "acgan")
NUM_CLASSES = 10  # MNIST's digits, Fashion-MNIST's clothes
CONCAT_HIDDEN = 256


def cycling_labels(n: int, num_classes: int, device: torch.device | str | None = None) -> Tensor:
    """``0, 1, ..., K-1, 0, 1, ...``: every class in turn (what G draws when given no labels)."""
    return torch.arange(n, device=device) % num_classes


class ClassConditionalBatchNorm(nn.Module):
    """BatchNorm whose gain and bias are looked up per class (de Vries et al. 2017; the G of
    Miyato & Koyama 2018): the statistics are the batch's, shared by every class, and each class
    scales and shifts the normalised features its own way. Gains start at 1 and biases at 0, so
    at initialisation it is the plain BatchNorm it replaces.

    The labels of the batch are set on :attr:`labels` by the owning :class:`ConditionalGenerator`
    just before each forward pass (the inner generator's ``forward(z)`` has no room for them).
    """

    def __init__(self, norm: nn.modules.batchnorm._BatchNorm, num_classes: int) -> None:
        super().__init__()
        self.norm = type(norm)(norm.num_features, eps=norm.eps, momentum=norm.momentum, affine=False,
                               track_running_stats=norm.track_running_stats)
        self.gain = nn.Embedding(num_classes, norm.num_features)
        self.bias = nn.Embedding(num_classes, norm.num_features)
        nn.init.ones_(self.gain.weight)
        nn.init.zeros_(self.bias.weight)
        self.labels: Tensor | None = None

    def forward(self, x: Tensor) -> Tensor:
        if self.labels is None:
            raise RuntimeError("ClassConditionalBatchNorm called without labels: call it through ConditionalGenerator")
        shape = (len(x), -1) + (1,) * (x.dim() - 2)
        gain, bias = self.gain(self.labels).to(x.dtype).view(shape), self.bias(self.labels).to(x.dtype).view(shape)
        return self.norm(x) * gain + bias


class ConditionalGenerator(nn.Module):
    """G(z, y) = generator([z, embed(y)]), optionally with class-conditional BatchNorm.

    Args:
        generator: builds the inner generator given ``noise_dim`` (a Hydra partial of any
            generator of ``conf/model``); it is built for ``noise_dim + label_dim`` inputs.
        noise_dim: size of z.
        num_classes: number of labels.
        label_dim: size of the label embedding.
        label_std: the label embedding's initial standard deviation (torch's default is 1, the
            scale of z's entries).
        class_norm: replace every BatchNorm of the inner generator with
            :class:`ClassConditionalBatchNorm`, so the label also sets each layer's gain and bias.
    """

    def __init__(
        self, generator: Callable[..., nn.Module], noise_dim: int, num_classes: int = NUM_CLASSES, label_dim: int = 32,
        label_std: float = 1.0, class_norm: bool = False,
    ) -> None:
        super().__init__()
        self.num_classes = positive_int("num_classes", num_classes)
        self.noise_dim = positive_int("model.noise.dim", noise_dim)
        self.embed = nn.Embedding(self.num_classes, positive_int("model.conditional.label_dim", label_dim))
        if not label_std >= 0:
            raise ConfigError(f"model.conditional.label_std={label_std}: the label embedding's initial standard deviation must be >= 0")
        if label_std != 1.0:  # nn.Embedding's own init is N(0, 1): keep that draw, so seeds reproduce older runs
            nn.init.normal_(self.embed.weight, std=label_std)
        self.net = generator(noise_dim=noise_dim + label_dim)
        self.output_activation = getattr(self.net, "output_activation", "tanh")
        self.class_norms: list[ClassConditionalBatchNorm] = []
        if class_norm:
            self.class_norms = _condition_batch_norms(self.net, self.num_classes)
            if not self.class_norms:
                raise ConfigError(f"model.conditional.class_norm=true: the generator {type(self.net).__name__} has no BatchNorm layer to condition")

    def forward(self, z: Tensor, labels: Tensor | None = None) -> Tensor:
        """Images of ``labels`` (default: every class in turn, :func:`cycling_labels`)."""
        if labels is None:
            labels = cycling_labels(len(z), self.num_classes, z.device)
        for norm in self.class_norms:
            norm.labels = labels
        try:
            return self.net(torch.cat([z, self.embed(labels).to(z.dtype)], dim=1))
        finally:
            for norm in self.class_norms:
                norm.labels = None


def _condition_batch_norms(net: nn.Module, num_classes: int) -> list[ClassConditionalBatchNorm]:
    """Swap every BatchNorm inside ``net`` for a :class:`ClassConditionalBatchNorm`; the new layers, in order."""
    swapped = []
    for parent in list(net.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, nn.modules.batchnorm._BatchNorm):
                conditional = ClassConditionalBatchNorm(child, num_classes)
                setattr(parent, name, conditional)
                swapped.append(conditional)
    return swapped


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
        self.conditioning = one_of("model.conditional.kind", conditioning, CONDITIONINGS)
        self.num_classes = positive_int("num_classes", num_classes)
        features, classify = split_readout(discriminator)
        if features is None:
            raise ConfigError(f"model.conditional.kind={conditioning}: the discriminator {type(discriminator).__name__} has no "
                              "`features` and `classify` layers ending in a linear one to condition")
        self.features = features
        width = classify.in_features
        if self.conditioning == "concat":
            self.embed = nn.Embedding(self.num_classes, positive_int("model.conditional.label_dim", label_dim))
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
    num_classes: int = NUM_CLASSES, label_std: float = 1.0, class_norm: bool = False,
) -> tuple[ConditionalGenerator, ConditionalDiscriminator]:
    """The conditional G and D of ``model.conditional``, from the model's G partial and its D."""
    if isinstance(generator, nn.Module):
        raise ConfigError(f"model.conditional.kind={conditioning}: the generator must be given as a partial "
                          "(model.generator._partial_=true; experiment=conditional sets it), so it can be built "
                          "with room for the label embedding")
    return (ConditionalGenerator(generator, noise_dim, num_classes, label_dim, label_std, class_norm),
            ConditionalDiscriminator(discriminator, num_classes, conditioning, label_dim))
