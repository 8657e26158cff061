"""The GAN LightningModule: G and D, their optimizers, the update schedule, and the scalars.

Manual optimization (``automatic_optimization = False``): each batch is one *GAN iteration*,
made of ``d_steps`` discriminator updates then ``g_steps`` generator updates (or, with
``schedule="simultaneous"``, one forward pass from which both networks step). ``self.iteration``
counts GAN iterations; it is the x axis of every curve and grid and what ``iterations``,
``checkpoint_every`` and ``sample_every`` mean. Lightning's ``global_step`` counts optimizer steps
instead (two or more per iteration) and is not used for anything here.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

import pytorch_lightning as pl
import torch
from torch import Tensor, nn

from gan import rng
from gan.images import output_range
from gan.losses import AdversarialLoss
from gan.noise import NoisePrior

log = logging.getLogger(__name__)

# layers whose output for one image depends on the rest of its batch in training mode
# (BatchNorm and SyncBatchNorm; instance, group and layer norms are per image)
BATCH_STATISTICS = (nn.modules.batchnorm._BatchNorm,)
SCALARS = ("d_loss", "g_loss", "d_real", "d_fake", "d_acc_real", "d_acc_fake")
SCHEDULES = ("alternating", "simultaneous")
NONFINITE_POLICIES = ("stop", "skip")
CLIP_ALGORITHMS = ("value", "norm")


class GAN(pl.LightningModule):
    """A generator and a discriminator trained against each other.

    Args:
        generator: maps ``(n, noise.dim)`` noise to ``(n, 1, 28, 28)`` images; must have an
            ``output_activation`` attribute (``tanh`` or ``sigmoid``).
        discriminator: maps images to ``(n, 1)`` logits.
        noise: the prior the generator's input is drawn from.
        optimizer_g, optimizer_d: partials taking the network's parameters.
        loss: the adversarial loss pair.
        d_steps, g_steps: updates of D and of G per batch (alternating schedule).
        schedule: ``alternating`` (D then G, each on its own forward pass) or ``simultaneous``
            (both step from the gradients of one forward pass).
        clip_d, clip_g: ``{"val": float, "algorithm": "value" | "norm"}`` or None.
        scheduler_g, scheduler_d: partials taking the optimizer (e.g.
            :class:`gan.schedules.InverseTimeDecay`), stepped after every update of that network.
        reuse_fake: the G phase reuses the batch generated for the D phase instead of a second G
            forward pass (faster; changes the algorithm's noise use, so off by default).
        channels_last: keep conv weights and images in channels-last memory format.
        compile: ``torch.compile`` G's and D's forward passes (state-dict keys stay the same).
        on_nonfinite: ``stop`` (raise, naming the iteration and phase) or ``skip`` (drop that
            update and count it in ``train/skipped_updates``) when a loss or gradient is not finite.
        max_iterations: the budget in GAN iterations (None: stop by ``trainer.max_epochs``).
        log_every: write the scalars averaged over this many iterations.
        n_fixed_noise: size of the fixed noise batch drawn for the sample grids.
        fixed_noise_seed: seeds the fixed noise, so the same seed gives the same grid inputs.
    """

    def __init__(
        self,
        generator: nn.Module,
        discriminator: nn.Module,
        noise: NoisePrior,
        optimizer_g: Callable[..., torch.optim.Optimizer],
        optimizer_d: Callable[..., torch.optim.Optimizer],
        loss: AdversarialLoss,
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
        max_iterations: int | None = None,
        log_every: int = 10,
        n_fixed_noise: int = 64,
        fixed_noise_seed: int = 0,
    ) -> None:
        super().__init__()
        self.automatic_optimization = False
        if schedule not in SCHEDULES:
            raise ValueError(f"model.schedule={schedule!r} is unknown: use one of {SCHEDULES}")
        if d_steps < 1 or g_steps < 1:
            raise ValueError(f"model.d_steps and model.g_steps must be >= 1, got {d_steps} and {g_steps}")
        if schedule == "simultaneous" and (d_steps, g_steps) != (1, 1):
            raise ValueError("schedule=simultaneous takes one step of each network: set d_steps=1 and g_steps=1")
        if on_nonfinite not in NONFINITE_POLICIES:
            raise ValueError(f"on_nonfinite={on_nonfinite!r} is unknown: use one of {NONFINITE_POLICIES}")
        for key, wanted in getattr(loss, "requires", {}).items():
            have = {"schedule": schedule}.get(key)
            if have != wanted:
                raise ValueError(f"loss={loss.name} needs model.{key}={wanted}, but the model has {key}={have}")
        if schedule == "simultaneous" and reuse_fake:
            raise ValueError("reuse_fake applies to the alternating schedule (simultaneous already shares one pass)")
        if joint_d_pass:
            batch_dependent = [type(m).__name__ for m in discriminator.modules() if isinstance(m, BATCH_STATISTICS)]
            batch_dependent += ["spectral norm" for m in discriminator.modules() if _has_spectral_norm(m)]
            if batch_dependent:
                raise ValueError(
                    f"model.joint_d_pass=true needs a discriminator that scores each image on its own, but this one "
                    f"has {batch_dependent[0]} (batch statistics would mix real and generated images, or one power "
                    "iteration would replace two): set it to false"
                )
        self.joint_d_pass = bool(joint_d_pass)
        self.generator = generator
        self.discriminator = discriminator
        self.noise = noise
        self.loss = loss
        self.optimizer_g_factory = optimizer_g
        self.optimizer_d_factory = optimizer_d
        self.d_steps, self.g_steps, self.schedule = int(d_steps), int(g_steps), schedule
        self.clip_d, self.clip_g = _check_clip(clip_d, "clip_d"), _check_clip(clip_g, "clip_g")
        self.scheduler_g_factory, self.scheduler_d_factory = scheduler_g, scheduler_d
        self.reuse_fake, self.channels_last, self.compile_nets = bool(reuse_fake), bool(channels_last), bool(compile)
        self.on_nonfinite = on_nonfinite
        self.skipped_updates = 0
        self._schedulers: dict | None = None
        self.max_iterations = max_iterations
        self.log_every = int(log_every)
        self.value_range = output_range(getattr(generator, "output_activation", "tanh"))
        fixed = noise.sample(n_fixed_noise, generator=torch.Generator().manual_seed(fixed_noise_seed))
        self.register_buffer("fixed_noise", fixed)

        self.iteration = 0  # completed GAN iterations
        self.epoch_batches = 0  # batches consumed in the current epoch (for mid-epoch resume)
        self.latest_scalars: dict[str, float] = {}
        self.run_config: dict | None = None  # the composed config, stored in checkpoints
        self._scalar_sum: Tensor | None = None
        self._scalar_count = 0
        self._pending_rng: dict | None = None
        self._resumed_epoch_batches: int | None = None

    # ------------------------------------------------------------------ optimizers
    def configure_optimizers(self):
        opt_g = self.optimizer_g_factory(self.generator.parameters())
        opt_d = self.optimizer_d_factory(self.discriminator.parameters())
        schedulers = [f(o) for f, o in ((self.scheduler_g_factory, opt_g), (self.scheduler_d_factory, opt_d)) if f is not None]
        return ([opt_g, opt_d], schedulers) if schedulers else [opt_g, opt_d]

    def configure_model(self) -> None:
        if self.channels_last:
            self.generator.to(memory_format=torch.channels_last)
            self.discriminator.to(memory_format=torch.channels_last)
        if self.compile_nets and not getattr(self, "_compiled", False):
            self.generator.compile()
            self.discriminator.compile()
            self._compiled = True

    def _update(self, optimizer, loss: Tensor, network: nn.Module, clip: Mapping[str, Any] | None, phase: str) -> None:
        """One update of ``network``: backward, clip, step (and its LR schedule), unless non-finite."""
        optimizer.zero_grad(set_to_none=True)
        if not self._finite(loss, phase, "loss"):
            return
        self.manual_backward(loss)
        self._step(optimizer, network, clip, phase)

    def _step(self, optimizer, network: nn.Module, clip: Mapping[str, Any] | None, phase: str) -> None:
        if clip is not None:
            self.clip_gradients(optimizer, gradient_clip_val=clip["val"], gradient_clip_algorithm=clip["algorithm"])
        if self.on_nonfinite == "skip" and not self._finite(_grad_norm(network), phase, "gradient"):
            optimizer.zero_grad(set_to_none=True)
            return
        optimizer.step()
        scheduler = self._scheduler_of(phase)
        if scheduler is not None:
            scheduler.step()
        if phase == "D" and self.loss.weight_clip is not None:
            with torch.no_grad():
                for p in network.parameters():
                    p.clamp_(-self.loss.weight_clip, self.loss.weight_clip)

    def _scheduler_of(self, phase: str):
        """The LR scheduler of the network updated in ``phase`` ('G' or 'D'), or None."""
        if self._schedulers is None:
            found = self.lr_schedulers() if (self.scheduler_g_factory or self.scheduler_d_factory) else None
            found = [] if found is None else (found if isinstance(found, list) else [found])
            owners = [n for n, f in (("G", self.scheduler_g_factory), ("D", self.scheduler_d_factory)) if f is not None]
            self._schedulers = dict(zip(owners, found))
        return self._schedulers.get(phase)

    def _finite(self, value: Tensor, phase: str, what: str) -> bool:
        """True if ``value`` is finite; else stop training (default) or count a skipped update."""
        if bool(torch.isfinite(value).all()):
            return True
        if self.on_nonfinite == "skip":
            self.skipped_updates += 1
            log.warning("non-finite %s %s at GAN iteration %d: update skipped (%d so far)",
                        phase, what, self.iteration + 1, self.skipped_updates)
            return False
        raise NonFiniteError(
            f"non-finite {phase} {what} at GAN iteration {self.iteration + 1} ({phase} phase): training "
            "stopped and the last good checkpoint kept. Try a lower learning rate, gradient clipping "
            f"(model.clip_{phase.lower()}={{val: 1.0, algorithm: norm}}), or on_nonfinite=skip"
        )

    # ------------------------------------------------------------------ the algorithm
    def forward(self, z: Tensor) -> Tensor:
        return self.generator(z)

    def sample_noise(self, n: int) -> Tensor:
        return self.noise.sample(n, device=self.device)

    def training_step(self, batch, batch_idx: int) -> None:
        real = batch[0] if isinstance(batch, (tuple, list)) else batch
        if self.channels_last:
            real = real.contiguous(memory_format=torch.channels_last)
        if self.schedule == "simultaneous":
            stats = self._simultaneous_step(real)
        else:
            stats = self._alternating_step(real)
        self._accumulate(stats)
        self.iteration += 1
        self.epoch_batches += 1
        if self.iteration % self.log_every == 0:
            self._write_scalars()
        if self.max_iterations is not None and self.iteration >= self.max_iterations:
            self.trainer.should_stop = True

    def _discriminate(self, real: Tensor, fake: Tensor) -> tuple[Tensor, Tensor]:
        """D's logits for the real and the generated batch: one pass over both with ``joint_d_pass``
        (the same numbers up to rounding, fewer and larger ops), else a pass each."""
        if self.joint_d_pass:
            real_logits, fake_logits = self.discriminator(torch.cat([real, fake])).split([len(real), len(fake)])
            return real_logits, fake_logits
        return self.discriminator(real), self.discriminator(fake)

    def _alternating_step(self, real: Tensor) -> Tensor:
        opt_g, opt_d = self.optimizers()
        n = real.shape[0]

        # ---- Train Discriminator: real images towards "real", G's samples towards "fake" ----
        for _ in range(self.d_steps):
            if self.reuse_fake:
                fake = self.generator(self.sample_noise(n))  # keeps its graph for the G phase
            else:
                with torch.no_grad():
                    fake = self.generator(self.sample_noise(n))
            real_logits, fake_logits = self._discriminate(real, fake.detach())
            d_loss = self.loss.d_loss(real_logits, fake_logits)
            if self.loss.penalty is not None:
                d_loss = d_loss + self.loss.penalty(self.discriminator, real, fake)
            self._update(opt_d, d_loss, self.discriminator, self.clip_d, "D")

        # ---- Train Generator: make D call G's samples real; D's parameters stay frozen ----
        with self.toggled_optimizer(opt_g):
            for step in range(self.g_steps):
                if not (self.reuse_fake and step == 0):
                    fake = self.generator(self.sample_noise(n))
                g_loss = self.loss.g_loss(self.discriminator(fake))
                self._update(opt_g, g_loss, self.generator, self.clip_g, "G")

        return _scalars(d_loss, g_loss, real_logits, fake_logits)

    def _simultaneous_step(self, real: Tensor) -> Tensor:
        opt_g, opt_d = self.optimizers()
        # ---- One forward pass; D and G each step on their own loss's gradients ----
        fake = self.generator(self.sample_noise(real.shape[0]))
        real_logits, fake_logits = self._discriminate(real, fake)
        d_loss = self.loss.d_loss(real_logits, fake_logits)
        g_loss = self.loss.g_loss(fake_logits)
        opt_d.zero_grad(set_to_none=True)
        opt_g.zero_grad(set_to_none=True)
        if self._finite(torch.stack([d_loss, g_loss]), "D+G", "loss"):
            self.manual_backward(d_loss, inputs=list(self.discriminator.parameters()), retain_graph=True)
            self.manual_backward(g_loss, inputs=list(self.generator.parameters()))
            self._step(opt_d, self.discriminator, self.clip_d, "D")
            self._step(opt_g, self.generator, self.clip_g, "G")
        return _scalars(d_loss, g_loss, real_logits, fake_logits)

    # ------------------------------------------------------------------ scalars
    def _accumulate(self, stats: Tensor) -> None:
        self._scalar_sum = stats if self._scalar_sum is None else self._scalar_sum + stats
        self._scalar_count += 1

    def _write_scalars(self) -> None:
        """Average the accumulated scalars (one host sync) and hand them to the loggers."""
        if self._scalar_sum is None:
            return
        means = (self._scalar_sum / self._scalar_count).tolist()
        self._scalar_sum, self._scalar_count = None, 0
        self.latest_scalars = dict(zip(SCALARS, means))
        # callback_metrics travel back from spawned DDP workers; train() returns them
        self.trainer.callback_metrics.update(
            {f"train/{k}": torch.tensor(v) for k, v in self.latest_scalars.items()}
            | {"train/iteration": torch.tensor(float(self.iteration))}
            | ({"train/skipped_updates": torch.tensor(float(self.skipped_updates))} if self.on_nonfinite == "skip" else {})
        )
        if self.trainer.is_global_zero:
            metrics = {f"train/{k}": v for k, v in self.latest_scalars.items()}
            if self.on_nonfinite == "skip":
                metrics["train/skipped_updates"] = float(self.skipped_updates)
            for logger in self.trainer.loggers:
                logger.log_metrics(metrics, step=self.iteration)

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
                self.epoch_batches = done
            self._resumed_epoch_batches = None
        if self.max_iterations is not None and self.iteration >= self.max_iterations:
            log.info("the budget of %d iterations is already reached", self.max_iterations)
            self.trainer.should_stop = True

    def on_train_epoch_start(self) -> None:
        self.epoch_batches = 0

    def on_train_end(self) -> None:
        self._write_scalars()

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["gan"] = {
            "iteration": self.iteration,
            "epoch_batches": self.epoch_batches,
            "skipped_updates": self.skipped_updates,
            "rng": rng.capture(),
            "config": self.run_config,
        }

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        state = checkpoint.get("gan")
        if state is None:
            raise ValueError("this checkpoint was not written by gan.train (it has no 'gan' section)")
        self.iteration = int(state["iteration"])
        self._resumed_epoch_batches = int(state.get("epoch_batches", 0))
        self.skipped_updates = int(state.get("skipped_updates", 0))
        self._pending_rng = state.get("rng")


class NonFiniteError(RuntimeError):
    """A loss or gradient became NaN or infinite."""


def _has_spectral_norm(module: nn.Module) -> bool:
    """Spectral norm, old (``weight_orig``) or parametrized: it runs a power iteration per forward."""
    if hasattr(module, "weight_orig"):
        return True
    parametrizations = getattr(module, "parametrizations", None)
    return parametrizations is not None and any(
        "SpectralNorm" in type(p).__name__ for plist in parametrizations.values() for p in plist)


def _grad_norm(network: nn.Module) -> Tensor:
    grads = [p.grad for p in network.parameters() if p.grad is not None]
    if not grads:
        return torch.zeros(())
    return torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads)))


def _scalars(d_loss: Tensor, g_loss: Tensor, real_logits: Tensor, fake_logits: Tensor) -> Tensor:
    """The per-iteration scalars, in the order of ``SCALARS``, as one detached tensor."""
    with torch.no_grad():
        return torch.stack(
            [
                d_loss.float(),
                g_loss.float(),
                torch.sigmoid(real_logits.float()).mean(),
                torch.sigmoid(fake_logits.float()).mean(),
                (real_logits > 0).float().mean(),
                (fake_logits < 0).float().mean(),
            ]
        )


def _check_clip(clip: Mapping[str, Any] | None, name: str) -> dict | None:
    if clip is None:
        return None
    clip = dict(clip)
    if set(clip) != {"val", "algorithm"} or clip["algorithm"] not in CLIP_ALGORITHMS or not clip["val"] > 0:
        raise ValueError(
            f"model.{name}={clip} is not a clipping setting: use null or "
            f"{{val: <positive number>, algorithm: {' | '.join(CLIP_ALGORITHMS)}}}"
        )
    return clip
