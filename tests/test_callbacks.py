"""gan.callbacks: the evaluation during training (val/* scalars, best_fid.ckpt) and the diagnostics."""

from __future__ import annotations

import csv
import logging
import math
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from omegaconf import OmegaConf, open_dict

from gan.runtime.bookkeeping import History
from gan.callbacks.diagnostics import (
    Diagnostics,
    class_collapsed,
    coverage_collapsed,
    diagnose,
    discriminator_won,
    worst_class_history,
)
from gan.callbacks.evaluation import Evaluation
from gan.callbacks.training import StopOnSignal
from gan.runtime.checkpoints import load_checkpoint
from gan.metrics.evaluator import METRICS
from gan.train import train
from tests.conftest import QUICK, data_root


# ---------------------------------------------------------------------------------- diagnostics
def d_history(acc_real, acc_fake, every=10, start=10):
    return [(start + i * every, r, f) for i, (r, f) in enumerate(zip(acc_real, acc_fake))]


def test_d_wins_is_detected_on_a_crafted_history_and_not_on_a_healthy_one():
    healthy = d_history([0.8, 0.7, 0.75, 0.6] * 20, [0.7, 0.65, 0.8, 0.55] * 20)
    assert diagnose(healthy, [(250, 10), (500, 10), (750, 10)]) == []
    # D wins from iteration 200 on: 30 logged points above 0.99 on both kinds of image
    won = d_history([0.8] * 19 + [0.999] * 31, [0.7] * 19 + [1.0] * 31)
    assert discriminator_won(won, window=200) == (200, 500)
    found = diagnose(won, [])
    assert [f.key for f in found] == ["d_wins"] and found[0].iteration == 500
    assert "learning rate" in found[0].message and "d_steps" in found[0].message
    # a short spell is not a win, nor is high accuracy on real images alone
    assert discriminator_won(d_history([1.0] * 10 + [0.8], [1.0] * 10 + [0.8]), window=50) is None
    assert discriminator_won(d_history([1.0] * 40, [0.9] * 40), window=100) is None
    assert discriminator_won(d_history([1.0] * 40, [1.0] * 40), window=100) == (10, 400)


def test_mode_collapse_is_detected_when_coverage_stays_low():
    assert coverage_collapsed([(250, 10), (500, 4), (750, 3)]) == (750, 3)
    assert coverage_collapsed([(250, 3), (500, 10)]) is None  # recovered
    assert coverage_collapsed([(250, 3)]) is None  # one evaluation is not a trend (patience 2)
    assert coverage_collapsed([(250, 3)], patience=1) == (250, 3)
    found = diagnose([], [(250, 9), (500, 2)])
    assert [f.key for f in found] == ["mode_collapse"] and "2 of the 10 digits" in found[0].message


def test_a_stalled_class_of_a_conditional_run_is_detected():
    # the seed-1 stall of experiment=conditional at label_std 1: class 8 never read as 8, the rest right
    stalled = [(100, 8, 0.0, 0.90), (200, 8, 0.0, 0.97), (300, 8, 0.02, 0.98)]
    assert class_collapsed(stalled) == (300, 8, 0.02)
    assert class_collapsed([(100, 8, 0.0, 0.9), (200, 8, 0.92, 0.97)]) is None  # recovered
    assert class_collapsed([(100, 3, 0.3, 0.9), (200, 5, 0.4, 0.9)]) is None  # moving between classes
    assert class_collapsed([(100, 9, 0.05, 0.39), (200, 9, 0.45, 0.79)]) is None  # not digits yet: the rest is low too
    assert class_collapsed([(100, 8, 0.0, 0.9)]) is None  # one evaluation is not a trend
    found = diagnose([], [(100, 10), (200, 10)], class_history=stalled)
    assert [f.key for f in found] == ["class_collapse"]
    assert "class 8 has stalled" in found[0].message and "model.conditional.label_std" in found[0].message
    history = History()
    history.add_evaluation(100, {"fid": 300.0, "worst_class": 8.0, "worst_class_accuracy": 0.0,
                                 "other_classes_accuracy": 0.9}, {})
    history.add_evaluation(200, {"fid": 200.0}, {})  # an unconditional evaluation has none of them
    assert worst_class_history(history) == [(100, 8.0, 0.0, 0.9)]


def test_diagnostics_callback_warns_once_in_the_log_and_as_text(caplog):
    texts = []
    logger = SimpleNamespace(experiment=SimpleNamespace(add_text=lambda tag, text, global_step: texts.append((tag, global_step))))
    trainer = SimpleNamespace(loggers=[logger], is_global_zero=True)
    history = History()
    callback = Diagnostics(window=50)
    with caplog.at_level(logging.WARNING, logger="gan.callbacks.diagnostics"):
        for it in range(10, 210, 10):
            history.add_train(it, {"d_loss": 0.1, "d_acc_real": 1.0, "d_acc_fake": 0.995})
            if it % 50 == 0:
                history.add_evaluation(it, {"fid": 100.0, "coverage": 2.0}, {"fid": 3.0})
            callback.check(trainer, history)
    assert texts == [("diagnostics/d_wins", 60), ("diagnostics/mode_collapse", 100)]
    assert sum("D has won" in r.message for r in caplog.records) == 1
    assert sum("mode collapse" in r.message for r in caplog.records) == 1
    fresh = Diagnostics(window=50)
    fresh.load_state_dict(callback.state_dict())
    assert fresh.warned == {"d_wins", "mode_collapse"}
    assert fresh.check(trainer, history) == []  # a resumed run does not warn again


