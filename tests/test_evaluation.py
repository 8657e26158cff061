"""The MNIST feature classifier, the metrics against their floor, diagnostics and the training callbacks.

The quick classifier recipe is trained once per session into a session-wide cache folder
(``GAN_CACHE_DIR``); the full recipe's accuracy test is marked slow.
"""

from __future__ import annotations

import csv
import logging
import math
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from omegaconf import OmegaConf, open_dict

from gan.data import load_split
from gan.evaluation import classifier as classifier_module
from gan.evaluation.callbacks import Diagnostics, Evaluation, coverage_collapsed, diagnose, discriminator_won
from gan.evaluation.classifier import Recipe, accuracy, load_or_train_classifier, train_classifier, weights_path
from gan.evaluation.metrics import (
    METRICS,
    Evaluator,
    class_histogram,
    class_kl,
    classifier_score,
    coverage,
    format_report,
    precision_recall,
)
from gan.runs import load_checkpoint
from gan.train import train
from tests.conftest import QUICK, data_root

N = 1000  # samples per metric test (the floor is computed once for this n)


@pytest.fixture(scope="module")
def evaluator(cache):
    return Evaluator.from_recipe(data_root(), "quick")


@pytest.fixture(scope="module")
def train_split():
    return load_split(data_root(), "train")


@pytest.fixture(scope="module")
def real_samples(train_split):
    """N training images other than the floor's (which uses a permutation seeded with 0)."""
    images, _ = train_split
    index = torch.randperm(len(images), generator=torch.Generator().manual_seed(1))[:N]
    return images[index].float().div(255).unsqueeze(1)


@pytest.fixture(scope="module")
def noise_samples():
    return torch.rand(N, 1, 28, 28, generator=torch.Generator().manual_seed(0))


@pytest.fixture(scope="module")
def real_report(evaluator, real_samples):
    return evaluator.report(real_samples)


@pytest.fixture(scope="module")
def noise_report(evaluator, noise_samples):
    return evaluator.report(noise_samples)


# ---------------------------------------------------------------------------------- the classifier
def test_quick_classifier_reaches_its_accuracy(evaluator):
    test_images, test_labels = load_split(data_root(), "test")
    measured = accuracy(evaluator.classifier, test_images, test_labels)
    assert measured >= 0.97
    assert evaluator.classifier.test_accuracy == pytest.approx(measured, abs=1e-6)
    assert evaluator.classifier.num_features == 128
    feats = evaluator.classifier.features(test_images[:5].float().div(255).unsqueeze(1))
    assert feats.shape == (5, 128)


@pytest.mark.slow
def test_full_classifier_reaches_99_percent(cache):
    model = load_or_train_classifier(data_root(), "full")
    test_images, test_labels = load_split(data_root(), "test")
    assert accuracy(model, test_images, test_labels) >= 0.99


def test_training_is_deterministic_and_the_cache_name_follows_the_recipe(tmp_path, monkeypatch):
    tiny = Recipe(name="tiny", epochs=1, train_images=256, batch_size=64, min_accuracy=0.0)
    first, second = train_classifier(tiny, data_root()), train_classifier(tiny, data_root())
    for (k, a), (_, b) in zip(first.state_dict().items(), second.state_dict().items()):
        assert torch.equal(a, b), k
    before = torch.get_rng_state()
    train_classifier(tiny, data_root())
    assert torch.equal(before, torch.get_rng_state())  # the caller's RNG is left alone

    path = weights_path(tiny, tmp_path)
    assert tiny.fingerprint() in path.name
    for changed in (Recipe(**{**tiny.__dict__, "lr": 1e-3}), Recipe(**{**tiny.__dict__, "seed": 1}),
                    Recipe(**{**tiny.__dict__, "feature_dim": 64})):
        assert weights_path(changed, tmp_path) != path

    model = load_or_train_classifier(data_root(), tiny, directory=tmp_path)
    assert path.is_file()

    def no_training(*args, **kwargs):
        raise AssertionError("a cached classifier was trained again")

    monkeypatch.setattr(classifier_module, "train_classifier", no_training)
    again = load_or_train_classifier(data_root(), tiny, directory=tmp_path)
    assert torch.equal(again.head[1].weight, model.head[1].weight)
    assert again.test_accuracy == model.test_accuracy


