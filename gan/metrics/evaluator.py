"""What a GAN learned, measured in the feature space of our MNIST classifier.

Every metric takes samples as images in [0, 1], ``(n, 1, 28, 28)``. The reference set is the MNIST
test split (10000 images); the training split serves the memorisation check and the floor.

========================  =====================================================================
``fid``                   Frechet distance between Gaussians fitted to sample and test features
                          (torchmetrics ``FrechetInceptionDistance`` with our feature module). Lower is better.
``kid``                   kernel (polynomial MMD^2) distance, unbiased, averaged over subsets of
                          ``min(1000, n)`` (torchmetrics ``KernelInceptionDistance``). Lower is better.
``classifier_score``      the Inception Score with our classifier: exp(E_x KL(p(y|x) || p(y))),
                          from 1 to 10. Higher is better.
``precision``             fraction of samples inside the real manifold: the union of balls around
                          each test feature reaching its k-th nearest test neighbour
                          (Kynkaanniemi et al. 2019, k=3). Higher is better.
``recall``                fraction of test images inside the sample manifold. Higher is better.
``coverage``              how many of the 10 digits get at least 5% of the samples (the classifier's
                          argmax). 10 is full; fewer is mode collapse.
``class_kl``              KL divergence of the predicted-class histogram from uniform, in nats
                          (0 for balanced classes, log 10 = 2.30 for one class).
``memorisation``          median distance from each sample to its nearest training image, divided
                          by the same median for test images. About 1 for a model that generalises;
                          well below 1 for one that copies training images (above 1: samples lie
                          further from the data than new real digits, i.e. low quality).
``copy_fraction``         fraction of samples nearer a training image than 99% of test images are
                          (about 0.01 for real data; much more points at copies).
========================  =====================================================================

Every report carries ``floor``: the same metrics for ``n`` real *training* images against the
test split, what a perfect generator would score with that many samples. The test-split
statistics (features, k-NN radii, torchmetrics' real-side states) and each floor are computed
once and cached beside the classifier, keyed by its hash (and ``n`` for the floor).
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import Tensor, nn
from torchmetrics.image.fid import FrechetInceptionDistance
from torchmetrics.image.kid import KernelInceptionDistance

from gan.data import load_split
from gan.runtime.files import write_atomically
from gan.runtime.memory import release_free_memory
from gan.metrics.classifier import (
    MNISTClassifier,
    as_unit_images,
    cache_dir,
    cache_prefix,
    load_or_train_classifier,
    predict,
    resolve_data_root,
)
from gan.metrics.scores import (
    DEFAULT_K,
    class_histogram,
    class_kl,
    classifier_score,
    coverage,
    knn_radii,
    nearest_distances,
    precision_recall,
)

log = logging.getLogger(__name__)

METRICS = ("fid", "kid", "classifier_score", "precision", "recall", "coverage", "class_kl", "memorisation", "copy_fraction")
HIGHER_IS_BETTER = {"classifier_score", "precision", "recall", "coverage"}
# ``memorisation`` is best near 1 and ``copy_fraction`` near the floor: neither is "higher" or "lower".
LOWER_IS_BETTER = {"fid", "kid", "class_kl"}
KID_SUBSET = 1000
KID_SUBSETS = 100
COPY_QUANTILE = 0.01
REFERENCE_FORMAT = 1
MIN_SAMPLES = 10


# ---------------------------------------------------------------------------------- feature module
class ClassifierFeatures(nn.Module):
    """The classifier's penultimate layer as a torchmetrics feature extractor: ``(N, 1, 28, 28)`` in
    [0, 1] to ``(N, d)``. It stays in eval mode and never takes gradients."""

    def __init__(self, classifier: MNISTClassifier) -> None:
        super().__init__()
        self.classifier = classifier.eval()
        self.num_features = int(classifier.num_features)

    def train(self, mode: bool = True) -> ClassifierFeatures:
        return super().train(False)

    @torch.no_grad()
    def forward(self, x: Tensor) -> Tensor:
        return self.classifier.features(x.float())


def make_fid(classifier: MNISTClassifier) -> FrechetInceptionDistance:
    # sync_on_compute=False: only rank 0 evaluates in a distributed run; a sync would wait for the others
    return FrechetInceptionDistance(
        feature=ClassifierFeatures(classifier), normalize=True, reset_real_features=False, sync_on_compute=False
    )


def make_kid(classifier: MNISTClassifier, subset_size: int = KID_SUBSET, subsets: int = KID_SUBSETS) -> KernelInceptionDistance:
    with warnings.catch_warnings():  # "will save all extracted features": 10000 x 128 floats, on purpose
        warnings.filterwarnings("ignore", message=".*save all extracted features.*")
        return KernelInceptionDistance(
            feature=ClassifierFeatures(classifier), subsets=subsets, subset_size=subset_size, normalize=True,
            reset_real_features=False, sync_on_compute=False,
        )


def feed(metric: FrechetInceptionDistance | KernelInceptionDistance, images: Tensor, real: bool, batch_size: int = 1000) -> None:
    """``metric.update`` in batches (a whole split at once would hold GBs of activations)."""
    for start in range(0, len(images), batch_size):
        metric.update(as_unit_images(images[start : start + batch_size]), real=real)


def real_state(metric: FrechetInceptionDistance | KernelInceptionDistance) -> dict:
    """The metric's real-side states (what ``reset_real_features=False`` keeps), to cache on disk."""
    metric.persistent(True)
    try:
        return {k: v for k, v in metric.state_dict().items() if k.startswith("real_")}
    finally:
        metric.persistent(False)