# ---------------------------------------------------------------------------------- during training
def with_evaluation(cfg, every=3, n_samples=200):
    """``cfg`` with the evaluation, diagnostics and curves callbacks (quick classifier)."""
    run = Path(cfg.paths.output_dir)
    evaluation = {
        "_target_": "gan.callbacks.evaluation.Evaluation", "every": every, "n_samples": n_samples,
        "recipe": "quick", "data_root": str(data_root()),
    }
    with open_dict(cfg):
        # evaluation first: last.ckpt, written by the checkpoint callback after it, then holds its state
        others = {k: v for k, v in OmegaConf.to_container(cfg.callbacks).items() if k != "evaluation"}
        cfg.callbacks = {
            "evaluation": evaluation, **others,
            "diagnostics": {"_target_": "gan.callbacks.diagnostics.Diagnostics"},
            "curves": {"_target_": "gan.callbacks.diagnostics.LearningCurves", "dirpath": str(run)},
        }
    return cfg, run


@pytest.mark.filterwarnings("ignore:Experiment logs directory")  # the CSV logger, on the resume
def test_training_logs_val_metrics_keeps_the_best_fid_checkpoint_and_draws_curves(make_cfg, cache):
    cfg, run = with_evaluation(make_cfg(*QUICK, "logger=csv"))
    metrics = train(cfg)
    assert {f"val/{k}" for k in METRICS} | {"val/best_fid"} | {f"val_floor/{k}" for k in METRICS} <= set(metrics)
    assert math.isfinite(metrics["val/fid"]) and metrics["val/fid"] > 0
    assert metrics["val/best_fid"] <= metrics["val/fid"]

    with open(run / "csv" / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    val_steps = sorted({int(r["step"]) for r in rows if r.get("val/fid")})
    assert val_steps == [3, 6]  # every 3 GAN iterations, on the iteration axis
    assert all(r.get(f"val/{k}") for r in rows if r.get("val/fid") for k in METRICS)

    best = run / "checkpoints" / "best_fid.ckpt"
    assert best.is_file() and (run / "checkpoints" / "last.ckpt").is_file()
    assert not list((run / "checkpoints").glob(".*tmp*"))
    ckpt = load_checkpoint(best)
    assert ckpt["gan"]["iteration"] in (3, 6)
    assert ckpt["callbacks"]["Evaluation"]["best_fid"] == pytest.approx(metrics["val/best_fid"])
    curves = run / "curves.png"
    assert curves.is_file() and curves.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    # a resumed run carries on from the best FID so far and evaluates on the same axis
    resumed, _ = with_evaluation(make_cfg(*QUICK, "logger=csv", "iterations=9", f"ckpt_path={run / 'checkpoints' / 'last.ckpt'}"))
    more = train(resumed)
    assert more["val/iteration"] == 9 and more["val/best_fid"] <= metrics["val/best_fid"]
    assert load_checkpoint(run / "checkpoints" / "last.ckpt")["callbacks"]["Evaluation"]["last_evaluated"] == 9


def test_no_final_evaluation_when_a_signal_stopped_training():
    calls = []
    callback = Evaluation(every=5, n_samples=10, recipe="quick")
    callback.evaluate = lambda trainer, module, final=False: calls.append(module.iteration)
    module = SimpleNamespace(iteration=7)
    signalled = StopOnSignal()
    signalled.received = "SIGTERM"
    stopped = SimpleNamespace(callbacks=[signalled], should_stop=True)
    callback.on_train_batch_end(stopped, module, None, None, 0)
    callback.on_train_end(stopped, module)
    assert calls == []  # the checkpoint gets the time; the resumed run evaluates at its end
    finished = SimpleNamespace(callbacks=[StopOnSignal()], should_stop=True)
    callback.on_train_batch_end(finished, module, None, None, 0)
    assert calls == [7]


def test_final_false_evaluates_only_on_the_cadence():
    calls = []
    callback = Evaluation(every=5, n_samples=10, recipe="quick", final=False)
    callback.evaluate = lambda trainer, module, final=False: calls.append(module.iteration)
    finished = SimpleNamespace(callbacks=[], should_stop=True)
    for it in (5, 7):
        callback.on_train_batch_end(finished, SimpleNamespace(iteration=it), None, None, 0)
    callback.on_train_end(finished, SimpleNamespace(iteration=7))
    assert calls == [5]


@pytest.mark.slow
def test_evaluation_under_ddp_on_two_cpu_processes(make_cfg, cache):
    # only rank 0 scores the samples: nothing may wait for the other rank (torchmetrics' sync is off)
    cfg, run = with_evaluation(make_cfg(*QUICK, "trainer=ddp_sim"))
    metrics = train(cfg)
    assert metrics["val/iteration"] == 6 and math.isfinite(metrics["val/fid"])
    assert (run / "checkpoints" / "best_fid.ckpt").is_file() and (run / "curves.png").is_file()


def test_watching_a_run_does_not_change_its_weights(make_cfg, cache):
    """Evaluation, grids, checkpoints and logging draw from their own generators: the weights at the
    end are bit-identical whatever their cadences (CPU)."""
    finals = []
    for run, cadence in (("watched", ["eval_every=4", "sample_every=2", "checkpoint_every=3", "log_every=1"]),
                         ("unwatched", ["eval_every=500", "sample_every=500", "checkpoint_every=500", "log_every=5"])):
        cfg, out = with_evaluation(make_cfg(*QUICK, "iterations=8", "seed=5", *cadence, run=run), every=int(cadence[0].split("=")[1]))
        train(cfg)
        finals.append(load_checkpoint(out / "checkpoints" / "last.ckpt")["state_dict"])
    watched, unwatched = finals
    for key in watched:
        assert torch.equal(watched[key], unwatched[key]), key
