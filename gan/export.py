"""Share a trained generator without pickles: ``python -m gan.export ckpt=PATH.ckpt out=FILE.safetensors``.

It writes the generator's weights (the run's EMA G; ``ema=false``: the raw G) as a safetensors file
whose metadata holds what rebuilding and using it takes: the generator's config, its conditioning,
the noise prior, the dataset, the output activation and pixel range, the iteration and the version
of gan, each checked against a SHA-256 on load (the layout: :mod:`gan.nets.portable`).

``gan.sample`` and ``gan.evaluate`` take the file as ``ckpt=``; in plain Python,
``gan.nets.portable.load_exported_generator(path)`` loads it with torch, safetensors and
``gan.nets`` alone. The file is written through a temporary file and read back before it takes
``out``'s name, so an existing ``out`` is replaced only by a whole, loadable export.
"""

from __future__ import annotations

import importlib.metadata
import sys
from pathlib import Path

from omegaconf import DictConfig, OmegaConf
from safetensors.torch import save
from torch import nn

from gan.data.images import output_range
from gan.metrics.generate import num_classes, rebuild_generator, uses_ema
from gan.nets.portable import SUFFIX, FORMAT, FORMAT_VERSION, ExportError, generator_class, load_exported, seal
from gan.runtime.checkpoints import load_checkpoint
from gan.runtime.cli import UsageError, parse_args, run_tool, writable_output
from gan.runtime.config import boolean
from gan.runtime.errors import RunError
from gan.runtime.files import write_atomically

CHECKPOINT_SUFFIX = ".ckpt"
NOISE_TARGET = "gan.noise.NoisePrior"
KEYS = {"ckpt", "out", "ema", "trust_checkpoint"}
USAGE = "usage: python -m gan.export ckpt=PATH.ckpt [out=generator.safetensors] [ema=true] [trust_checkpoint=false]"


def template_version() -> str:
    try:
        return importlib.metadata.version("gan")
    except importlib.metadata.PackageNotFoundError:  # run from a source tree that was not installed
        return "unknown"


def export_fields(generator: nn.Module, cfg: DictConfig, weights: str, iteration: int | None) -> dict:
    """The metadata fields (:data:`gan.nets.portable.FIELDS`) of ``generator``, rebuilt from ``cfg``."""
    spec = OmegaConf.to_container(cfg.model.generator, resolve=True)
    spec.pop("_partial_", None)  # how Hydra hands a conditional run's G to its wrapper; the loader wraps it itself
    generator_class(spec.get("_target_"), "model.generator")  # the loader will build it, so refuse what it would
    noise = OmegaConf.to_container(cfg.model.noise, resolve=True)
    if noise.pop("_target_", None) != NOISE_TARGET:
        raise ExportError(f"model.noise: the export rebuilds only {NOISE_TARGET}, not {cfg.model.noise.get('_target_')}")
    conditional = None
    if num_classes(generator) is not None:
        conditional = {"num_classes": generator.num_classes, "label_dim": generator.embed.embedding_dim,
                       "label_std": float(cfg.model.conditional.get("label_std", 1.0)),
                       "class_norm": bool(generator.class_norms)}
    activation = getattr(generator, "output_activation", "tanh")
    return {
        "format": FORMAT, "format_version": FORMAT_VERSION, "generator": spec, "conditional": conditional,
        "noise": noise, "dataset": str(cfg.data.get("dataset", "MNIST")), "output_activation": activation,
        "value_range": list(output_range(activation)), "weights": weights, "iteration": iteration,
        "template_version": template_version(),
    }


def export(ckpt_path: str | Path, out: str | Path, ema: bool = True, trust: bool = False) -> dict:
    """Write the export of ``ckpt_path`` to ``out`` (atomically, read back before it is renamed);
    its metadata fields."""
    ckpt = load_checkpoint(ckpt_path, trust)
    generator, _, cfg = rebuild_generator(ckpt, ckpt_path, "cpu", ema)
    iteration = ckpt["gan"].get("iteration")
    fields = export_fields(generator, cfg, "ema" if uses_ema(ckpt, ema) else "raw",
                           None if iteration is None else int(iteration))
    state = {name: t.detach().cpu().clone().contiguous() for name, t in generator.state_dict().items()}
    metadata = seal(fields, state)

    def write(tmp: Path) -> None:
        tmp.write_bytes(save(state, metadata))  # an ordinary file's permissions (save_file makes it owner-only)
        load_exported(tmp)  # a file that does not load back never takes out's name

    write_atomically(out, write)
    return fields


def check_args(argv: list[str]):
    """The command line, every value checked (and ``out=`` tried) before the checkpoint is read."""
    args = parse_args(argv, KEYS)
    if args.get("ckpt") is None:
        raise UsageError("ckpt=PATH is required: the checkpoint (.ckpt) written by gan.train")
    ckpt = Path(str(args.ckpt)).expanduser()
    if ckpt.suffix != CHECKPOINT_SUFFIX:
        raise UsageError(f"ckpt={args.ckpt} must end in {CHECKPOINT_SUFFIX}: a checkpoint written by gan.train")
    if not ckpt.is_file():
        raise UsageError(f"ckpt={args.ckpt}: no such file")
    boolean("ema", args.get("ema", True))
    boolean("trust_checkpoint", args.get("trust_checkpoint", False))
    writable_output("out", str(args.get("out", "generator" + SUFFIX)), (SUFFIX,))
    return args


def main(argv: list[str] | None = None) -> int:
    return run_tool(list(sys.argv[1:] if argv is None else argv), check_args, export_as_asked, USAGE,
                    (RunError, ValueError, OSError))


def export_as_asked(args: DictConfig) -> None:
    """:func:`export` as the checked command line asks, and the line that says what was written."""
    ckpt, out = Path(str(args.ckpt)).expanduser(), Path(str(args.get("out", "generator" + SUFFIX))).expanduser()
    fields = export(ckpt, out, ema=args.get("ema", True), trust=args.get("trust_checkpoint", False))
    which = "EMA generator" if fields["weights"] == "ema" else "raw generator"
    if args.get("ema", True) and fields["weights"] == "raw":
        which += " (the run kept no EMA)"
    kind = "conditional " if fields["conditional"] else ""
    print(f"wrote {out}: the {kind}{which} of {ckpt} (iteration {fields['iteration']}, {fields['dataset']}); "
          "load it with gan.nets.portable.load_exported_generator, or pass it to gan.sample as ckpt=")


if __name__ == "__main__":
    sys.exit(main())
