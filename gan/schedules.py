"""Learning-rate schedules stepped once per optimizer update."""

from __future__ import annotations

import math

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR

from gan.runtime.config import ConfigError, one_of, positive_int


class _FactorSchedule(LambdaLR):
    """A LambdaLR whose factor is a method: its state is plain data (the bound method in
    ``lr_lambdas`` is rebuilt by ``__init__``), so checkpoints hold no code."""

    def state_dict(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k not in ("optimizer", "lr_lambdas")}

    def load_state_dict(self, state_dict: dict) -> None:
        self.__dict__.update(state_dict)


class InverseTimeDecay(_FactorSchedule):
    """lr_t = lr_0 / (1 + decay * t), t counting this optimizer's updates: Keras' legacy ``decay``."""

    def __init__(self, optimizer: Optimizer, decay: float, last_epoch: int = -1) -> None:
        if decay < 0:
            raise ValueError(f"decay={decay}: must be >= 0")
        self.decay = float(decay)
        super().__init__(optimizer, lr_lambda=self._factor, last_epoch=last_epoch)

    def _factor(self, step: int) -> float:
        return 1.0 / (1.0 + self.decay * step)


class BudgetSchedule(_FactorSchedule):
    """A learning-rate factor over the training budget: an optional linear warm-up from 0, then a
    cosine or linear decay from 1 to ``floor`` at the end of the budget (and ``floor`` after it).

    Stepped after every update of its optimizer, so ``total`` is the budget in GAN iterations
    times that network's updates per iteration (``iterations * d_steps`` for D). A resumed run
    keeps its position but takes the budget of its own config (``iterations`` extended: the decay
    stretches to the new end).
    """

    SETTINGS = ("total", "kind", "floor", "warmup")

    KINDS = ("cosine", "linear")

    def __init__(self, optimizer: Optimizer, iterations: int | None, updates_per_iteration: int = 1,
                 kind: str = "cosine", floor: float = 0.0, warmup: int = 0, last_epoch: int = -1) -> None:
        if iterations is None:
            raise ConfigError("a budget schedule (gan.schedules.BudgetSchedule) decays over iterations=N: "
                              "set iterations, or use no schedule when training by epochs")
        self.total = positive_int("iterations", iterations) * positive_int("updates_per_iteration", updates_per_iteration)
        self.kind = one_of("schedule kind", kind, self.KINDS)
        if not 0.0 <= floor <= 1.0:
            raise ConfigError(f"floor={floor}: must be a share of the base learning rate, in [0, 1]")
        self.floor, self.warmup = float(floor), int(warmup)
        super().__init__(optimizer, lr_lambda=self.factor, last_epoch=last_epoch)

    def factor(self, step: int) -> float:
        if step < self.warmup:
            return (step + 1) / self.warmup
        progress = min(1.0, (step - self.warmup) / max(1, self.total - self.warmup))
        shape = 0.5 * (1.0 + math.cos(math.pi * progress)) if self.kind == "cosine" else 1.0 - progress
        return self.floor + (1.0 - self.floor) * shape

    def load_state_dict(self, state_dict: dict) -> None:
        super().load_state_dict({k: v for k, v in state_dict.items() if k not in self.SETTINGS})
