"""The bookkeeping beside the training step: the GAN-iteration count, the scalars averaged over
``log_every`` iterations, the budget stop, and the history of logged figures that the callbacks read.

One *GAN iteration* is one batch, whatever the update schedule does with it (README, "Counting").
"""

from __future__ import annotations

from typing import Any

import pytorch_lightning as pl
import torch
from torch import Tensor

SCALARS = ("d_loss", "g_loss", "d_real", "d_fake", "d_acc_real", "d_acc_fake")


def iteration_scalars(d_loss: Tensor, g_loss: Tensor, real_logits: Tensor, fake_logits: Tensor,
                      relativistic: bool = False) -> Tensor:
    """The per-iteration scalars, in the order of ``SCALARS``, as one detached tensor (no host sync).

    A relativistic loss ignores any constant shift of D's logits, so there D's view of an image is
    its logit relative to the mean logit of the other kind (D(x) - mean D(G(z)), and the reverse):
    ``d_real`` is then the mean probability that a real image is more real than the average
    generated one, and D's accuracies say how often it ranks them so."""
    if relativistic:
        real_logits, fake_logits = real_logits - fake_logits.mean(), fake_logits - real_logits.mean()
    with torch.no_grad():
        return torch.stack([
            d_loss.float(),
            g_loss.float(),
            torch.sigmoid(real_logits.float()).mean(),
            torch.sigmoid(fake_logits.float()).mean(),
            (real_logits > 0).float().mean(),
            (fake_logits < 0).float().mean(),
        ])


class History:
    """What a run has logged, point by point: the averaged training scalars and each evaluation
    (with the number of samples it drew, ``eval_samples``, and the real-data floor of that count).
    The callbacks that draw, diagnose or report (curves, diagnostics, metrics.json) read it from
    ``pl_module.history``."""

    def __init__(self) -> None:
        self.train: list[tuple[int, dict[str, float]]] = []
        self.evaluations: list[tuple[int, dict[str, float]]] = []
        self.floor: dict[str, float] | None = None  # the latest evaluation's floor
        self.floors: dict[int, dict[str, float]] = {}  # sample count -> its floor

    def add_train(self, iteration: int, scalars: dict[str, float]) -> None:
        self.train.append((int(iteration), dict(scalars)))

    def add_evaluation(self, iteration: int, metrics: dict[str, float], floor: dict[str, float],
                       samples: int | None = None) -> None:
        self.evaluations.append((int(iteration), dict(metrics) | ({"eval_samples": int(samples)} if samples else {})))
        self.floor = dict(floor)
        if samples:
            self.floors[int(samples)] = dict(floor)

    def series(self, key: str) -> list[tuple[int, float]]:
        """``(iteration, value)`` of a training scalar (``d_loss``...) or an evaluation metric (``fid``...)."""
        points = self.train if key in SCALARS or any(key in values for _, values in self.train) else self.evaluations
        return [(it, values[key]) for it, values in points if key in values]

    def series_by_samples(self, key: str) -> dict[int | None, list[tuple[int, float]]]:
        """An evaluation metric's ``(iteration, value)`` points apart for each sample count (None:
        evaluations recorded without their count). FID and KID depend on the count, so points of
        different counts are not one curve."""
        split: dict[int | None, list[tuple[int, float]]] = {}
        for it, values in self.evaluations:
            if key in values:
                n = values.get("eval_samples")
                split.setdefault(int(n) if n is not None else None, []).append((it, values[key]))
        return split

    def state_dict(self) -> dict[str, Any]:
        return {"train": self.train, "evaluations": self.evaluations, "floor": self.floor, "floors": self.floors}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.train = [(int(it), dict(v)) for it, v in state.get("train", [])]
        self.evaluations = [(int(it), dict(v)) for it, v in state.get("evaluations", [])]
        self.floor = state.get("floor")
        self.floors = {int(n): dict(f) for n, f in (state.get("floors") or {}).items()}


class Bookkeeping:
    """Counts GAN iterations and the batches of the current epoch, averages the scalars of each
    iteration and hands the means to the loggers every ``log_every`` iterations, and stops training
    at ``max_iterations`` (None: ``trainer.max_epochs`` decides)."""

    def __init__(self, max_iterations: int | None, log_every: int) -> None:
        self.max_iterations = max_iterations
        self.log_every = int(log_every)
        self.iteration = 0  # completed GAN iterations
        self.epoch_batches = 0  # batches consumed in the current epoch (for mid-epoch resume)
        self.latest: dict[str, float] = {}
        self.history = History()
        self._sum: Tensor | None = None  # the SCALARS summed over the iterations since the last write
        self._count = 0
        self._measured: dict[str, list] = {}  # a term's scalar: [sum, how many iterations logged it]

    def end_iteration(self, trainer: pl.Trainer, stats: Tensor, extra: dict[str, float] | None = None,
                      measured: dict[str, Tensor] | None = None) -> None:
        """Add one iteration's ``stats`` (in the order of ``SCALARS``) and the ``measured`` scalar
        tensors of the terms that joined it (each averaged over the iterations that logged it, and
        logged as ``train/<name>`` beside them: a lazy term logs at its own updates); ``extra``
        plain numbers are logged as they are at the next write."""
        for name, value in (measured or {}).items():
            value = value.detach().float()
            total = self._measured.setdefault(name, [None, 0])
            total[0] = value if total[0] is None else total[0] + value
            total[1] += 1
        self._sum = stats if self._sum is None else self._sum + stats
        self._count += 1
        self.iteration += 1
        self.epoch_batches += 1
        if self.iteration % self.log_every == 0:
            self.write(trainer, extra)
        if self.budget_reached():
            trainer.should_stop = True

    def budget_reached(self) -> bool:
        return self.max_iterations is not None and self.iteration >= self.max_iterations

    def write(self, trainer: pl.Trainer, extra: dict[str, float] | None = None) -> None:
        """Average the accumulated scalars (one host sync) and hand them to the loggers."""
        if self._sum is None:
            return
        names = SCALARS + tuple(self._measured)
        counts = torch.tensor([self._count] * len(SCALARS) + [n for _, n in self._measured.values()])
        sums = torch.cat([self._sum, torch.stack([v for v, _ in self._measured.values()])]) if self._measured else self._sum
        means = (sums / counts.to(sums.device)).tolist()
        self._sum, self._count, self._measured = None, 0, {}
        self.latest = dict(zip(names, means))
        self.history.add_train(self.iteration, self.latest)
        metrics = {f"train/{k}": v for k, v in self.latest.items()} | {f"train/{k}": v for k, v in (extra or {}).items()}
        # callback_metrics travel back from spawned DDP workers: train() returns them
        trainer.callback_metrics.update({k: torch.tensor(v) for k, v in metrics.items()}
                                        | {"train/iteration": torch.tensor(float(self.iteration))})
        if trainer.is_global_zero:
            for logger in trainer.loggers:
                logger.log_metrics(metrics, step=self.iteration)

    def state_dict(self) -> dict[str, Any]:
        return {"iteration": self.iteration, "epoch_batches": self.epoch_batches, "history": self.history.state_dict()}
