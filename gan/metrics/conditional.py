"""The metrics of a class-conditional generator: does each sample show the class it was drawn for,
and how close is each class's samples to that class's real images.

- ``label_accuracy``: the share of samples that the metrics' classifier (:mod:`gan.metrics.classifier`,
  trained on the same dataset) reads as the label they were drawn for. Real test images with their
  own labels score the classifier's test accuracy; shuffled labels about 0.1.
- ``intra_fid``: the mean over classes of the FID between the samples drawn for a class and that
  class's test images (Miyato & Koyama 2018), in the classifier's features. With few samples per
  class it is biased upwards, like any FID: compare figures at equal ``n``.
- ``per_class``: for each class, its FID and its label accuracy.
- ``worst_class`` and ``worst_class_accuracy``: the class whose samples are least often read as
  that class, and that share; ``other_classes_accuracy``: the label accuracy of every other
  class's samples. One class far below the rest is the single-class stall of a conditional G
  (:mod:`gan.callbacks.diagnostics` warns about it).
"""

from __future__ import annotations

from torch import Tensor

from gan.data import load_split
from gan.metrics.classifier import predict
from gan.metrics.evaluator import Evaluator
from gan.metrics.scores import frechet_distance, label_accuracy

# the class names of each dataset, for tables and captions
CLASS_NAMES = {
    "MNIST": [str(d) for d in range(10)],
    "FashionMNIST": ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                     "Ankle boot"],
}
MIN_PER_CLASS = 2  # a covariance needs at least two samples


def class_names(dataset: str) -> list[str]:
    return CLASS_NAMES.get(dataset, [str(d) for d in range(10)])


def conditional_metrics(evaluator: Evaluator, samples: Tensor, labels: Tensor) -> dict:
    """``label_accuracy``, ``intra_fid``, ``per_class`` (``{class: {"fid", "label_accuracy", "n"}}``),
    ``worst_class``, ``worst_class_accuracy`` and ``other_classes_accuracy`` of ``samples`` drawn for
    ``labels``, against the test split of the evaluator's dataset."""
    feats, probs = predict(evaluator.classifier, samples)
    test_labels = load_split(evaluator.data_root, "test", evaluator.dataset)[1]
    test_feats = evaluator.reference["test_features"]
    per_class = {}
    for c in sorted(set(labels.tolist())):
        mine = labels == c
        row = {"n": int(mine.sum()), "label_accuracy": label_accuracy(probs[mine], labels[mine])}
        if row["n"] >= MIN_PER_CLASS:
            row["fid"] = frechet_distance(feats[mine], test_feats[test_labels == c])
        per_class[int(c)] = row
    fids = [row["fid"] for row in per_class.values() if "fid" in row]
    worst = min(per_class, key=lambda c: per_class[c]["label_accuracy"])
    result = {"label_accuracy": label_accuracy(probs, labels), "per_class": per_class, "worst_class": worst,
              "worst_class_accuracy": per_class[worst]["label_accuracy"]}
    others = labels != worst
    if others.any():
        result["other_classes_accuracy"] = label_accuracy(probs[others], labels[others])
    if fids:
        result["intra_fid"] = sum(fids) / len(fids)
    return result


def summary(result: dict) -> dict[str, float]:
    """The scalars of :func:`conditional_metrics` (``label_accuracy``, ``intra_fid``, the worst class), without the rows."""
    return {k: float(v) for k, v in result.items() if k != "per_class"}


def format_per_class(result: dict, dataset: str = "MNIST") -> str:
    """The per-class rows of the printed table: class, name, samples, label accuracy, FID."""
    names = class_names(dataset)
    lines = [f"{'class':<6}{'name':<14}{'n':>7}{'label acc':>12}{'FID':>10}", "-" * 49]
    for c, row in result["per_class"].items():
        fid = f"{row['fid']:.3f}" if "fid" in row else "-"
        lines.append(f"{c:<6}{names[c]:<14}{row['n']:>7}{row['label_accuracy']:>12.4f}{fid:>10}")
    lines.append(f"label_accuracy {result['label_accuracy']:.4f}"
                 + (f", intra_fid {result['intra_fid']:.3f} (mean of the per-class FIDs)" if "intra_fid" in result else ""))
    lines.append(f"worst class {result['worst_class']} ({names[result['worst_class']]}): label accuracy "
                 f"{result['worst_class_accuracy']:.4f}"
                 + (f"; the other classes {result['other_classes_accuracy']:.4f}" if "other_classes_accuracy" in result else ""))
    return "\n".join(lines)
