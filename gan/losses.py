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

from gan.config import ConfigError, positive_int, weight


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


def mode_seeking(fake: Tensor, noise: Tensor, eps: float = 1e-5) -> Tensor:
    """The mode-seeking term of MSGAN (Mao et al., CVPR 2019), for G to minimise: the reciprocal of
    how far apart G puts two images per unit of distance between their noise vectors,
    ``1 / (mean|G(z1) - G(z2)| / mean|z1 - z2| + eps)``. The pairs are the batch's first and second
    halves (a conditional G draws them with the same labels, so the term asks for variety within
    a class). Small when distinct noise gives distinct images; it grows as G ignores its noise."""
    half = len(fake) // 2
    if half == 0:
        raise ValueError("mode_seeking needs a batch of at least two images")
    image_gap = (fake[:half].float() - fake[half:2 * half].float()).abs().mean()
    noise_gap = (noise[:half].float() - noise[half:2 * half].float()).abs().mean()
    return 1.0 / (image_gap / noise_gap + eps)


def squared_gradient_norm(logits: Tensor, inputs: Tensor) -> Tensor:
    """E_x ||grad_x D(x)||^2 for ``logits = D(inputs)`` (``inputs`` must require grad): the R1 penalty
    at real images, R2 at generated ones (Mescheder et al. 2018; Roth et al. 2017). Builds a graph
    for the double backward, so D's update sees the penalty's gradient."""
    (grad,) = torch.autograd.grad(logits.float().sum(), inputs, create_graph=True)
    return grad.float().square().flatten(1).sum(1).mean()


def gradient_penalty(discriminator: Callable[[Tensor], Tensor], real: Tensor, fake: Tensor, weight: float = 10.0) -> Tensor:
    """WGAN-GP (Gulrajani et al. 2017): weight * E[(||grad_x D(x_hat)||_2 - 1)^2] on random
    interpolates x_hat between real and generated images. Builds a graph for double backprop."""
    alpha = torch.rand(real.shape[0], *([1] * (real.dim() - 1)), device=real.device, dtype=real.dtype)
    x_hat = (alpha * real.detach() + (1 - alpha) * fake.detach()).requires_grad_(True)
    scores = discriminator(x_hat)
    (grad,) = torch.autograd.grad(scores.sum(), x_hat, create_graph=True)
    norms = grad.flatten(1).norm(2, dim=1)
    return weight * (norms - 1.0).pow(2).mean()


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
    """A named pair of discriminator and generator losses of logits, with D's regularisers.

    Args:
        name: shown in logs.
        discriminator: ``(real_logits, fake_logits) -> scalar``.
        generator: ``fake_logits -> scalar``.
        penalty: optional ``(discriminator, real, fake) -> scalar`` added to D's loss (e.g.
            :func:`gradient_penalty`).
        weight_clip: if set, D's parameters are clamped to [-c, c] after each D update (WGAN).
        r1_gamma, r2_gamma: zero-centred gradient penalties on D, ``gamma / 2 * E||grad D||^2`` at
            real (R1) and at generated (R2) images; 0 switches one off.
        penalty_every: apply R1/R2 only every this many D updates, scaled by it (lazy
            regularisation, Karras et al. 2020); 1 applies them at every D update.
        requires: model settings this loss needs, e.g. ``{"schedule": "alternating"}``: a config key,
            checked against the model config by :mod:`gan.config` before anything is built; not kept here.

    A plain class rather than a dataclass on purpose: Hydra would turn a dataclass instance
    passed to ``instantiate`` into a config node.
    """

    def __init__(
        self,
        name: str,
        discriminator: Callable[[Tensor, Tensor], Tensor],
        generator: Callable[[Tensor], Tensor],
        penalty: Callable[..., Tensor] | None = None,
        weight_clip: float | None = None,
        r1_gamma: float = 0.0,
        r2_gamma: float = 0.0,
        penalty_every: int = 1,
        requires: Mapping[str, Any] | None = None,
    ) -> None:
        if weight_clip is not None and not weight_clip > 0:
            raise ConfigError(f"loss.weight_clip={weight_clip}: must be a positive number or null")
        self.r1_gamma, self.r2_gamma = weight("loss.r1_gamma", r1_gamma), weight("loss.r2_gamma", r2_gamma)
        self.penalty_every = positive_int("loss.penalty_every", penalty_every)
        self.name = name
        self.discriminator = plain_callable(discriminator)
        self.generator = plain_callable(generator)
        self.penalty = None if penalty is None else plain_callable(penalty)
        self.weight_clip = weight_clip
        # a relativistic G loss compares with D's scores of real images: the G phase computes them
        self.g_needs_real = "real_logits" in inspect.signature(self.generator).parameters

    def d_loss(self, real_logits: Tensor, fake_logits: Tensor) -> Tensor:
        return self.discriminator(real_logits, fake_logits)

    def g_loss(self, fake_logits: Tensor, real_logits: Tensor | None = None) -> Tensor:
        return self.generator(fake_logits, real_logits) if self.g_needs_real else self.generator(fake_logits)

    def penalises_gradients(self, d_update: int) -> bool:
        """Whether D's update number ``d_update`` (counting from 0) carries the R1/R2 penalty."""
        return (self.r1_gamma > 0 or self.r2_gamma > 0) and d_update % self.penalty_every == 0

    def gradient_penalties(self, real_logits: Tensor, fake_logits: Tensor, real: Tensor, fake: Tensor) -> Tensor:
        """``penalty_every * (r1_gamma / 2 * R1 + r2_gamma / 2 * R2)``, from the logits of the D pass
        over ``real`` and ``fake`` (both made to require grad before that pass)."""
        total = real_logits.new_zeros((), dtype=torch.float32)
        if self.r1_gamma > 0:
            total = total + self.r1_gamma / 2 * squared_gradient_norm(real_logits, real)
        if self.r2_gamma > 0:
            total = total + self.r2_gamma / 2 * squared_gradient_norm(fake_logits, fake)
        return self.penalty_every * total

    def __repr__(self) -> str:
        return f"AdversarialLoss({self.name!r})"
