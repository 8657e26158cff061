"""gan.metrics: the MNIST feature classifier, and the metrics against their floor.

The quick classifier recipe is trained once per session into a session-wide cache folder
(``GAN_CACHE_DIR``); the full recipe's accuracy test is marked slow.
"""

from __future__ import annotations

import math

import pytest
import torch

from gan.data import load_split
from gan.metrics import classifier as classifier_module
from gan.metrics.classifier import (
    Recipe,
    accuracy,
    load_or_train_classifier,
    train_classifier,
    weights_path,
)
from gan.metrics.evaluator import METRICS, Evaluator, format_report
from gan.metrics.scores import (
    class_histogram,
    class_kl,
    classifier_score,
    coverage,
    precision_recall,
)
from tests.conftest import data_root

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




def test_distance_blocks_stay_within_their_memory_budget_and_change_no_result():
    from gan.metrics import scores

    assert scores.block_rows(60000) * 60000 * 4 <= scores.BLOCK_BYTES  # 10000 samples vs the training split
    assert scores.block_rows(10, chunk=3) == 3 and scores.block_rows(10**12) == 1
    torch.manual_seed(0)
    queries, reference = torch.randn(50, 8), torch.randn(70, 8)
    exclude = torch.randint(0, 70, (50,))
    for chunk in (1, 7):
        # equal up to rounding: the matrix products behind cdist sum in another order per block shape
        assert torch.allclose(scores.nearest_distances(queries, reference, exclude, chunk=chunk),
                              scores.nearest_distances(queries, reference, exclude), rtol=1e-5)
        assert torch.allclose(scores.knn_radii(reference, 3, chunk=chunk), scores.knn_radii(reference, 3), rtol=1e-5)
        radii = scores.knn_radii(reference, 3)
        assert torch.equal(scores.inside_manifold(queries, reference, radii, chunk=chunk),
                           scores.inside_manifold(queries, reference, radii))
