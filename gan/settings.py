"""The GAN's settings, grouped as the model config groups them (``model.updates``, ``model.speed``,
``model.conditional``, ``model.run``): each group checks its own values and names its keys."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from gan.runtime.config import ConfigError, boolean, fmt, one_of, positive_int
from gan.nets.conditional import CONDITIONINGS

SCHEDULES = ("alternating", "simultaneous")
NONFINITE_POLICIES = ("stop", "skip")
CLIP_ALGORITHMS = ("value", "norm")
FAKE_LABELS = ("uniform", "real")  # where a conditional G's labels come from


class Updates:
    """How the two networks are updated (``model.updates``).

    Args:
        d_steps, g_steps: updates of D and of G per batch (alternating schedule).
        schedule: ``alternating`` (D then G, each on its own forward pass) or ``simultaneous``
            (both step from the gradients of one forward pass; it runs no terms).
        clip_d, clip_g: ``{"val": float, "algorithm": "value" | "norm"}`` or None.
        scheduler_g, scheduler_d: partials taking the optimizer (e.g.
            :class:`gan.schedules.InverseTimeDecay`), stepped after every update of that network.
    """

    def __init__(
        self, d_steps: int = 1, g_steps: int = 1, schedule: str = "alternating",
        clip_d: Mapping[str, Any] | None = None, clip_g: Mapping[str, Any] | None = None,
        scheduler_g: Callable[..., Any] | None = None, scheduler_d: Callable[..., Any] | None = None,
    ) -> None:
        self.d_steps = positive_int("model.updates.d_steps", d_steps)
        self.g_steps = positive_int("model.updates.g_steps", g_steps)
        self.schedule = one_of("model.updates.schedule", schedule, SCHEDULES)
        if schedule == "simultaneous" and (d_steps, g_steps) != (1, 1):
            raise ConfigError("model.updates.schedule=simultaneous takes one step of each network: "
                              "set model.updates.d_steps=1 and model.updates.g_steps=1")
        self.clip_d, self.clip_g = check_clip(clip_d, "clip_d"), check_clip(clip_g, "clip_g")
        self.scheduler_g, self.scheduler_d = scheduler_g, scheduler_d


class Speed:
    """Switches that change how fast an iteration runs (``model.speed``; docs/speed.md).

    Args:
        reuse_fake: the G phase reuses the batch generated for the D phase instead of a second G
            forward pass (faster; changes the algorithm's noise use).
        channels_last: keep conv weights and images in channels-last memory format.
        compile: ``torch.compile`` G's and D's forward passes (state-dict keys stay the same).
        joint_d_pass: D scores the real and the generated batch in one pass (refused for a D whose
            output for one image depends on the batch).
    """

    def __init__(self, reuse_fake: bool = False, channels_last: bool = False, compile: bool = False,
                 joint_d_pass: bool = False) -> None:
        self.reuse_fake = boolean("model.speed.reuse_fake", reuse_fake)
        self.channels_last = boolean("model.speed.channels_last", channels_last)
        self.compile = boolean("model.speed.compile", compile)
        self.joint_d_pass = boolean("model.speed.joint_d_pass", joint_d_pass)


class Conditioning:
    """A class-conditional GAN (``model.conditional``; :mod:`gan.nets.conditional`).

    Args:
        kind: ``projection``, ``concat`` or ``acgan`` (ACGAN brings its class term,
            :class:`gan.terms.AuxiliaryClassLoss`).
        label_dim: the size of G's label embedding (and of the concat D's).
        label_std: the initial standard deviation of G's label embedding.
        class_norm: G's BatchNorm layers take a per-class gain and bias.
        fake_labels: ``uniform`` (G's labels drawn uniformly over the classes) or ``real`` (G draws
            the real batch's labels, so each relativistic pair compares one class).
    """

    def __init__(self, kind: str = "projection", label_dim: int = 32, label_std: float = 1.0,
                 class_norm: bool = False, fake_labels: str = "uniform") -> None:
        self.kind = one_of("model.conditional.kind", kind, CONDITIONINGS)
        self.label_dim, self.label_std = label_dim, label_std  # checked by the networks they size
        self.class_norm = boolean("model.conditional.class_norm", class_norm)
        self.fake_labels = one_of("model.conditional.fake_labels", fake_labels, FAKE_LABELS)


class RunSettings:
    """What the model reads of the run (``model.run``, interpolated from the top level).

    Args:
        max_iterations: the budget in GAN iterations (``${iterations}``; None: ``trainer.max_epochs``).
        log_every: write the scalars averaged over this many iterations (``${log_every}``).
        n_fixed_noise: size of the fixed noise batch drawn for the sample grids.
        fixed_noise_seed: seeds the fixed noise (``${seed}``), so the same seed gives the same grid inputs.
        on_nonfinite: ``stop`` (raise, naming the iteration and phase) or ``skip`` (drop that
            update and count it in ``train/skipped_updates``) when a loss or gradient is not finite.
        max_skipped_in_a_row: under ``skip``, give up with the non-finite error after this many
            updates in a row of one network were skipped (a run that only skips has diverged).
    """

    def __init__(self, max_iterations: int | None = None, log_every: int = 10, n_fixed_noise: int = 64,
                 fixed_noise_seed: int | None = 0, on_nonfinite: str = "stop", max_skipped_in_a_row: int = 20) -> None:
        self.max_iterations = positive_int("iterations", max_iterations, nullable=True)
        self.log_every = positive_int("log_every", log_every)
        self.n_fixed_noise = positive_int("model.run.n_fixed_noise", n_fixed_noise)
        self.fixed_noise_seed = fixed_noise_seed
        self.on_nonfinite = one_of("on_nonfinite", on_nonfinite, NONFINITE_POLICIES)
        self.max_skipped_in_a_row = positive_int("model.run.max_skipped_in_a_row", max_skipped_in_a_row)


def check_clip(clip: Mapping[str, Any] | None, name: str) -> dict | None:
    if clip is None:
        return None
    clip = dict(clip)
    if set(clip) != {"val", "algorithm"} or clip["algorithm"] not in CLIP_ALGORITHMS or not clip["val"] > 0:
        raise ConfigError(
            f"model.updates.{name}={fmt(clip)} is not a clipping setting: use null or "
            f"{{val: <positive number>, algorithm: {' | '.join(CLIP_ALGORITHMS)}}}"
        )
    return clip