# ---------------------------------------------------------------------------------- the evaluator
class Evaluator:
    """Scores sample sets against MNIST with one classifier; caches what only depends on real data.

    Args:
        classifier: the feature network (see :func:`load_or_train_classifier`).
        data_root: folder holding ``MNIST/raw`` (default: ``$GAN_DATA_ROOT``, else ``./data``).
        directory: where reference statistics and floors are cached (default: the classifier cache).
        k: neighbours for the precision/recall manifolds.
        dataset: the reference data (``MNIST`` or ``FashionMNIST``); default: the one the classifier
            was trained on. Every report names it.
    """

    def __init__(
        self, classifier: MNISTClassifier, data_root: str | Path | None = None, directory: str | Path | None = None,
        k: int = DEFAULT_K, dataset: str | None = None,
    ) -> None:
        self.classifier = classifier.eval()
        self.dataset = dataset or getattr(classifier, "dataset", "MNIST")
        self.data_root = resolve_data_root(data_root)
        self.directory = Path(directory) if directory else cache_dir()
        self.k = int(k)
        self.fingerprint = getattr(classifier, "fingerprint", None) or "unnamed"
        self._reference: dict | None = None
        self._floors: dict[int, dict[str, float]] = {}
        self._train_images: Tensor | None = None

    @classmethod
    def from_recipe(cls, data_root: str | Path | None = None, recipe: str = "full", dataset: str = "MNIST", **kwargs) -> Evaluator:
        """The evaluator of ``dataset`` with the classifier of ``recipe`` trained on that dataset."""
        return cls(load_or_train_classifier(data_root, recipe, dataset=dataset), data_root, dataset=dataset, **kwargs)

    # ------------------------------------------------------------------ cached real-data statistics
    def _cache_path(self, what: str) -> Path:
        return self.directory / f"{cache_prefix(self.dataset)}-{what}-{self.fingerprint}.pt"

    @property
    def reference(self) -> dict:
        """Test-split features and radii, training features, test-to-train distances, and the
        real-side states of torchmetrics' FID and KID; computed once, then read from disk."""
        if self._reference is None:
            path = self._cache_path(f"reference-k{self.k}")
            ref = None
            if path.is_file():
                try:
                    ref = torch.load(path, map_location="cpu", weights_only=True)
                    if ref.get("format") != REFERENCE_FORMAT:
                        ref = None
                except Exception as err:
                    log.warning("%s is not readable (%s): computing the reference statistics again", path, err)
            if ref is None:
                ref = self._compute_reference()
                write_atomically(path, lambda p: torch.save(ref, p))
                release_free_memory()  # the distance blocks and activations of 70000 images
            self._reference = ref
        return self._reference

    def _compute_reference(self) -> dict:
        log.info("computing the %s reference statistics for classifier %s (once; cached)", self.dataset, self.fingerprint)
        test_images, _ = load_split(self.data_root, "test", self.dataset)
        train_feats, _ = predict(self.classifier, self.train_images)
        test_feats, _ = predict(self.classifier, test_images)
        fid, kid = make_fid(self.classifier), make_kid(self.classifier)
        feed(fid, test_images, real=True)
        feed(kid, test_images, real=True)
        return {
            "format": REFERENCE_FORMAT,
            "test_features": test_feats,
            "test_radii": knn_radii(test_feats, self.k),
            "train_features": train_feats,
            "test_nn_train": nearest_distances(test_feats, train_feats),
            "fid_real": real_state(fid),
            "kid_real": real_state(kid),
        }

    @property
    def train_images(self) -> Tensor:
        if self._train_images is None:
            self._train_images = load_split(self.data_root, "train", self.dataset)[0]
        return self._train_images

    # ------------------------------------------------------------------ scoring
    def fid(self, samples: Tensor) -> float:
        """FID alone of ``samples`` (images in [0, 1]) against the test split: the cheap figure."""
        fid = make_fid(self.classifier)
        fid.load_state_dict(dict(self.reference["fid_real"]), strict=False)
        feed(fid, as_unit_images(samples), real=False)
        return float(fid.compute())

    def metrics(self, samples: Tensor, train_index: Tensor | None = None) -> dict[str, float]:
        """Every metric of ``samples`` (images in [0, 1]). ``train_index``: the samples are these
        training images (the floor), so each one's own copy is left out of the memorisation check."""
        samples = as_unit_images(samples)
        n = len(samples)
        if n < MIN_SAMPLES:
            raise ValueError(f"need at least {MIN_SAMPLES} samples to evaluate, got {n}")
        ref = self.reference
        feats, probs = predict(self.classifier, samples)
        hist = class_histogram(probs)
        fid_value = self.fid(samples)
        with torch.random.fork_rng(devices=[]):  # KID draws subsets: reproducible, and the caller's RNG is untouched
            torch.manual_seed(0)
            n_real = len(ref["test_features"])
            kid = make_kid(self.classifier, subset_size=min(KID_SUBSET, n, n_real))
            kid.load_state_dict({k: list(v) for k, v in ref["kid_real"].items()}, strict=False)
            feed(kid, samples, real=False)
            kid_mean, _ = kid.compute()
        precision, recall = precision_recall(ref["test_features"], feats, self.k, ref["test_radii"])
        nn_samples = nearest_distances(feats, ref["train_features"], exclude=train_index)
        nn_test = ref["test_nn_train"]
        return {
            "fid": fid_value,
            "kid": float(kid_mean),
            "classifier_score": classifier_score(probs),
            "precision": precision,
            "recall": recall,
            "coverage": coverage(hist),
            "class_kl": class_kl(hist),
            "memorisation": float(nn_samples.median() / nn_test.median()),
            "copy_fraction": float((nn_samples < torch.quantile(nn_test, COPY_QUANTILE)).double().mean()),
        }

    def floor(self, n: int) -> dict[str, float]:
        """The metrics of ``n`` real training images (a fixed random subset) against the test split."""
        n_train = len(self.train_images)
        if n > n_train:
            log.warning("the floor uses at most %d training images (asked for %d)", n_train, n)
            n = n_train
        if n not in self._floors:
            path = self._cache_path(f"floor-k{self.k}-n{n}")
            floor = None
            if path.is_file():
                try:
                    floor = {k: float(v) for k, v in torch.load(path, weights_only=True).items()}
                except Exception:
                    floor = None
            if floor is None or set(floor) != set(METRICS):
                index = torch.randperm(len(self.train_images), generator=torch.Generator().manual_seed(0))[:n]
                floor = self.metrics(self.train_images[index], train_index=index)
                write_atomically(path, lambda p: torch.save(floor, p))
            self._floors[n] = floor
        return dict(self._floors[n])

    def report(self, samples: Tensor) -> dict:
        """``metrics(samples)`` plus ``floor`` (the same keys for real data), ``n`` and ``dataset``."""
        result: dict = self.metrics(samples)
        result["floor"] = self.floor(len(samples))
        result["n"] = len(samples)
        result["dataset"] = self.dataset
        return result


def format_report(report: Mapping, title: str = "samples") -> str:
    """A readable table: each metric, its value, the floor (real data) and which way is better."""
    floor = report.get("floor", {})
    lines = [f"{'metric':<18}{title:>12}{'floor':>12}   better", "-" * 52]
    better = {**{k: "higher" for k in HIGHER_IS_BETTER}, **{k: "lower" for k in LOWER_IS_BETTER},
              "memorisation": "near 1 (<1: copies)", "copy_fraction": "near floor"}
    for key in METRICS:
        if key not in report:
            continue
        lines.append(f"{key:<18}{_fmt(report[key], key):>12}{_fmt(floor.get(key), key):>12}   {better.get(key, '')}")
    if "n" in report:
        dataset = report.get("dataset", "MNIST")
        lines.append(f"n = {report['n']} samples; floor = {report['n']} real training images vs the 10000 {dataset} test images")
    return "\n".join(lines)


def _fmt(value, key: str = "") -> str:
    if value is None:
        return "-"
    if key == "coverage":
        return f"{int(value)}/10"
    value = float(value)
    return f"{value:.4f}" if abs(value) < 100 else f"{value:.1f}"
