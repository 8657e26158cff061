"""gan.schedules: learning-rate factors at the start, middle and end of the budget."""

import math

import pytest
import torch

from gan.runtime.config import ConfigError
from gan.schedules import BudgetSchedule, InverseTimeDecay


def optimizer(lr=1.0):
    return torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=lr)


def lrs(schedule, steps):
    seen = [schedule.get_last_lr()[0]]
    for _ in range(steps):
        schedule.optimizer.step()
        schedule.step()
        seen.append(schedule.get_last_lr()[0])
    return seen


def test_cosine_decays_from_the_base_lr_to_the_floor_over_the_budget():
    lr = lrs(BudgetSchedule(optimizer(2.0), iterations=100, kind="cosine", floor=0.1), 120)
    assert lr[0] == pytest.approx(2.0)
    assert lr[50] == pytest.approx(2.0 * (0.1 + 0.9 * 0.5))  # half way: the mean of 1 and the floor
    assert lr[25] == pytest.approx(2.0 * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi / 4))))
    assert lr[100] == pytest.approx(0.2) and lr[120] == pytest.approx(0.2)  # the floor, then stays


def test_linear_with_warmup_and_updates_per_iteration():
    schedule = BudgetSchedule(optimizer(1.0), iterations=50, updates_per_iteration=2, kind="linear", warmup=10)
    lr = lrs(schedule, 100)
    assert lr[0] == pytest.approx(0.1) and lr[9] == pytest.approx(1.0)  # warm-up over 10 updates
    assert lr[10] == pytest.approx(1.0)
    assert lr[55] == pytest.approx(0.5)  # half of the 90 updates after warm-up
    assert lr[100] == pytest.approx(0.0)


def test_schedule_state_round_trips_and_holds_no_code():
    a = BudgetSchedule(optimizer(), iterations=10)
    lrs(a, 4)
    state = a.state_dict()
    assert not any(callable(v) for v in state.values())
    b = BudgetSchedule(optimizer(), iterations=10)
    b.load_state_dict(state)
    assert b.last_epoch == 4 and b.get_last_lr() == a.get_last_lr()
    assert isinstance(InverseTimeDecay(optimizer(), 0.1).state_dict(), dict)


def test_a_budget_schedule_needs_a_budget():
    with pytest.raises(ConfigError, match="iterations=N"):
        BudgetSchedule(optimizer(), iterations=None)
    with pytest.raises(ConfigError, match="floor=2"):
        BudgetSchedule(optimizer(), iterations=10, floor=2)


def test_a_resumed_schedule_keeps_its_position_and_takes_the_new_budget():
    a = BudgetSchedule(optimizer(), iterations=10, kind="linear")
    lrs(a, 10)  # the end of a finished 10-iteration run: lr 0
    longer = BudgetSchedule(optimizer(), iterations=20, kind="linear")
    longer.load_state_dict(a.state_dict())  # extended to 20 iterations
    assert longer.last_epoch == 10 and longer.total == 20
    assert longer.factor(10) == pytest.approx(0.5)  # half way through the new budget, not stuck at 0
