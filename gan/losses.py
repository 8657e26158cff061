"""Adversarial losses as pure functions of the discriminator's logits.

Each loss is a pair: ``d_*(real_logits, fake_logits) -> scalar`` for the discriminator and
``g_*(fake_logits) -> scalar`` for the generator (a relativistic G loss also takes ``real_logits``). ``AdversarialLoss`` holds a pair chosen by the
``loss`` config group. Every function works on raw logits (never on probabilities), so it stays
finite for a confident discriminator and is safe under mixed precision.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from gan.runtime.config import ConfigError


def d_nonsaturating(real_logits: Tensor, fake_logits: Tensor, real_label: float = 1.0) -> Tensor:
    """-E[log D(x)] - E[log(1 - D(G(z)))] with BCE on logits; ``real_label`` < 1 smooths it."""
    real = F.binary_cross_entropy_with_logits(real_logits, torch.full_like(real_logits, real_label))
    fake = F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))
    return real + fake


def g_nonsaturating(fake_logits: Tensor) -> Tensor:
    """-E[log D(G(z))]: the generator's non-saturating loss (Goodfellow et al. 2014, sec. 3)."""
    return F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))


# The minimax game's discriminator loss is the same binary cross-entropy.
d_minimax = d_nonsaturating


def g_minimax(fake_logits: Tensor) -> Tensor:
    """E[log(1 - D(G(z)))], the saturating loss G minimises in the original minimax game.

    log(1 - sigmoid(l)) = -softplus(l): finite for every logit. Its gradient vanishes where D
    confidently rejects the samples (l -> -inf), which is why the non-saturating loss exists.
    """
    return -F.softplus(fake_logits).mean()


def d_least_squares(real_scores: Tensor, fake_scores: Tensor, real_label: float = 1.0) -> Tensor:
    """LSGAN (Mao et al. 2017): 0.5 E[(D(x) - 1)^2] + 0.5 E[D(G(z))^2] on D's raw scores."""
    return 0.5 * (real_scores - real_label).pow(2).mean() + 0.5 * fake_scores.pow(2).mean()


def g_least_squares(fake_scores: Tensor) -> Tensor:
    """LSGAN: 0.5 E[(D(G(z)) - 1)^2]."""
    return 0.5 * (fake_scores - 1.0).pow(2).mean()


def d_wasserstein(real_scores: Tensor, fake_scores: Tensor) -> Tensor:
    """WGAN critic (Arjovsky et al. 2017): E[D(G(z))] - E[D(x)] (needs clipping or a penalty)."""
    return fake_scores.mean() - real_scores.mean()


def g_wasserstein(fake_scores: Tensor) -> Tensor:
    """WGAN generator: -E[D(G(z))]."""
    return -fake_scores.mean()


def d_hinge(real_scores: Tensor, fake_scores: Tensor) -> Tensor:
    """Hinge loss (Lim & Ye 2017; Miyato et al. 2018): E[relu(1 - D(x))] + E[relu(1 + D(G(z)))]."""
    return F.relu(1.0 - real_scores).mean() + F.relu(1.0 + fake_scores).mean()


def g_hinge(fake_scores: Tensor) -> Tensor:
    """Hinge loss, generator side: -E[D(G(z))]."""
    return -fake_scores.mean()


def d_relativistic(real_logits: Tensor, fake_logits: Tensor) -> Tensor:
    """Relativistic pairing GAN (Jolicoeur-Martineau 2019; R3GAN, Huang et al. 2024), D side:
    E[softplus(-(D(x) - D(G(z))))], each real image paired with one generated image."""
    return F.softplus(fake_logits - real_logits).mean()


def g_relativistic(fake_logits: Tensor, real_logits: Tensor) -> Tensor:
    """Relativistic pairing GAN, G side: E[softplus(-(D(G(z)) - D(x)))] (D's scores of real images
    are constants here: G's gradient flows through ``fake_logits`` only)."""
    return F.softplus(real_logits.detach() - fake_logits).mean()


def plain_callable(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``fn`` as a plain ``functools.partial`` if it is Hydra's partial subclass.

    Hydra 1.3.8 returns ``_partial_: true`` targets as a partial subclass that re-authorises its
    target (a JSON digest of the policy, path checks) on every call: about 0.4 ms here, paid twice
    per GAN iteration by the loss functions. The target was authorised when the config was
    instantiated; this drops the per-call re-check (and only that: the function, its arguments and
    keywords are kept). Any other callable, a partial subclass of your own included, is kept as is.
    """
    if isinstance(fn, functools.partial) and type(fn).__module__.split(".")[0] == "hydra":
        return functools.partial(fn.func, *fn.args, **fn.keywords)
    return fn


class AdversarialLoss:
    """A named pair of discriminator and generator losses of logits, with the terms that complete it.

    Args:
        name: shown in logs.
        discriminator: ``(real_logits, fake_logits) -> scalar``.
        generator: ``fake_logits -> scalar``.
        terms: the terms this loss is defined with, by name (``loss.terms``: rpgan's R1 and R2,
            WGAN-GP's gradient penalty; :mod:`gan.terms`); null entries are left out.
        weight_clip: if set, D's parameters are clamped to [-c, c] after each D update (WGAN).
        requires: model settings this loss needs, e.g. ``{"schedule": "alternating"}``: a config key,
            checked against the model config by :mod:`gan.runtime.config` before anything is built; not kept here.

    A plain class rather than a dataclass on purpose: Hydra would turn a dataclass instance
    passed to ``instantiate`` into a config node.
    """

    def __init__(
        self,
        name: str,
        discriminator: Callable[[Tensor, Tensor], Tensor],
        generator: Callable[[Tensor], Tensor],
        terms: Mapping[str, Any] | None = None,
        weight_clip: float | None = None,
        requires: Mapping[str, Any] | None = None,
    ) -> None:
        if weight_clip is not None and not weight_clip > 0:
            raise ConfigError(f"loss.weight_clip={weight_clip}: must be a positive number or null")
        self.name = name
        self.discriminator = plain_callable(discriminator)
        self.generator = plain_callable(generator)
        self.terms = {str(k): t for k, t in (terms or {}).items() if t is not None}
        self.weight_clip = weight_clip
        # a relativistic G loss compares with D's scores of real images: the G phase computes them
        self.g_needs_real = "real_logits" in inspect.signature(self.generator).parameters

    def d_loss(self, real_logits: Tensor, fake_logits: Tensor) -> Tensor:
        return self.discriminator(real_logits, fake_logits)

    def g_loss(self, fake_logits: Tensor, real_logits: Tensor | None = None) -> Tensor:
        return self.generator(fake_logits, real_logits) if self.g_needs_real else self.generator(fake_logits)

    def __repr__(self) -> str:
        return f"AdversarialLoss({self.name!r})"
