"""The GAN LightningModule: G and D, their optimizers, and one GAN iteration's D and G updates.

Manual optimization: each batch is one *GAN iteration* (README, "Counting"), made of ``d_steps``
discriminator updates then ``g_steps`` generator updates, or with ``schedule="simultaneous"`` one
forward pass from which both networks step. Each phase's loss is the adversarial loss plus the
terms that join it (:mod:`gan.terms`). The counting, the scalars and the budget stop are
:class:`gan.runtime.bookkeeping.Bookkeeping`'s; one network's update is :class:`gan.runtime.updates.NetworkUpdates`'.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping

import pytorch_lightning as pl
import torch
from torch import Tensor, nn

from gan.runtime import rng
from gan.runtime.bookkeeping import Bookkeeping, iteration_scalars
from gan.runtime.config import ConfigError
from gan.ema import GeneratorEMA
from gan.data.images import output_range
from gan.losses import AdversarialLoss
from gan.nets.conditional import conditional_networks
from gan.nets.minibatch_std import MinibatchStd
from gan.noise import NoisePrior
from gan.settings import Conditioning, RunSettings, Speed, Updates
from gan.terms import AuxiliaryClassLoss, Phase, Term
from gan.runtime.updates import NetworkUpdates

log = logging.getLogger(__name__)

# layers whose output for one image depends on the rest of its batch in training mode
BATCH_STATISTICS = (nn.modules.batchnorm._BatchNorm, MinibatchStd)


class GAN(NetworkUpdates, pl.LightningModule):
    """A generator and a discriminator trained against each other.

    Args:
        generator: maps ``(n, noise.dim)`` noise to ``(n, 1, 28, 28)`` images; has an
            ``output_activation`` attribute (``tanh`` or ``sigmoid``). A partial taking
            ``noise_dim`` when ``conditional`` is set (built with room for the label embedding).
        discriminator: maps images to ``(n, 1)`` logits.
        noise: the prior the generator's input is drawn from.
        loss: the adversarial loss pair, with the terms it brings (``loss.terms``: R1/R2, WGAN-GP).
        optimizer_g, optimizer_d: partials taking the network's parameters.
        terms: the recipe's own terms by name (``model.terms``; null entries are left out), after
            the loss's.
        augment: a term that changes what D sees (``augment=diffaugment``), or None.
        ema: None, or a partial of :class:`gan.ema.GeneratorEMA` taking the generator: an averaged
            copy of G, updated after every G phase, that grids, evaluation and sampling draw from.
        updates: the update schedule, clipping and LR schedules (:class:`gan.settings.Updates`).
        speed: the speed switches (:class:`gan.settings.Speed`).
        conditional: None (unconditional) or a class-conditional GAN (:class:`gan.settings.Conditioning`):
            real labels come with the batches, fake labels are drawn by :meth:`sample_labels`.
        run: the run-level settings (:class:`gan.settings.RunSettings`).
    """

    def __init__(
        self,
        generator: nn.Module | Callable[..., nn.Module],
        discriminator: nn.Module,
        noise: NoisePrior,
        loss: AdversarialLoss,
        optimizer_g: Callable[..., torch.optim.Optimizer],
        optimizer_d: Callable[..., torch.optim.Optimizer],
        terms: Mapping[str, Term | None] | None = None,
        augment: Term | None = None,
        ema: Callable[[nn.Module], GeneratorEMA] | None = None,
        updates: Updates | None = None,
        speed: Speed | None = None,
        conditional: Conditioning | None = None,
        run: RunSettings | None = None,
    ) -> None:
        super().__init__()
        self.automatic_optimization = False
        self.updates, self.speed, self.run = updates or Updates(), speed or Speed(), run or RunSettings()
        self.conditional = conditional
        self.num_classes = None  # None: unconditional
        if conditional is not None:
            generator, discriminator = conditional_networks(
                generator, discriminator, noise.dim, conditional.kind, conditional.label_dim,
                label_std=conditional.label_std, class_norm=conditional.class_norm)
            self.num_classes = discriminator.num_classes
        if self.speed.joint_d_pass:
            _check_scores_each_image_alone(discriminator)
        if self.updates.schedule == "simultaneous" and self.speed.reuse_fake:
            raise ConfigError("model.speed.reuse_fake applies to the alternating schedule (simultaneous already shares one pass)")
        self.generator = generator
        self.generator_ema = ema(generator) if ema is not None else None
        self.discriminator = discriminator
        self.noise = noise
        self.loss = loss
        self.optimizer_g_factory, self.optimizer_d_factory = optimizer_g, optimizer_d
        self.value_range = output_range(getattr(generator, "output_activation", "tanh"))
        self.terms = self._collect_terms(terms, augment)
        self._augments = [t for t in self.terms if type(t).d_input is not Term.d_input]  # what _score applies
        self._pairs_halves = any(t.pairs_halves for t in self.terms)  # what sample_labels draws
        self.bookkeeping = Bookkeeping(self.run.max_iterations, self.run.log_every)
        self.skipped_updates = 0
        self.skipped_in_a_row = {"D": 0, "G": 0}  # consecutive skipped updates of each network
        self._schedulers: dict | None = None
        self._pending_rng: dict | None = None
        self._resumed_epoch_batches: int | None = None
        self.run_config: dict | None = None  # the composed config, stored in checkpoints
        seed = self.run.fixed_noise_seed or 0
        self.register_buffer("fixed_noise", noise.sample(self.run.n_fixed_noise, generator=torch.Generator().manual_seed(seed)))

    def _collect_terms(self, listed: Mapping[str, Term | None] | None, augment: Term | None) -> list[Term]:
        """The terms in the order their losses are added: an ACGAN D's class term, the loss's, the
        recipe's, then the augmentation; each named after its config key and checked against this GAN."""
        named = []
        if getattr(self.discriminator, "auxiliary_classes", 0) and not any(
                isinstance(t, AuxiliaryClassLoss) for t in (listed or {}).values()):
            named.append(("class_loss", AuxiliaryClassLoss()))
        named += [(k, t) for k, t in {**self.loss.terms, **(listed or {})}.items() if t is not None]
        if augment is not None:
            named.append(("augment", augment))
        for name, term in named:
            if not isinstance(term, Term):
                raise ConfigError(f"terms.{name}: {type(term).__name__} is not a gan.terms.Term; give the entry a "
                                  "_target_ of a Term subclass, or null to leave it out")
            term.name = name
            term.setup(self)
        terms = [t for _, t in named]
        if terms and self.updates.schedule == "simultaneous" and any(t.phases for t in terms):
            raise ConfigError(f"model.updates.schedule=simultaneous runs no terms, but {terms[0].name} is listed: "
                              "use model.updates.schedule=alternating")
        return terms

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
        real, labels = self._unpack(batch)
        if self.updates.schedule == "simultaneous":
            return self._end_iteration(self._simultaneous_step(real))
        opt_g, opt_d = self.optimizers()
        d_steps, g_steps = self.updates.d_steps, self.updates.g_steps
        logged: dict[str, Tensor] = {}  # the terms' scalars, the latest of each

        # ---- Train Discriminator: real images towards "real", G's samples towards "fake" ----
        for step in range(d_steps):
            fake, z, fake_labels = self._draw(len(real), labels, keep_graph=self.speed.reuse_fake)
            d = self._d_phase(self.iteration * d_steps + step, real, labels, fake, z, fake_labels)
            d_loss = self.loss.d_loss(d.real_logits, d.fake_logits)
            d_objective = self._add_terms(d_loss, d, logged)
            self._update(opt_d, d_objective, self.discriminator, self.updates.clip_d, "D")

        # ---- Train Generator: make D call G's samples real; D's parameters stay frozen ----
        with self.toggled_optimizer(opt_g):
            for step in range(g_steps):
                if not (self.speed.reuse_fake and step == 0):
                    fake, z, fake_labels = self._draw(len(real), labels, keep_graph=True)
                g = self._g_phase(self.iteration * g_steps + step, real, labels, fake, z, fake_labels)
                g_loss = self.loss.g_loss(g.fake_logits, self._real_scores(real, labels))
                g_objective = self._add_terms(g_loss, g, logged)
                self._update(opt_g, g_objective, self.generator, self.updates.clip_g, "G")
        self._update_ema(len(real))

        scalars = iteration_scalars(d_loss, g_loss, d.real_logits, d.fake_logits, self.loss.g_needs_real)
        self._end_iteration(scalars, logged)

    def _add_terms(self, loss: Tensor, phase: Phase, logged: dict[str, Tensor]) -> Tensor:
        """``loss`` plus every term that joins this update; their scalars go into ``logged``."""
        for term in self.terms:
            if term.applies(phase.name, phase.update):
                value, scalars = term.loss(phase)
                loss = loss + value
                logged.update(scalars)
        return loss

    def _d_phase(self, update: int, real: Tensor, labels, fake: Tensor, z: Tensor, fake_labels) -> Phase:
        """D's scores of the real and the generated batch, ``fake`` cut from G's graph; both made
        leaves that require grad when a term that joins this update penalises D's input gradients."""
        fake = fake.detach()
        if any(t.needs_input_grad and t.applies("D", update) for t in self.terms):
            real, fake = real.detach().requires_grad_(True), fake.requires_grad_(True)
        real_output, fake_output = self._discriminate(real, fake, labels, fake_labels)
        return Phase("D", update, real, fake, z, labels, fake_labels, real_output, fake_output, self._score)

    def _g_phase(self, update: int, real: Tensor, labels, fake: Tensor, z: Tensor, fake_labels) -> Phase:
        return Phase("G", update, real, fake, z, labels, fake_labels, None, self._score(fake, fake_labels), self._score)

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
            self._step(opt_d, self.discriminator, self.updates.clip_d, "D")
            self._step(opt_g, self.generator, self.updates.clip_g, "G")
        self._update_ema(real.shape[0])
        return iteration_scalars(d_loss, g_loss, real_logits, fake_logits, self.loss.g_needs_real)

    def _unpack(self, batch) -> tuple[Tensor, Tensor | None]:
        """The real images (channels-last if asked) and, for a conditional GAN, their classes."""
        real = batch[0] if isinstance(batch, (tuple, list)) else batch
        labels = batch[1] if self.num_classes is not None else None
        if self.speed.channels_last:
            real = real.contiguous(memory_format=torch.channels_last)
        return real, labels

    def _draw(self, n: int, real_labels: Tensor | None, keep_graph: bool) -> tuple[Tensor, Tensor, Tensor | None]:
        """``n`` generated images, their noise and their labels (None when unconditional); without
        ``keep_graph`` G runs under no_grad (a D phase whose fakes no G phase reuses)."""
        labels = self.sample_labels(n, real_labels)
        z = self.sample_noise(n)
        with torch.set_grad_enabled(keep_graph and torch.is_grad_enabled()):
            return self._generate(z, labels), z, labels

    def _discriminate(
        self, real: Tensor, fake: Tensor, real_labels: Tensor | None = None, fake_labels: Tensor | None = None
    ) -> tuple[Tensor, Tensor]:
        """D's outputs for the real and the generated batch: one pass over both with ``joint_d_pass``
        (the same numbers up to rounding, fewer and larger ops), else a pass each."""
        if self.speed.joint_d_pass:
            labels = None if real_labels is None else torch.cat([real_labels, fake_labels])
            real_out, fake_out = self._score(torch.cat([real, fake]), labels).split([len(real), len(fake)])
            return real_out, fake_out
        return self._score(real, real_labels), self._score(fake, fake_labels)

    def _real_scores(self, real: Tensor, labels: Tensor | None) -> Tensor | None:
        """D's logits for the real batch, as constants of a relativistic G loss (None for the others)."""
        if not self.loss.g_needs_real:
            return None
        with torch.no_grad():
            return self._score(real, labels)[:, :1]

    # ------------------------------------------------------------------ labels (conditional GANs)
    def sample_labels(self, n: int, real_labels: Tensor | None = None) -> Tensor | None:
        """Labels for ``n`` generated images: uniform over the classes, or the real batch's under
        ``fake_labels=real``; None when unconditional (which then draws nothing, so its random
        stream is what it always was)."""
        if self.num_classes is None:
            return None
        if self.conditional.fake_labels == "real" and real_labels is not None:
            return real_labels
        if self._pairs_halves:  # the pairs (first half, second half) share their labels
            half, odd_one = (torch.randint(0, self.num_classes, (k,), device=self.device) for k in (n // 2, n % 2))
            return torch.cat([half, half, odd_one])
        return torch.randint(0, self.num_classes, (n,), device=self.device)

    def _generate(self, z: Tensor, labels: Tensor | None) -> Tensor:
        return self.generator(z) if labels is None else self.generator(z, labels)

    def _score(self, x: Tensor, labels: Tensor | None) -> Tensor:
        """D's output for ``x`` as every term's ``d_input`` shows it (augmentations)."""
        for term in self._augments:
            x = term.d_input(x)
        return self.discriminator(x) if labels is None else self.discriminator(x, labels)

    def _update_ema(self, batch_size: int) -> None:
        if self.generator_ema is not None:
            images = batch_size * self.trainer.world_size  # every process's batch
            self.generator_ema.update(self.generator, images, (self.iteration + 1) * images)

    def _end_iteration(self, stats: Tensor, measured: dict[str, Tensor] | None = None) -> None:
        extra = {"skipped_updates": float(self.skipped_updates)} if self.run.on_nonfinite == "skip" else None
        self.bookkeeping.end_iteration(self.trainer, stats, extra, measured)

    # ------------------------------------------------------------------ optimizers
    def configure_optimizers(self):
        opt_g = self.optimizer_g_factory(self.generator.parameters())
        opt_d = self.optimizer_d_factory(self.discriminator.parameters())
        factories = ((self.updates.scheduler_g, opt_g), (self.updates.scheduler_d, opt_d))
        schedulers = [f(o) for f, o in factories if f is not None]
        return ([opt_g, opt_d], schedulers) if schedulers else [opt_g, opt_d]

    def configure_model(self) -> None:
        if self.speed.channels_last:
            for net in (self.generator, self.discriminator, self.generator_ema):
                if net is not None:
                    net.to(memory_format=torch.channels_last)
        if self.speed.compile and not getattr(self, "_compiled", False):
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


def _check_scores_each_image_alone(discriminator: nn.Module) -> None:
    batch_dependent = [type(m).__name__ for m in discriminator.modules() if isinstance(m, BATCH_STATISTICS)]
    batch_dependent += ["spectral norm" for m in discriminator.modules() if _has_spectral_norm(m)]
    if batch_dependent:
        raise ConfigError(
            f"model.speed.joint_d_pass=true needs a discriminator that scores each image on its own, but this one "
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
