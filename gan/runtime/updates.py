"""One update of one network under manual optimization: backward, clipping, the non-finite policy,
the optimizer step, its LR schedule and WGAN weight clipping. A mixin of :class:`gan.module.GAN`."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor, nn

from gan.runtime.errors import NonFiniteError

log = logging.getLogger(__name__)

class NetworkUpdates:
    """Needs of the host module: ``run`` (:class:`gan.settings.RunSettings`: the non-finite policy),
    ``updates`` (:class:`gan.settings.Updates`: the LR schedules), ``skipped_updates``,
    ``skipped_in_a_row`` (per phase), ``loss``, ``iteration`` and Lightning's ``manual_backward``,
    ``clip_gradients``, ``lr_schedulers``."""

    def _update(self, optimizer, loss: Tensor, network: nn.Module, clip: Mapping[str, Any] | None, phase: str) -> None:
        """One update of ``network``: backward, clip, step (and its LR schedule), unless non-finite."""
        optimizer.zero_grad(set_to_none=True)
        if not self._finite(loss, phase, "loss"):
            return
        self.manual_backward(loss)
        self._step(optimizer, network, clip, phase)

    def _step(self, optimizer, network: nn.Module, clip: Mapping[str, Any] | None, phase: str) -> None:
        if clip is not None:
            self._clip(optimizer, network, clip)
        if self.run.on_nonfinite == "skip" and not self._finite(_grad_norm(network), phase, "gradient"):
            optimizer.zero_grad(set_to_none=True)
            return
        optimizer.step()
        self.skipped_in_a_row[phase] = 0
        scheduler = self._scheduler_of(phase)
        if scheduler is not None:
            scheduler.step()
        if phase == "D" and self.loss.weight_clip is not None:
            with torch.no_grad():
                for p in network.parameters():
                    p.clamp_(-self.loss.weight_clip, self.loss.weight_clip)

    def _clip(self, optimizer, network: nn.Module, clip: Mapping[str, Any]) -> None:
        """Lightning's clipping, except under bf16, where no loss scaler is involved and Lightning
        refuses to clip for a fused optimizer (the default Adam): clip the gradients directly."""
        if "bf16" in str(self.trainer.precision):
            params = [p for p in network.parameters() if p.grad is not None]
            if clip["algorithm"] == "norm":
                torch.nn.utils.clip_grad_norm_(params, clip["val"])
            else:
                torch.nn.utils.clip_grad_value_(params, clip["val"])
            return
        self.clip_gradients(optimizer, gradient_clip_val=clip["val"], gradient_clip_algorithm=clip["algorithm"])

    def _scheduler_of(self, phase: str):
        """The LR scheduler of the network updated in ``phase`` ('G' or 'D'), or None."""
        if self._schedulers is None:
            factories = (("G", self.updates.scheduler_g), ("D", self.updates.scheduler_d))
            found = self.lr_schedulers() if any(f for _, f in factories) else None
            found = [] if found is None else (found if isinstance(found, list) else [found])
            owners = [n for n, f in factories if f is not None]
            self._schedulers = dict(zip(owners, found))
        return self._schedulers.get(phase)

    def _finite(self, value: Tensor, phase: str, what: str) -> bool:
        """True if ``value`` is finite; else stop training (default) or count a skipped update."""
        if bool(torch.isfinite(value).all()):
            return True
        if self.run.on_nonfinite == "skip" and self.skipped_in_a_row[phase] + 1 < self.run.max_skipped_in_a_row:
            self.skipped_updates += 1
            self.skipped_in_a_row[phase] += 1
            log.warning("non-finite %s %s at GAN iteration %d: update skipped (%d so far)",
                        phase, what, self.iteration + 1, self.skipped_updates)
            return False
        given_up = (f", {self.run.max_skipped_in_a_row} {phase} updates in a row not finite (on_nonfinite=skip gives up "
                    "at model.run.max_skipped_in_a_row)" if self.run.on_nonfinite == "skip" else "")
        raise NonFiniteError(
            f"non-finite {phase} {what} at GAN iteration {self.iteration + 1} ({phase} phase){given_up}: training "
            "stopped and the last good checkpoint kept. Try a lower learning rate, gradient clipping "
            f"(model.updates.clip_{phase.lower()}={{val: 1.0, algorithm: norm}}), or on_nonfinite=skip"
        )


def _grad_norm(network: nn.Module) -> Tensor:
    grads = [p.grad for p in network.parameters() if p.grad is not None]
    if not grads:
        return torch.zeros(())
    return torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads)))
