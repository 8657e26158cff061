"""Learning-rate schedules stepped once per optimizer update."""

from __future__ import annotations

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR


class InverseTimeDecay(LambdaLR):
    """lr_t = lr_0 / (1 + decay * t), t counting this optimizer's updates: Keras' legacy ``decay``."""

    def __init__(self, optimizer: Optimizer, decay: float, last_epoch: int = -1) -> None:
        if decay < 0:
            raise ValueError(f"decay={decay}: must be >= 0")
        self.decay = float(decay)
        super().__init__(optimizer, lr_lambda=self._factor, last_epoch=last_epoch)

    def _factor(self, step: int) -> float:
        return 1.0 / (1.0 + self.decay * step)

    def state_dict(self) -> dict:
        # the bound method in lr_lambdas is rebuilt by __init__; keep only plain state
        state = {k: v for k, v in self.__dict__.items() if k not in ("optimizer", "lr_lambdas")}
        return state

    def load_state_dict(self, state_dict: dict) -> None:
        self.__dict__.update(state_dict)
