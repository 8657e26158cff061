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

SCALARS = ("d_loss", "g_loss", "d_real", "d_fake", "d_acc_real", "d_acc_fake")
SCHEDULES = ("alternating", "simultaneous")
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
        self.generator = generator
        self.discriminator = discriminator
        self.noise = noise
        self.loss = loss
        self.optimizer_g_factory = optimizer_g
        self.optimizer_d_factory = optimizer_d
        self.d_steps, self.g_steps, self.schedule = int(d_steps), int(g_steps), schedule
        self.clip_d, self.clip_g = _check_clip(clip_d, "clip_d"), _check_clip(clip_g, "clip_g")
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
        return [opt_g, opt_d]

    def _clip(self, optimizer, clip: Mapping[str, Any] | None) -> None:
        if clip is not None:
            self.clip_gradients(optimizer, gradient_clip_val=clip["val"], gradient_clip_algorithm=clip["algorithm"])

    # ------------------------------------------------------------------ the algorithm
    def forward(self, z: Tensor) -> Tensor:
        return self.generator(z)

    def sample_noise(self, n: int) -> Tensor:
        return self.noise.sample(n, device=self.device)

    def training_step(self, batch, batch_idx: int) -> None:
        real = batch[0] if isinstance(batch, (tuple, list)) else batch
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

    def _alternating_step(self, real: Tensor) -> Tensor:
        opt_g, opt_d = self.optimizers()
        n = real.shape[0]

        # ---- Train Discriminator: real images towards "real", G's samples towards "fake" ----
        for _ in range(self.d_steps):
            with torch.no_grad():
                fake = self.generator(self.sample_noise(n))
            real_logits = self.discriminator(real)
            fake_logits = self.discriminator(fake)
            d_loss = self.loss.d_loss(real_logits, fake_logits)
            opt_d.zero_grad(set_to_none=True)
            self.manual_backward(d_loss)
            self._clip(opt_d, self.clip_d)
            opt_d.step()

        # ---- Train Generator: make D call fresh samples real; D's parameters stay frozen ----
        with self.toggled_optimizer(opt_g):
            for _ in range(self.g_steps):
                g_loss = self.loss.g_loss(self.discriminator(self.generator(self.sample_noise(n))))
                opt_g.zero_grad(set_to_none=True)
                self.manual_backward(g_loss)
                self._clip(opt_g, self.clip_g)
                opt_g.step()

        return _scalars(d_loss, g_loss, real_logits, fake_logits)

    def _simultaneous_step(self, real: Tensor) -> Tensor:
        opt_g, opt_d = self.optimizers()
        # ---- One forward pass; D and G each step on their own loss's gradients ----
        fake = self.generator(self.sample_noise(real.shape[0]))
        real_logits = self.discriminator(real)
        fake_logits = self.discriminator(fake)
        d_loss = self.loss.d_loss(real_logits, fake_logits)
        g_loss = self.loss.g_loss(fake_logits)
        opt_d.zero_grad(set_to_none=True)
        opt_g.zero_grad(set_to_none=True)
        self.manual_backward(d_loss, inputs=list(self.discriminator.parameters()), retain_graph=True)
        self.manual_backward(g_loss, inputs=list(self.generator.parameters()))
        self._clip(opt_d, self.clip_d)
        self._clip(opt_g, self.clip_g)
        opt_d.step()
        opt_g.step()
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
        )
        if self.trainer.is_global_zero:
            metrics = {f"train/{k}": v for k, v in self.latest_scalars.items()}
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
            "rng": rng.capture(),
            "config": self.run_config,
        }

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        state = checkpoint.get("gan")
        if state is None:
            raise ValueError("this checkpoint was not written by gan.train (it has no 'gan' section)")
        self.iteration = int(state["iteration"])
        self._resumed_epoch_batches = int(state.get("epoch_batches", 0))
        self._pending_rng = state.get("rng")


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