# ---------------------------------------------------------------------------------- pure metrics
def test_class_metrics_on_crafted_histograms():
    balanced = torch.eye(10).repeat(10, 1)
    assert coverage(class_histogram(balanced)) == 10
    assert class_kl(class_histogram(balanced)) == pytest.approx(0.0, abs=1e-9)
    assert classifier_score(balanced) == pytest.approx(10.0, rel=1e-6)
    one = torch.zeros(50, 10)
    one[:, 3] = 1
    assert coverage(class_histogram(one)) == 1
    assert class_kl(class_histogram(one)) == pytest.approx(math.log(10))
    assert classifier_score(one) == pytest.approx(1.0)
    assert classifier_score(torch.full((50, 10), 0.1)) == pytest.approx(1.0)
    # 5% is enough to count, just under is not
    hist = torch.tensor([0.05, 0.0499] + [0.9001 / 8] * 8, dtype=torch.float64)
    assert coverage(hist) == 9


def test_precision_recall_on_gaussians():
    g = torch.Generator().manual_seed(0)
    real = torch.randn(1000, 8, generator=g)
    same = torch.randn(1000, 8, generator=g)
    far = torch.randn(1000, 8, generator=g) + 20
    narrow = torch.randn(1000, 8, generator=g) * 0.2  # inside the real manifold, covering little of it
    p, r = precision_recall(real, same)
    assert p > 0.8 and r > 0.8  # about 0.88 for k=3 in 8 dimensions
    assert precision_recall(real, far) == (0.0, 0.0)
    p, r = precision_recall(real, narrow)
    assert p > 0.95 and r < 0.3


# ---------------------------------------------------------------------------------- against MNIST
def test_reports_carry_every_metric_and_the_floor(real_report, noise_report):
    for report in (real_report, noise_report):
        assert set(METRICS) <= set(report) and report["n"] == N
        assert set(report["floor"]) == set(METRICS)
        assert all(math.isfinite(report[k]) for k in METRICS)
    assert real_report["floor"] == noise_report["floor"]
    table = format_report(real_report)
    assert "floor" in table and all(k in table for k in METRICS)


def test_fid_and_kid_of_real_data_sit_near_the_floor_and_far_below_noise(real_report, noise_report):
    floor = real_report["floor"]
    assert real_report["fid"] < 1.5 * floor["fid"] + 1.0
    assert noise_report["fid"] > 50 * real_report["fid"]
    assert noise_report["kid"] > 50 * max(real_report["kid"], floor["kid"])
    assert real_report["classifier_score"] > 8 and noise_report["classifier_score"] < 3


def test_precision_and_recall_high_for_real_and_near_zero_for_noise(real_report, noise_report):
    assert real_report["precision"] > 0.75 and real_report["recall"] > 0.75
    assert real_report["floor"]["precision"] > 0.75 and real_report["floor"]["recall"] > 0.75
    assert noise_report["precision"] < 0.02 and noise_report["recall"] < 0.02


def test_one_digit_gives_coverage_one_and_a_large_class_kl(evaluator, train_split):
    images, labels = train_split
    threes = images[labels == 3][:N].float().div(255).unsqueeze(1)
    report = evaluator.metrics(threes)
    assert report["coverage"] == 1
    assert report["class_kl"] > 2.0  # log(10) = 2.30 for a single class
    assert report["classifier_score"] < 1.5
    assert report["recall"] < 0.3  # one digit covers little of the test set
    assert evaluator.floor(N)["coverage"] == 10 and evaluator.floor(N)["class_kl"] < 0.05


