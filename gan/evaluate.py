"""Score a trained generator, or a file of samples, against MNIST, beside the floor real data gets.

    python -m gan.evaluate ckpt=PATH [n=10000] [seed=0] [out=FILE.json]
    python -m gan.evaluate samples=FILE.pt [n=N] [out=FILE.json]

``ckpt=`` takes a checkpoint written by gan.train or a ``.safetensors`` file written by gan.export.

``samples=`` takes an ``(n, 1, 28, 28)`` (or ``(n, 28, 28)``) tensor saved with ``torch.save``: floats
in [0, 1], or in [-1, 1] (recognised by a negative minimum), or uint8 in [0, 255]; ``n=`` then keeps
the first ``n``. Other options: ``recipe=full|quick`` (the feature classifier; see
:mod:`gan.metrics.classifier`), ``data_root=PATH`` (a folder holding ``MNIST/raw``; default
``$GAN_DATA_ROOT``), ``device=cpu`` (where G runs), ``dataset=MNIST|FashionMNIST`` (what a samples
file is measured against; a checkpoint's own dataset is read from its config).

A conditional checkpoint draws every class, balanced, and adds ``label_accuracy`` (the share the
dataset's classifier reads as the requested class), ``intra_fid`` (the mean of the per-class FIDs)
``per_class`` (each class's ``n``, ``label_accuracy``, ``fid``; rows in the printed table), and
``worst_class``, ``worst_class_accuracy`` and ``other_classes_accuracy`` (the class least often read
as itself, its share, and the share of every other class's samples).

It prints a table of every metric of :mod:`gan.metrics.evaluator` with the floor (``n`` real training
images against the MNIST test split) beside it, and with ``out=`` writes JSON whose top-level keys are
the metric names, ``floor`` (the same keys for real data), ``n`` and ``dataset``. A bad input ends with one
``error:`` line and exit status 1 (2 for a usage error).
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import torch
from torch import Tensor

from gan.runtime.cli import MAX_SEED, UsageError, device_arg, parse_args, run_tool, whole_number, writable_output
from gan.runtime.config import boolean
from gan.runtime.errors import RunError
from gan.runtime.files import write_atomically
from gan.metrics.generate import balanced_labels, load_run, num_classes, sample_images
from gan.data.datamodule import DATASETS
from gan.data.idx import DataFileError
from gan.metrics.classifier import RECIPES
from gan.metrics.conditional import conditional_metrics, format_per_class
from gan.metrics.evaluator import MIN_SAMPLES, Evaluator, format_report

log = logging.getLogger("gan.evaluate")

USAGE = (
    "usage: python -m gan.evaluate ckpt=PATH.ckpt|PATH.safetensors [n=10000] [seed=0] [out=FILE.json]\n"
    "       python -m gan.evaluate samples=FILE.pt [n=N] [out=FILE.json]\n"
    "  options: recipe=full|quick  data_root=PATH  device=cpu  ema=true|false (a checkpoint's EMA G or raw G)  trust_checkpoint=false\n"
    "           dataset=MNIST|FashionMNIST (of a samples file)"
)
KEYS = {"ckpt", "samples", "n", "seed", "out", "recipe", "data_root", "device", "ema", "trust_checkpoint", "dataset"}


class SamplesError(ValueError):
    """A samples file that is not an image tensor the evaluation can use."""


def load_samples(path: str | Path) -> Tensor:
    """The images of a samples file as a float ``(n, 1, 28, 28)`` tensor in [0, 1]."""
    path = Path(path)
    if not path.is_file():
        raise SamplesError(f"samples={path}: no such file")
    try:
        x = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise SamplesError(f"samples={path} is not a readable tensor file ({type(err).__name__}); "
                           "save one with torch.save(images, path)") from None
    if not isinstance(x, Tensor):
        raise SamplesError(f"samples={path} holds a {type(x).__name__}, not a tensor of images")
    return to_unit_images(x, f"samples={path}")


def to_unit_images(x: Tensor, what: str = "samples") -> Tensor:
    """Check shape and range; map [-1, 1] floats and uint8 to [0, 1]."""
    if x.dim() == 3 and tuple(x.shape[1:]) == (28, 28):
        x = x.unsqueeze(1)
    if x.dim() != 4 or tuple(x.shape[1:]) != (1, 28, 28):
        raise SamplesError(f"{what} has shape {tuple(x.shape)}; expected (n, 1, 28, 28) MNIST-sized images")
    if len(x) == 0:
        raise SamplesError(f"{what} holds no images (shape {tuple(x.shape)})")
    if x.dtype == torch.uint8:
        return x.float() / 255.0
    if not x.is_floating_point():
        raise SamplesError(f"{what} has dtype {x.dtype}; expected floats in [0, 1] or [-1, 1], or uint8")
    x = x.float()
    if not bool(torch.isfinite(x).all()):
        raise SamplesError(f"{what} holds NaN or infinite values")
    low, high = float(x.min()), float(x.max())
    if low < 0:
        if low < -1.001 or high > 1.001:
            raise SamplesError(f"{what} has values in [{low:.3g}, {high:.3g}]; expected [0, 1] or [-1, 1]")
        return ((x + 1) / 2).clamp_(0, 1)
    if high > 1.001:
        raise SamplesError(f"{what} has values up to {high:.3g}; expected [0, 1] or [-1, 1] (or a uint8 tensor for 0-255)")
    return x.clamp_(0, 1)


def run(args) -> dict:
    """Evaluate as ``args`` ask (checked by :func:`check_args`); prints the table, returns the report."""
    n = whole_number(args, "n", None, least=1)
    dataset, labels = str(args.get("dataset", "MNIST")), None
    if args.get("samples") is not None:
        samples = load_samples(str(args.samples))
        if n is not None:
            if n > len(samples):
                raise SamplesError(f"n={n}, but samples={args.samples} holds only {len(samples)} images")
            samples = samples[:n]
        source = f"samples {args.samples}"
    else:
        ema, trust = boolean("ema", args.get("ema", True)), boolean("trust_checkpoint", args.get("trust_checkpoint", False))
        generator, noise, cfg = load_run(str(args.ckpt), device_arg(args), ema=ema, trust=trust)
        dataset = str(cfg.data.get("dataset", "MNIST"))
        n = 10000 if n is None else n
        seed = whole_number(args, "seed", 0, least=0)
        if num_classes(generator) is not None:  # a conditional G: every class, balanced
            labels = balanced_labels(n, range(num_classes(generator)))
        samples = sample_images(generator, noise, n, seed=seed, labels=labels)
        source = f"checkpoint {args.ckpt} (seed {seed})"

    if len(samples) < MIN_SAMPLES:
        raise SamplesError(f"{source} gives {len(samples)} images; need at least {MIN_SAMPLES}")
    evaluator = Evaluator.from_recipe(args.get("data_root"), str(args.get("recipe", "full")), dataset=dataset)
    report = evaluator.report(samples)
    if labels is not None:
        report |= conditional_metrics(evaluator, samples, labels)
    clf = evaluator.classifier
    print(f"{source}: {len(samples)} images; features of the {dataset} classifier '{clf.recipe.name}' "
          f"({clf.fingerprint}, test accuracy {clf.test_accuracy:.4f})")
    print(format_report(report))
    if labels is not None:
        print(format_per_class(report, dataset))
    if args.get("out") is not None:
        path = write_atomically(Path(str(args.out)), lambda p: p.write_text(json.dumps(report, indent=2) + "\n"))
        print(f"wrote {path}")
    return report


def check_args(argv: list[str]):
    """The command line, every value checked (and ``out=`` tried) before the evaluation runs."""
    args = parse_args(argv, KEYS)
    if (args.get("ckpt") is None) == (args.get("samples") is None):
        raise UsageError("give exactly one of ckpt=PATH or samples=FILE.pt")
    whole_number(args, "n", None, least=1)
    whole_number(args, "seed", 0, least=0, most=MAX_SEED)
    for key, known in (("recipe", RECIPES), ("dataset", DATASETS)):
        if args.get(key) is not None and str(args[key]) not in known:
            raise UsageError(f"{key}={args[key]} is unknown: use one of {', '.join(known)}")
    device_arg(args)
    boolean("ema", args.get("ema", True))
    boolean("trust_checkpoint", args.get("trust_checkpoint", False))
    if args.get("out") is not None:
        writable_output("out", str(args.out), (".json",))
    return args


def main(argv: list[str] | None = None) -> int:
    return run_tool(list(sys.argv[1:] if argv is None else argv), check_args, run, USAGE,
                    (RunError, DataFileError, ValueError, OSError))


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    sys.exit(main())
