"""The GAN LightningModule: G and D, their optimizers, and one GAN iteration's D and G updates.

Manual optimization: each batch is one *GAN iteration* (README, "Counting"), made of ``d_steps``
discriminator updates then ``g_steps`` generator updates, or with ``schedule="simultaneous"`` one
forward pass from which both networks step. The counting, the scalars and the budget stop are
:class:`gan.bookkeeping.Bookkeeping`'s.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gan import rng
from gan.bookkeeping import Bookkeeping, iteration_scalars
from gan.config import ConfigError, one_of, positive_int, weight
from gan.ema import GeneratorEMA
from gan.images import output_range
from gan.losses import AdversarialLoss, mode_seeking
from gan.nets.conditional import conditional_networks
from gan.nets.minibatch_std import MinibatchStd
from gan.noise import NoisePrior
from gan.updates import NetworkUpdates, check_clip

log = logging.getLogger(__name__)

SCHEDULES = ("alternating", "simultaneous")
NONFINITE_POLICIES = ("stop", "skip")
FAKE_LABELS = ("uniform", "real")  # where a conditional G's labels come from (model.fake_labels)
# layers whose output for one image depends on the rest of its batch in training mode
BATCH_STATISTICS = (nn.modules.batchnorm._BatchNorm, MinibatchStd)


class GAN(NetworkUpdates, pl.LightningModule):
    """A generator and a discriminator trained against each other.

    Args:
        generator: maps ``(n, noise.dim)`` noise to ``(n, 1, 28, 28)`` images; has an
            ``output_activation`` attribute (``tanh`` or ``sigmoid``).
        discriminator: maps images to ``(n, 1)`` logits.
        noise: the prior the generator's input is drawn from.
        optimizer_g, optimizer_d: partials taking the network's parameters.
        loss: the adversarial loss pair (and D's penalties or weight clipping).
        ema: None, or a partial of :class:`gan.ema.GeneratorEMA` taking the generator: an averaged
            copy of G, updated after every G phase, that grids, evaluation and sampling draw from.
        d_steps, g_steps: updates of D and of G per batch (alternating schedule).
        schedule: ``alternating`` (D then G, each on its own forward pass) or ``simultaneous``
            (both step from the gradients of one forward pass).
        clip_d, clip_g: ``{"val": float, "algorithm": "value" | "norm"}`` or None.
        scheduler_g, scheduler_d: partials taking the optimizer (e.g.
            :class:`gan.schedules.InverseTimeDecay`), stepped after every update of that network.
        reuse_fake: the G phase reuses the batch generated for the D phase instead of a second G
            forward pass (faster; changes the algorithm's noise use).
        channels_last: keep conv weights and images in channels-last memory format.
        compile: ``torch.compile`` G's and D's forward passes (state-dict keys stay the same).
        joint_d_pass: D scores the real and the generated batch in one pass (refused for a D whose
            output for one image depends on the batch).
        on_nonfinite: ``stop`` (raise, naming the iteration and phase) or ``skip`` (drop that
            update and count it in ``train/skipped_updates``) when a loss or gradient is not finite.
        max_skipped_in_a_row: under ``skip``, give up with the non-finite error after this many
            updates in a row of one network were skipped (a run that only skips has diverged).
        max_iterations: the budget in GAN iterations (``${iterations}``; None: ``trainer.max_epochs``).
        log_every: write the scalars averaged over this many iterations (``${log_every}``).
        n_fixed_noise: size of the fixed noise batch drawn for the sample grids.
        fixed_noise_seed: seeds the fixed noise (``${seed}``), so the same seed gives the same grid inputs.
        conditioning: null (unconditional), or ``projection``, ``concat`` or ``acgan``: a
            class-conditional GAN (:mod:`gan.nets.conditional`). ``generator`` is then a partial
            taking ``noise_dim``; real labels come with the batches, fake labels are drawn uniformly.
        label_dim: the size of G's label embedding (conditional only). Both datasets have 10
            classes (:data:`gan.nets.conditional.NUM_CLASSES`); ACGAN's class cross-entropy is
            added to both losses with weight 1, as in Odena et al. 2017.
        label_std: the initial standard deviation of G's label embedding (conditional only).
        class_norm: G's BatchNorm layers take a per-class gain and bias
            (:class:`gan.nets.conditional.ClassConditionalBatchNorm`; conditional only).
        fake_labels: ``uniform`` (G's labels drawn uniformly over the classes) or ``real`` (G draws
            the real batch's labels, so each relativistic pair compares one class; conditional only).
        mode_seeking: the weight of MSGAN's mode-seeking term in G's loss
            (:func:`gan.losses.mode_seeking`; 0 switches it off). The batch's two halves are its
            pairs; a conditional G draws both halves with the same labels.
    """

    def __init__(
        self,
        generator: nn.Module,
        discriminator: nn.Module,
        noise: NoisePrior,
        optimizer_g: Callable[..., torch.optim.Optimizer],
        optimizer_d: Callable[..., torch.optim.Optimizer],
        loss: AdversarialLoss,
        ema: Callable[[nn.Module], GeneratorEMA] | None = None,
        d_steps: int = 1,
        g_steps: int = 1,
        schedule: str = "alternating",
        clip_d: Mapping[str, Any] | None = None,
        clip_g: Mapping[str, Any] | None = None,
        scheduler_g: Callable[..., Any] | None = None,
        scheduler_d: Callable[..., Any] | None = None,
        reuse_fake: bool = False,
        channels_last: bool = False,
        compile: bool = False,
        joint_d_pass: bool = False,
        on_nonfinite: str = "stop",
        max_skipped_in_a_row: int = 20,
        max_iterations: int | None = None,
        log_every: int = 10,
        n_fixed_noise: int = 64,
        fixed_noise_seed: int | None = 0,
        conditioning: str | None = None,
        label_dim: int = 32,
        label_std: float = 1.0,
        class_norm: bool = False,
        fake_labels: str = "uniform",
        mode_seeking: float = 0.0,
    ) -> None:
        super().__init__()
        self.num_classes = None  # None: unconditional
        self.fake_labels = one_of("model.fake_labels", fake_labels, FAKE_LABELS)
        self.mode_seeking = _check_mode_seeking(mode_seeking, schedule, self.fake_labels, conditioning)
        if conditioning is not None:
            _check_conditional_recipe(conditioning, schedule, loss)
            generator, discriminator = conditional_networks(generator, discriminator, noise.dim, conditioning, label_dim,
                                                            label_std=label_std, class_norm=class_norm)
            self.num_classes = discriminator.num_classes
        # class logits D returns after its adversarial logit (ACGAN), else 0
        self.auxiliary_classes = getattr(discriminator, "auxiliary_classes", 0)
        self.automatic_optimization = False
        self.schedule = one_of("model.schedule", schedule, SCHEDULES)
        self.d_steps = positive_int("model.d_steps", d_steps)
        self.g_steps = positive_int("model.g_steps", g_steps)
        if schedule == "simultaneous" and (d_steps, g_steps) != (1, 1):
            raise ConfigError("schedule=simultaneous takes one step of each network: set d_steps=1 and g_steps=1")
        if schedule == "simultaneous" and reuse_fake:
            raise ConfigError("reuse_fake applies to the alternating schedule (simultaneous already shares one pass)")
        self.on_nonfinite = one_of("on_nonfinite", on_nonfinite, NONFINITE_POLICIES)
        self.max_skipped_in_a_row = positive_int("model.max_skipped_in_a_row", max_skipped_in_a_row)
        if joint_d_pass:
            _check_scores_each_image_alone(discriminator)
        self.generator = generator
        self.generator_ema = ema(generator) if ema is not None else None
        self.discriminator = discriminator
        self.noise = noise
        self.loss = loss
        self.optimizer_g_factory, self.optimizer_d_factory = optimizer_g, optimizer_d
        self.scheduler_g_factory, self.scheduler_d_factory = scheduler_g, scheduler_d
        self.clip_d, self.clip_g = check_clip(clip_d, "clip_d"), check_clip(clip_g, "clip_g")
        self.reuse_fake, self.channels_last, self.compile_nets = bool(reuse_fake), bool(channels_last), bool(compile)
        self.joint_d_pass = bool(joint_d_pass)
        self.value_range = output_range(getattr(generator, "output_activation", "tanh"))
        self.bookkeeping = Bookkeeping(positive_int("iterations", max_iterations, nullable=True),
                                       positive_int("log_every", log_every))
        self.skipped_updates = 0
        self.skipped_in_a_row = {"D": 0, "G": 0}  # consecutive skipped updates of each network
        self._schedulers: dict | None = None
        self._pending_rng: dict | None = None
        self._resumed_epoch_batches: int | None = None
        self.run_config: dict | None = None  # the composed config, stored in checkpoints
        fixed = noise.sample(n_fixed_noise, generator=torch.Generator().manual_seed(fixed_noise_seed or 0))
        self.register_buffer("fixed_noise", fixed)

    # what the callbacks read
    @property
    def iteration(self) -> int:
        """Completed GAN iterations: the x axis of every curve and grid."""
        return self.bookkeeping.iteration

    @property
    def max_iterations(self) -> int | None:
        return self.bookkeeping.max_iterations

    @property
    def log_every(self) -> int:
        return self.bookkeeping.log_every

    @property
    def history(self):
        return self.bookkeeping.history

    @property
    def sampling_generator(self) -> nn.Module:
        """What grids, evaluation and sampling draw from: the EMA generator if there is one, else G."""
        return self.generator_ema.average if self.generator_ema is not None else self.generator

    # ------------------------------------------------------------------ the algorithm
    def forward(self, z: Tensor) -> Tensor:
        return self.generator(z)

    def sample_noise(self, n: int) -> Tensor:
        return self.noise.sample(n, device=self.device)

    def training_step(self, batch, batch_idx: int) -> None:
        real = batch[0] if isinstance(batch, (tuple, list)) else batch
        labels = batch[1] if self.num_classes is not None else None  # the real images' classes
        if self.channels_last:
            real = real.contiguous(memory_format=torch.channels_last)
        if self.schedule == "simultaneous":
            return self._end_iteration(self._simultaneous_step(real))
        opt_g, opt_d = self.optimizers()
        n = real.shape[0]

        # ---- Train Discriminator: real images towards "real", G's samples towards "fake" ----
        for step in range(self.d_steps):
            fake_labels = self.sample_labels(n, labels)  # None when unconditional
            z = self.sample_noise(n)
            if self.reuse_fake:
                fake = self._generate(z, fake_labels)  # keeps its graph for the G phase
            else:
                with torch.no_grad():
                    fake = self._generate(z, fake_labels)
            penalise = self.loss.penalises_gradients(self.iteration * self.d_steps + step)
            d_real, d_fake = _inputs_for_d(real, fake, penalise)
            real_logits, fake_logits = self._discriminate(d_real, d_fake, labels, fake_labels)
            if self.auxiliary_classes:  # ACGAN: D also names the class of real and generated images
                (real_logits, real_classes), (fake_logits, fake_classes) = _split(real_logits), _split(fake_logits)
                class_loss = F.cross_entropy(real_classes, labels) + F.cross_entropy(fake_classes, fake_labels)
            d_loss = self.loss.d_loss(real_logits, fake_logits)
            if self.auxiliary_classes:
                d_loss = d_loss + class_loss
            if penalise:  # R1 at real, R2 at generated images, from this same pass
                d_loss = d_loss + self.loss.gradient_penalties(real_logits, fake_logits, d_real, d_fake)
            if self.loss.penalty is not None:
                d_loss = d_loss + self.loss.penalty(self.discriminator, real, fake)
            self._update(opt_d, d_loss, self.discriminator, self.clip_d, "D")

        # ---- Train Generator: make D call G's samples real; D's parameters stay frozen ----
        with self.toggled_optimizer(opt_g):
            for step in range(self.g_steps):
                if not (self.reuse_fake and step == 0):
                    fake_labels, z = self.sample_labels(n, labels), self.sample_noise(n)
                    fake = self._generate(z, fake_labels)
                scores = self._score(fake, fake_labels)
                real_scores = self._real_scores(real, labels) if self.loss.g_needs_real else None
                if self.auxiliary_classes:  # ACGAN: G also makes D name the class it drew for
                    scores, classes = _split(scores)
                    g_loss = self.loss.g_loss(scores, real_scores) + F.cross_entropy(classes, fake_labels)
                else:
                    g_loss = self.loss.g_loss(scores, real_scores)
                objective = g_loss
                if self.mode_seeking:
                    diversity = mode_seeking(fake, z)
                    objective = g_loss + self.mode_seeking * diversity
                self._update(opt_g, objective, self.generator, self.clip_g, "G")
        self._update_ema(n)

        measured = {"mode_seeking": diversity} if self.mode_seeking else None
        self._end_iteration(iteration_scalars(d_loss, g_loss, real_logits, fake_logits, self.loss.g_needs_real), measured)

    def _simultaneous_step(self, real: Tensor) -> Tensor:
        opt_g, opt_d = self.optimizers()
        # ---- One forward pass; D and G each step on their own loss's gradients ----
        fake = self.generator(self.sample_noise(real.shape[0]))
        real_logits, fake_logits = self._discriminate(real, fake)
        d_loss = self.loss.d_loss(real_logits, fake_logits)
        g_loss = self.loss.g_loss(fake_logits, real_logits)
        opt_d.zero_grad(set_to_none=True)
        opt_g.zero_grad(set_to_none=True)
        if self._finite(torch.stack([d_loss, g_loss]), "D+G", "loss"):
            self.manual_backward(d_loss, inputs=list(self.discriminator.parameters()), retain_graph=True)
            self.manual_backward(g_loss, inputs=list(self.generator.parameters()))
            self._step(opt_d, self.discriminator, self.clip_d, "D")
            self._step(opt_g, self.generator, self.clip_g, "G")
        self._update_ema(real.shape[0])
        return iteration_scalars(d_loss, g_loss, real_logits, fake_logits, self.loss.g_needs_real)

    def _discriminate(
        self, real: Tensor, fake: Tensor, real_labels: Tensor | None = None, fake_labels: Tensor | None = None
    ) -> tuple[Tensor, Tensor]:
        """D's logits for the real and the generated batch: one pass over both with ``joint_d_pass``
        (the same numbers up to rounding, fewer and larger ops), else a pass each."""
        if self.joint_d_pass:
            labels = None if real_labels is None else torch.cat([real_labels, fake_labels])
            real_logits, fake_logits = self._score(torch.cat([real, fake]), labels).split([len(real), len(fake)])
            return real_logits, fake_logits
        return self._score(real, real_labels), self._score(fake, fake_labels)

    @torch.no_grad()
    def _real_scores(self, real: Tensor, labels: Tensor | None = None) -> Tensor:
        """D's logits for the real batch, as constants of a relativistic G loss."""
        scores = self._score(real, labels)
        return _split(scores)[0] if self.auxiliary_classes else scores

    # ------------------------------------------------------------------ labels (conditional GANs)
    def sample_labels(self, n: int, real_labels: Tensor | None = None) -> Tensor | None:
        """Labels for ``n`` generated images: uniform over the classes, or the real batch's under
        ``fake_labels=real``; None when unconditional (which then draws nothing, so its random
        stream is what it always was)."""
        if self.num_classes is None:
            return None
        if self.fake_labels == "real" and real_labels is not None:
            return real_labels
        if self.mode_seeking:  # the mode-seeking pairs (first half, second half) share their labels
            half, odd_one = (torch.randint(0, self.num_classes, (k,), device=self.device) for k in (n // 2, n % 2))
            return torch.cat([half, half, odd_one])
        return torch.randint(0, self.num_classes, (n,), device=self.device)

    def _generate(self, z: Tensor, labels: Tensor | None) -> Tensor:
        return self.generator(z) if labels is None else self.generator(z, labels)

    def _score(self, x: Tensor, labels: Tensor | None) -> Tensor:
        return self.discriminator(x) if labels is None else self.discriminator(x, labels)

    def _update_ema(self, batch_size: int) -> None:
        if self.generator_ema is not None:
            images = batch_size * self.trainer.world_size  # every process's batch
            self.generator_ema.update(self.generator, images, (self.iteration + 1) * images)

    def _end_iteration(self, stats: Tensor, measured: dict[str, Tensor] | None = None) -> None:
        extra = {"skipped_updates": float(self.skipped_updates)} if self.on_nonfinite == "skip" else None
        self.bookkeeping.end_iteration(self.trainer, stats, extra, measured)

    # ------------------------------------------------------------------ optimizers
    def configure_optimizers(self):
        opt_g = self.optimizer_g_factory(self.generator.parameters())
        opt_d = self.optimizer_d_factory(self.discriminator.parameters())
        schedulers = [f(o) for f, o in ((self.scheduler_g_factory, opt_g), (self.scheduler_d_factory, opt_d)) if f is not None]
        return ([opt_g, opt_d], schedulers) if schedulers else [opt_g, opt_d]

    def configure_model(self) -> None:
        if self.channels_last:
            for net in (self.generator, self.discriminator, self.generator_ema):
                if net is not None:
                    net.to(memory_format=torch.channels_last)
        if self.compile_nets and not getattr(self, "_compiled", False):
            self.generator.compile()
            self.discriminator.compile()
            self._compiled = True

    # ------------------------------------------------------------------ run state
    def on_train_start(self) -> None:
        if self._pending_rng is not None:
            rng.restore(self._pending_rng)
            self._pending_rng = None
        if self._resumed_epoch_batches is not None:
            # Lightning resumes mid-epoch without replaying the loader: skip what was consumed.
            sampler = getattr(self.trainer.datamodule, "sampler", None)
            done = self._resumed_epoch_batches
            if sampler is not None and 0 < done < len(sampler):
                sampler.skip = done
                self.bookkeeping.epoch_batches = done
            self._resumed_epoch_batches = None
        if self.bookkeeping.budget_reached():
            log.info("the budget of %d iterations is already reached", self.max_iterations)
            self.trainer.should_stop = True

    def on_train_epoch_start(self) -> None:
        self.bookkeeping.epoch_batches = 0

    def on_train_end(self) -> None:
        self.bookkeeping.write(self.trainer)

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["gan"] = {
            **self.bookkeeping.state_dict(),
            "skipped_updates": self.skipped_updates,
            "skipped_in_a_row": dict(self.skipped_in_a_row),
            "rng": rng.capture(),
            "config": self.run_config,
        }

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        state = checkpoint.get("gan")
        if state is None:
            raise ValueError("this checkpoint was not written by gan.train (it has no 'gan' section)")
        self.bookkeeping.iteration = int(state["iteration"])
        self.bookkeeping.history.load_state_dict(state.get("history", {}))
        self._resumed_epoch_batches = int(state.get("epoch_batches", 0))
        self.skipped_updates = int(state.get("skipped_updates", 0))
        self.skipped_in_a_row = {"D": 0, "G": 0, **state.get("skipped_in_a_row", {})}
        self._pending_rng = state.get("rng")


def _split(logits: Tensor) -> tuple[Tensor, Tensor]:
    """An ACGAN D's output: the adversarial logit ``(n, 1)`` and the class logits ``(n, K)``."""
    return logits[:, :1], logits[:, 1:]


def _check_conditional_recipe(conditioning: str, schedule: str, loss: AdversarialLoss) -> None:
    if schedule != "alternating":
        raise ConfigError(f"model.conditioning={conditioning} needs model.schedule=alternating")
    if loss.penalty is not None:
        raise ConfigError(f"model.conditioning={conditioning}: loss={loss.name} calls D without labels in its penalty; "
                          "use a loss without one (rpgan, hinge, nonsaturating...)")


def _check_mode_seeking(value: float, schedule: str, fake_labels: str, conditioning: str | None) -> float:
    value = weight("model.mode_seeking", value)
    if value and schedule != "alternating":
        raise ConfigError("model.mode_seeking needs model.schedule=alternating (its G update has its own loss)")
    if value and conditioning is not None and fake_labels == "real":
        raise ConfigError("model.mode_seeking pairs generated images of the same label, which model.fake_labels=real "
                          "(the real batch's labels, unpaired) cannot give: use fake_labels=uniform or mode_seeking=0")
    return value


def _inputs_for_d(real: Tensor, fake: Tensor, penalise: bool) -> tuple[Tensor, Tensor]:
    """The D phase's inputs: ``fake`` cut from G's graph; both made leaves that require grad when
    this update carries R1/R2 (their gradients with respect to the images are penalised)."""
    if penalise:
        return real.detach().requires_grad_(True), fake.detach().requires_grad_(True)
    return real, fake.detach()


def _check_scores_each_image_alone(discriminator: nn.Module) -> None:
    batch_dependent = [type(m).__name__ for m in discriminator.modules() if isinstance(m, BATCH_STATISTICS)]
    batch_dependent += ["spectral norm" for m in discriminator.modules() if _has_spectral_norm(m)]
    if batch_dependent:
        raise ConfigError(
            f"model.joint_d_pass=true needs a discriminator that scores each image on its own, but this one "
            f"has {batch_dependent[0]} (batch statistics would mix real and generated images, or one power "
            "iteration would replace two): set it to false"
        )


def _has_spectral_norm(module: nn.Module) -> bool:
    """Spectral norm, old (``weight_orig``) or parametrized: it runs a power iteration per forward."""
    if hasattr(module, "weight_orig"):
        return True
    parametrizations = getattr(module, "parametrizations", None)
    return parametrizations is not None and any(
        "SpectralNorm" in type(p).__name__ for plist in parametrizations.values() for p in plist)