def test_memorisation_flags_copies_of_training_images(real_report):
    # real_samples are training images: each one's nearest training image is itself
    assert real_report["memorisation"] == pytest.approx(0.0, abs=1e-3)
    assert real_report["copy_fraction"] == pytest.approx(1.0)
    # the floor leaves each image's own copy out: like new real digits
    assert 0.8 < real_report["floor"]["memorisation"] < 1.25
    assert real_report["floor"]["copy_fraction"] < 0.05


def test_evaluation_leaves_the_global_rng_alone(evaluator, real_samples):
    before = torch.get_rng_state()
    first = evaluator.metrics(real_samples[:200])
    assert torch.equal(before, torch.get_rng_state())
    assert evaluator.metrics(real_samples[:200]) == first  # KID's subsets are drawn reproducibly


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


def test_diagnostics_callback_warns_once_in_the_log_and_as_text(caplog):
    texts = []
    logger = SimpleNamespace(experiment=SimpleNamespace(add_text=lambda tag, text, global_step: texts.append((tag, global_step))))
    trainer = SimpleNamespace(callback_metrics={}, loggers=[logger], is_global_zero=True)
    callback = Diagnostics(window=50)
    with caplog.at_level(logging.WARNING, logger="gan.evaluation.callbacks"):
        for it in range(10, 210, 10):
            trainer.callback_metrics.update({"train/iteration": torch.tensor(float(it)), "train/d_acc_real": torch.tensor(1.0),
                                             "train/d_acc_fake": torch.tensor(0.995)})
            if it % 50 == 0:
                trainer.callback_metrics.update({"val/iteration": torch.tensor(float(it)), "val/coverage": torch.tensor(2.0)})
            callback.check(trainer)
    assert texts == [("diagnostics/d_wins", 60), ("diagnostics/mode_collapse", 100)]
    assert sum("D has won" in r.message for r in caplog.records) == 1
    assert sum("mode collapse" in r.message for r in caplog.records) == 1
    state = callback.state_dict()
    fresh = Diagnostics(window=50)
    fresh.load_state_dict(state)
    assert fresh.warned == {"d_wins", "mode_collapse"} and fresh.d_history == callback.d_history


# ---------------------------------------------------------------------------------- during training
def with_evaluation(cfg, every=3, n_samples=200):
    """``cfg`` with the evaluation, diagnostics and curves callbacks (quick classifier)."""
    run = Path(cfg.paths.output_dir)
    evaluation = {
        "_target_": "gan.evaluation.callbacks.Evaluation", "every": every, "n_samples": n_samples,
        "dirpath": str(run / "checkpoints"), "recipe": "quick", "data_root": str(data_root()),
    }
    with open_dict(cfg):
        # evaluation first: last.ckpt, written by the checkpoint callback after it, then holds its state
        others = {k: v for k, v in OmegaConf.to_container(cfg.callbacks).items() if k != "evaluation"}
        cfg.callbacks = {
            "evaluation": evaluation, **others,
            "diagnostics": {"_target_": "gan.evaluation.callbacks.Diagnostics"},
            "curves": {"_target_": "gan.evaluation.callbacks.LearningCurves", "dirpath": str(run)},
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
    callback.evaluate = lambda trainer, module: calls.append(module.iteration)
    module = SimpleNamespace(iteration=7)
    stopped = SimpleNamespace(callbacks=[SimpleNamespace(received="SIGTERM")], should_stop=True)
    callback.on_train_batch_end(stopped, module, None, None, 0)
    callback.on_train_end(stopped, module)
    assert calls == []  # the checkpoint gets the time; the resumed run evaluates at its end
    finished = SimpleNamespace(callbacks=[SimpleNamespace(received=None)], should_stop=True)
    callback.on_train_batch_end(finished, module, None, None, 0)
    assert calls == [7]


def test_final_false_evaluates_only_on_the_cadence():
    calls = []
    callback = Evaluation(every=5, n_samples=10, recipe="quick", final=False)
    callback.evaluate = lambda trainer, module: calls.append(module.iteration)
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
