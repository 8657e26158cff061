"""The interface of a training term: one piece of a GAN objective beyond the adversarial loss.

A term joins the D phase, the G phase or both (:attr:`Term.phases`), at every ``every``-th update
of that phase (lazy regularisation), and returns its loss and the scalars to log from a
:class:`Phase`: what the update has computed so far. A term may also change how D sees every
image (:meth:`Term.d_input`: augmentations), and refuse a GAN it cannot run in (:meth:`Term.setup`).
The GAN sums the adversarial loss and each term's loss in the order the terms are listed; the
training step has no branch per term.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from torch import Tensor

from gan.runtime.config import positive_int

if TYPE_CHECKING:
    from gan.module import GAN

PHASES = ("D", "G")


@dataclass
class Phase:
    """One update of one network, as a term sees it.

    ``real`` and ``fake`` are the images D scored (in the D phase ``fake`` is cut from G's graph,
    and both are leaves that require grad when a term asked for it with ``needs_input_grad``);
    ``real_output`` and ``fake_output`` are D's whole outputs for them (an ACGAN D's class logits
    follow the adversarial logit; ``real_output`` is None in the G phase). ``score(images, labels)``
    is D as the update sees it (with every term's :meth:`Term.d_input`), for terms that score images
    of their own.
    """

    name: str  # "D" or "G"
    update: int  # this network's update count from 0
    real: Tensor
    fake: Tensor
    noise: Tensor
    real_labels: Tensor | None
    fake_labels: Tensor | None
    real_output: Tensor | None
    fake_output: Tensor
    score: Callable[[Tensor, Tensor | None], Tensor]

    @property
    def real_logits(self) -> Tensor | None:
        """D's adversarial logits ``(n, 1)`` for the real batch."""
        return None if self.real_output is None else self.real_output[:, :1]

    @property
    def fake_logits(self) -> Tensor:
        """D's adversarial logits ``(n, 1)`` for the generated batch."""
        return self.fake_output[:, :1]


class Term:
    """A loss term of one or both phases, or a change to what D sees.

    Subclasses set :attr:`phases` and override :meth:`loss` (and/or :meth:`d_input`). The GAN sets
    :attr:`name` to the term's key in the config (``model.terms.<name>``, ``loss.terms.<name>``).

    Attributes:
        phases: the phases whose loss this term joins: ``("D",)``, ``("G",)`` or ``("D", "G")``.
        every: the term applies at every ``every``-th update of its phase, counting from the first.
        needs_input_grad: the D phase makes its real and generated images leaves that require grad
            before D scores them, at the updates this term applies (gradient penalties at the data).
        pairs_halves: the term compares the batch's first and second halves image by image; a
            conditional G then draws both halves with the same labels.
    """

    phases: tuple[str, ...] = ()
    needs_input_grad: bool = False
    pairs_halves: bool = False
    where: str = "model.terms"  # where the shipped configs list this term: the key its messages name

    def __init__(self, every: int = 1) -> None:
        self.every = positive_int(f"{self.where}.every", every)
        self.name = type(self).__name__

    def applies(self, phase: str, update: int) -> bool:
        """Whether this term joins update number ``update`` (from 0) of ``phase``."""
        return phase in self.phases and update % self.every == 0

    def loss(self, phase: Phase) -> tuple[Tensor, dict[str, Tensor]]:
        """This term's contribution to the phase's loss, and the scalars to log (``train/<key>``)."""
        raise NotImplementedError(f"{type(self).__name__} joins {self.phases} but defines no loss")

    def d_input(self, images: Tensor) -> Tensor:
        """What D sees of ``images`` (real or generated, either phase); the identity unless overridden."""
        return images

    def setup(self, gan: GAN) -> None:
        """Called once by ``gan`` when it is built: read what the term needs of it (its value
        range, its classes), or raise :class:`gan.runtime.errors.ConfigError` if the term cannot run in it."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r}, phases={self.phases}, every={self.every})"
