"""Bookkeeping: the per-iteration scalars are averaged over log_every iterations, a recipe's own
measured scalars travel beside them, and the budget stops training."""

from types import SimpleNamespace

import pytest
import torch

from gan.runtime.bookkeeping import SCALARS, Bookkeeping


def trainer_stub():
    logged = []
    logger = SimpleNamespace(log_metrics=lambda metrics, step: logged.append((step, metrics)))
    return SimpleNamespace(callback_metrics={}, is_global_zero=True, loggers=[logger], should_stop=False), logged


def test_measured_scalars_are_averaged_and_logged_beside_the_standard_ones():
    trainer, logged = trainer_stub()
    books = Bookkeeping(max_iterations=4, log_every=2)
    for value in (1.0, 3.0, 5.0, 9.0):
        books.end_iteration(trainer, torch.full((len(SCALARS),), value), measured={"mode_seeking": torch.tensor(value * 10)})
    assert [step for step, _ in logged] == [2, 4]
    assert logged[0][1]["train/d_loss"] == pytest.approx(2.0) and logged[0][1]["train/mode_seeking"] == pytest.approx(20.0)
    assert logged[1][1]["train/mode_seeking"] == pytest.approx(70.0)
    assert books.history.series("mode_seeking") == [(2, pytest.approx(20.0)), (4, pytest.approx(70.0))]
    assert books.history.series("g_loss") == [(2, pytest.approx(2.0)), (4, pytest.approx(7.0))]
    assert trainer.should_stop  # the budget of 4 iterations is reached


def test_a_run_without_measured_scalars_logs_only_the_standard_ones():
    trainer, logged = trainer_stub()
    books = Bookkeeping(max_iterations=None, log_every=1)
    books.end_iteration(trainer, torch.zeros(len(SCALARS)), extra={"skipped_updates": 2.0})
    assert set(logged[0][1]) == {f"train/{k}" for k in SCALARS} | {"train/skipped_updates"}
    assert not trainer.should_stop
