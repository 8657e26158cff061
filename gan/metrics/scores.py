"""The metrics that are pure functions of classifier outputs or features (no I/O, no state).

``probs``: ``(n, 10)`` class probabilities; ``features``: ``(n, d)`` penultimate-layer features.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

DEFAULT_K = 3
COVERAGE_SHARE = 0.05
NUM_CLASSES = 10


def class_histogram(probs: Tensor) -> Tensor:
    """Share of samples whose most likely class is each digit, ``(10,)`` summing to 1."""
    return torch.bincount(probs.argmax(1), minlength=NUM_CLASSES).double() / len(probs)


def coverage(histogram: Tensor, share: float = COVERAGE_SHARE) -> int:
    """How many classes get at least ``share`` of the samples."""
    return int((histogram >= share).sum())


def class_kl(histogram: Tensor) -> float:
    """KL(histogram || uniform) in nats: 0 when balanced, log(10) when every sample is one class."""
    h = histogram[histogram > 0].double()
    return float((h * torch.log(h * len(histogram))).sum())


def classifier_score(probs: Tensor, eps: float = 1e-12) -> float:
    """exp(E_x KL(p(y|x) || p(y))): 1 for uninformative or single-class samples, 10 at best."""
    p = probs.double()
    marginal = p.mean(0, keepdim=True)
    kl = (p * (torch.log(p + eps) - torch.log(marginal + eps))).sum(1).mean()
    return float(torch.exp(kl))


# the distance matrices below are built a block of rows at a time, each block at most this big:
# a 10000-sample evaluation against the 60000 training images held 1000 x 60000 distances (and
# cdist's work space) at once, 400 MB of the run's peak memory
BLOCK_BYTES = 48 * 2**20


def block_rows(columns: int, chunk: int | None = None) -> int:
    """Rows per block of a distance matrix with ``columns`` columns (``chunk`` if given)."""
    return chunk or max(1, BLOCK_BYTES // (4 * max(1, columns)))


def knn_radii(features: Tensor, k: int = DEFAULT_K, chunk: int | None = None) -> Tensor:
    """Distance from each point to its k-th nearest *other* point of the same set."""
    if len(features) <= k:
        raise ValueError(f"need more than k={k} points for k-NN radii, got {len(features)}")
    radii = []
    chunk = block_rows(len(features), chunk)
    for start in range(0, len(features), chunk):
        d = torch.cdist(features[start : start + chunk], features)
        radii.append(d.topk(k + 1, dim=1, largest=False).values[:, k])  # index 0 is the point itself
    return torch.cat(radii)


def inside_manifold(queries: Tensor, points: Tensor, radii: Tensor, chunk: int | None = None) -> Tensor:
    """For each query, whether it lies within ``radii[j]`` of some ``points[j]``."""
    inside = []
    chunk = block_rows(len(points), chunk)
    for start in range(0, len(queries), chunk):
        d = torch.cdist(queries[start : start + chunk], points)
        inside.append((d <= radii.unsqueeze(0)).any(1))
    return torch.cat(inside)


def precision_recall(
    real: Tensor, fake: Tensor, k: int = DEFAULT_K, real_radii: Tensor | None = None
) -> tuple[float, float]:
    """Improved precision and recall (Kynkaanniemi et al. 2019) of ``fake`` against ``real`` features."""
    real_radii = knn_radii(real, k) if real_radii is None else real_radii
    precision = inside_manifold(fake, real, real_radii).double().mean()
    recall = inside_manifold(real, fake, knn_radii(fake, k)).double().mean()
    return float(precision), float(recall)


def nearest_distances(queries: Tensor, reference: Tensor, exclude: Tensor | None = None, chunk: int | None = None) -> Tensor:
    """Distance from each query to its nearest reference point; ``exclude[i]`` (an index into
    ``reference``) is skipped for query ``i`` (leave-one-out, for queries drawn from ``reference``)."""
    out = []
    chunk = block_rows(len(reference), chunk)
    for start in range(0, len(queries), chunk):
        d = torch.cdist(queries[start : start + chunk], reference)
        if exclude is not None:
            rows = torch.arange(len(d))
            d[rows, exclude[start : start + chunk]] = math.inf
        out.append(d.min(1).values)
    return torch.cat(out)


def label_accuracy(probs: Tensor, labels: Tensor) -> float:
    """Share of samples whose most likely class is the label they were drawn for."""
    return float((probs.argmax(1) == labels.to(probs.device)).double().mean())


def frechet_distance(a: Tensor, b: Tensor) -> float:
    """Frechet distance between Gaussians fitted to the feature sets ``a`` and ``b`` ``(n, d)``:
    ||mu_a - mu_b||^2 + tr(S_a + S_b - 2 (S_a S_b)^(1/2)), the trace of the root from the eigenvalues
    of S_a S_b (real and non-negative up to rounding), in double precision."""
    a, b = a.double(), b.double()
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = torch.cov(a.T), torch.cov(b.T)
    root_trace = torch.linalg.eigvals(cov_a @ cov_b).real.clamp_min(0).sqrt().sum()
    return float((mu_a - mu_b).square().sum() + cov_a.trace() + cov_b.trace() - 2 * root_trace)
