"""Draw samples from a trained run: ``python -m gan.sample ckpt=PATH [mode=grid] n=64 out=FILE.png [seed=S]``.

Modes:

- ``grid`` (default): ``n`` samples; ``out=*.png`` writes a grid (``nrow`` per row), ``out=*.pt`` an
  ``(n, 1, 28, 28)`` float tensor in [0, 1].
- ``interpolate``: for each of ``pairs`` random pairs of latent vectors, two rows of ``steps``
  images walking from one to the other: linearly, then spherically (slerp, White 2016).
- ``by_class``: a row per digit 0-9 of ``per_class`` samples the feature classifier of the run's
  dataset (:mod:`gan.metrics.classifier`, ``recipe=full``) assigns to it, in the order drawn; up to
  ``max_samples`` are drawn, and a digit the generator rarely makes leaves black cells. On a
  conditional checkpoint row k is drawn *for* label k instead, the same noise down each column.

``digits=[3]`` (a conditional checkpoint only: ``model.conditional``) draws only those classes,
``n`` split evenly between them (``digits=[0,5]``); the default is every class, balanced. On
Fashion-MNIST the digits are the class indices (0 T-shirt/top ... 9 Ankle boot).

The generator is rebuilt from the run's saved config and loaded from the checkpoint: its moving
average (``model.ema``) when the run kept one, the raw G with ``ema=false``; ``ckpt=`` also takes a
``.safetensors`` file written by ``gan.export``, which holds one of the two. It draws in eval mode
under ``no_grad``, and the same ``seed`` gives the same images.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch
from torch import Tensor, nn
from torchvision.utils import save_image

from gan.runtime.cli import MAX_SEED, UsageError, device_arg, parse_args, whole_number, writable_output
from gan.runtime.config import boolean, fmt, is_int
from gan.runtime.errors import ConfigError, RunError
from gan.runtime.files import write_atomically
from gan.metrics.generate import (
    balanced_labels,
    class_grid_inputs,
    load_generator,
    load_run,
    num_classes,
    sample_images,
    unit_images,
)
from gan.data.idx import DataFileError
from gan.metrics.classifier import RECIPES, load_or_train_classifier, predict
from gan.noise import NoisePrior

OUTPUT_KINDS = (".png", ".pt")
MODES = ("grid", "interpolate", "by_class")
USAGE = (
    "usage: python -m gan.sample ckpt=PATH.ckpt|PATH.safetensors [mode=grid|interpolate|by_class] [out=FILE.png|FILE.pt] [seed=0] [ema=true]\n"
    "  grid: [n=64] [nrow=8]   interpolate: [pairs=4] [steps=10]   by_class: [per_class=8] [max_samples=10000] [recipe=full]\n"
    "  conditional checkpoints: [digits=[3] or [0,5]: only these classes, n split evenly]"
)


def chosen_classes(digits, classes: int | None) -> list[int] | None:
    """The classes ``digits=`` asks for: None (not given: every class of a conditional G), else a
    checked list; a ``ValueError`` naming ``digits=`` for an unconditional G or a bad class."""
    if digits is None:
        return None
    if classes is None:
        raise ValueError(f"digits={fmt(digits)}: this checkpoint's generator is unconditional (trained without "
                         "model.conditional), so it cannot be asked for classes; train with experiment=conditional")
    ok = not isinstance(digits, (str, bytes)) and hasattr(digits, "__iter__") and len(digits) > 0
    if not (ok and all(is_int(d) and 0 <= d < classes for d in digits)):
        raise ValueError(f"digits={fmt(digits)}: must be a non-empty list of class indices 0-{classes - 1}, e.g. [3] or [0,5]")
    return sorted({int(d) for d in digits})


def conditional_by_class(generator: nn.Module, noise: NoisePrior, classes: list[int], per_class: int, seed: int = 0) -> Tensor:
    """Row k drawn for ``classes[k]``, column j from the same noise in every row."""
    columns = noise.sample(per_class, generator=torch.Generator().manual_seed(seed))
    z, rows = class_grid_inputs(columns, len(classes))
    labels = torch.tensor(classes)[rows]
    return unit_images(generator, z.to(next(generator.parameters()).device), labels)


def write_samples(images: Tensor, out: str | Path, nrow: int = 8) -> Path:
    out = Path(out)
    if out.suffix == ".pt":
        return write_atomically(out, lambda p: torch.save(images, p))
    return write_atomically(out, lambda p: save_image(images, p, nrow=nrow, padding=2, pad_value=1.0))


def slerp(a: Tensor, b: Tensor, t: float) -> Tensor:
    """Spherical interpolation between the rows of ``a`` and ``b`` (linear where they are parallel)."""
    dot = (a * b).sum(1, keepdim=True) / (a.norm(dim=1, keepdim=True) * b.norm(dim=1, keepdim=True)).clamp_min(1e-12)
    omega = torch.arccos(dot.clamp(-1.0, 1.0))
    sin = torch.sin(omega)
    parallel = sin.abs() < 1e-6
    safe = torch.where(parallel, torch.ones_like(sin), sin)
    spherical = (torch.sin((1 - t) * omega) / safe) * a + (torch.sin(t * omega) / safe) * b
    return torch.where(parallel, (1 - t) * a + t * b, spherical)


def interpolation_latents(noise: NoisePrior, pairs: int, steps: int, seed: int = 0) -> Tensor:
    """``(2 * pairs * steps, dim)`` latents: per pair, a linear row then a spherical row of ``steps``."""
    g = torch.Generator().manual_seed(seed)
    a, b = noise.sample(pairs, generator=g), noise.sample(pairs, generator=g)
    ts = torch.linspace(0, 1, steps).tolist()
    rows = []
    for i in range(pairs):
        rows.append(torch.stack([(1 - t) * a[i] + t * b[i] for t in ts]))
        rows.append(torch.cat([slerp(a[i : i + 1], b[i : i + 1], t) for t in ts]))
    return torch.cat(rows)


def interpolate_images(generator: nn.Module, noise: NoisePrior, pairs: int = 4, steps: int = 10, seed: int = 0) -> Tensor:
    """``2 * pairs`` rows of ``steps`` images in [0, 1] (see :func:`interpolation_latents`)."""
    device = next(generator.parameters()).device
    return unit_images(generator, interpolation_latents(noise, pairs, steps, seed).to(device))


def images_by_class(
    generator: nn.Module, noise: NoisePrior, classifier: nn.Module, per_class: int = 8, max_samples: int = 10000,
    seed: int = 0, batch_size: int = 500,
) -> tuple[Tensor, Tensor]:
    """``(images (10 * per_class, 1, 28, 28), counts (10,))``: row d holds the first ``per_class``
    samples the classifier assigns to digit d (black where fewer were found); ``counts`` is how many
    of the samples drawn went to each digit. Draws until every row is full or ``max_samples`` are drawn."""
    rows: list[list[Tensor]] = [[] for _ in range(10)]
    counts = torch.zeros(10, dtype=torch.long)
    drawn, chunk_seed = 0, seed
    while drawn < max_samples and min(len(r) for r in rows) < per_class:
        m = min(batch_size, max_samples - drawn)
        images = sample_images(generator, noise, m, seed=chunk_seed, batch_size=batch_size)
        labels = predict(classifier, images)[1].argmax(1)
        counts += torch.bincount(labels, minlength=10)
        for image, label in zip(images, labels.tolist()):
            if len(rows[label]) < per_class:
                rows[label].append(image)
        drawn, chunk_seed = drawn + m, chunk_seed + 1_000_003
    blank = torch.zeros(1, 28, 28)
    grid = [img for r in rows for img in (r + [blank] * (per_class - len(r)))]
    return torch.stack(grid), counts


KEYS = {"ckpt", "mode", "out", "seed", "ema", "device", "trust_checkpoint", "n", "nrow", "pairs", "steps",
        "per_class", "max_samples", "recipe", "data_root", "digits"}


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        args = parse_args(argv, KEYS)
        if args.get("ckpt") is None:
            raise UsageError("ckpt=PATH is required: the checkpoint to draw from")
        mode = str(args.get("mode", "grid"))
        if mode not in MODES:
            raise UsageError(f"mode={mode} is unknown: use one of {', '.join(MODES)}")
        sizes = {
            "grid": {"n": whole_number(args, "n", 64, least=1), "nrow": whole_number(args, "nrow", 8, least=1)},
            "interpolate": {"pairs": whole_number(args, "pairs", 4, least=1), "steps": whole_number(args, "steps", 10, least=2)},
            "by_class": {"per_class": whole_number(args, "per_class", 8, least=1),
                         "max_samples": whole_number(args, "max_samples", 10000, least=1)},
        }[mode]
        seed = whole_number(args, "seed", 0, least=0, most=MAX_SEED)
        if mode == "by_class" and str(args.get("recipe", "full")) not in RECIPES:
            raise UsageError(f"recipe={args.recipe} is unknown: use one of {', '.join(RECIPES)}")
        device = device_arg(args)
        ema = boolean("ema", args.get("ema", True))
        trust = boolean("trust_checkpoint", args.get("trust_checkpoint", False))
        out = writable_output("out", str(args.get("out", "samples.png")), OUTPUT_KINDS)
    except (UsageError, ConfigError) as err:
        print(f"error: {err}\n{USAGE}", file=sys.stderr)
        return 2
    extra = None
    try:
        generator, noise, cfg = load_run(str(args.ckpt), device, ema=ema, trust=trust)
        classes = chosen_classes(args.get("digits"), num_classes(generator))
        if num_classes(generator) is not None and classes is None:
            classes = list(range(num_classes(generator)))
        if mode == "grid":
            labels = None if classes is None else balanced_labels(sizes["n"], classes)
            images, nrow = sample_images(generator, noise, sizes["n"], seed=seed, labels=labels), sizes["nrow"]
            note = f"{sizes['n']} samples" + ("" if classes is None else f" of classes {classes}, split evenly")
        elif mode == "by_class" and classes is not None:
            images, nrow = conditional_by_class(generator, noise, classes, sizes["per_class"], seed), sizes["per_class"]
            note = f"row k drawn for class {classes}[k], the same noise down each column"
        elif mode == "interpolate":
            images = interpolate_images(generator, noise, sizes["pairs"], sizes["steps"], seed=seed)
            nrow = sizes["steps"]
            note = f"{sizes['pairs']} interpolations (rows: linear, then spherical, per pair)"
        else:
            classifier = load_or_train_classifier(args.get("data_root"), str(args.get("recipe", "full")),
                                                  dataset=str(cfg.data.get("dataset", "MNIST")))
            images, counts = images_by_class(generator, noise, classifier, sizes["per_class"], sizes["max_samples"], seed=seed)
            nrow = sizes["per_class"]
            total = int(counts.sum())
            note = f"a row per digit; share of {total} samples per digit: " + ", ".join(
                f"{d}: {100 * c / total:.1f}%" for d, c in enumerate(counts.tolist()))
            short = [d for d in range(10) if counts[d] < sizes["per_class"]]
            if short:
                extra = f"fewer than {sizes['per_class']} samples of digit(s) {short}: their rows end in black cells"
        path = write_samples(images, out, nrow=nrow)
    except (RunError, DataFileError, ValueError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(f"wrote {path}: {note}")
    if extra:
        print(extra)
    return 0


if __name__ == "__main__":
    sys.exit(main())
