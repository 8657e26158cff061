"""Drawing images from a generator: in eval mode, under no_grad, in [0, 1], the same seed giving the
same images. Used by the sample grids, the in-training evaluation, ``gan.sample`` and ``gan.evaluate``."""

from __future__ import annotations

from pathlib import Path

import torch
from hydra.errors import InstantiationException
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException
from torch import Tensor, nn

from gan.runtime.build import instantiate
from gan.runtime.checkpoints import checkpoint_config, load_checkpoint
from gan.runtime.errors import RunError
from gan.data.images import output_range, to_unit_range
from gan.nets.conditional import ConditionalGenerator
from gan.nets.portable import SUFFIX as EXPORT_SUFFIX, ExportError, load_exported
from gan.noise import NoisePrior


@torch.no_grad()
def generate(generator: nn.Module, z: Tensor, labels: Tensor | None = None) -> Tensor:
    """G(z) (or G(z, labels) for a conditional G) with G in eval mode (BatchNorm uses its running
    statistics), restoring its mode after."""
    was_training = generator.training
    generator.eval()
    try:
        return generator(z) if labels is None else generator(z, labels.to(z.device))
    finally:
        generator.train(was_training)


def unit_images(generator: nn.Module, z: Tensor, labels: Tensor | None = None) -> Tensor:
    """G(z) (or G(z, labels)) mapped to [0, 1] on the CPU, whatever G's output activation."""
    value_range = output_range(getattr(generator, "output_activation", "tanh"))
    return to_unit_range(generate(generator, z, labels), value_range).cpu()


def sample_images(
    generator: nn.Module, noise: NoisePrior, n: int, seed: int = 0, batch_size: int = 500, labels: Tensor | None = None
) -> Tensor:
    """``n`` samples in [0, 1] as an ``(n, 1, 28, 28)`` CPU tensor; the same seed gives the same samples.
    The noise comes from a generator of its own, so the global RNG (the training's) is untouched.
    ``labels`` (``(n,)`` class indices): the classes a conditional G draws, one per sample."""
    device = next(generator.parameters()).device
    g = torch.Generator().manual_seed(seed)
    chunks = []
    for start in range(0, n, batch_size):
        z = noise.sample(min(batch_size, n - start), generator=g).to(device)
        chunk_labels = None if labels is None else labels[start : start + len(z)]
        chunks.append(unit_images(generator, z, chunk_labels))
    return torch.cat(chunks)


def num_classes(generator: nn.Module) -> int | None:
    """The number of classes a conditional generator draws, None for an unconditional one."""
    return getattr(generator, "num_classes", None)


def balanced_labels(n: int, classes: list[int] | range) -> Tensor:
    """``n`` labels split as evenly as possible between ``classes``, in blocks (the first classes
    take one more when ``n`` does not divide): ``balanced_labels(5, [0, 5])`` is ``[0, 0, 0, 5, 5]``."""
    classes = list(classes)
    counts = [n // len(classes) + (i < n % len(classes)) for i in range(len(classes))]
    return torch.tensor(classes, dtype=torch.long).repeat_interleave(torch.tensor(counts))


def class_grid_inputs(noise_columns: Tensor, classes: int) -> tuple[Tensor, Tensor]:
    """``(z, labels)`` of a by-class grid: row k is label k, column j the same noise in every row."""
    z = noise_columns.repeat(classes, 1)
    labels = torch.arange(classes, device=noise_columns.device).repeat_interleave(len(noise_columns))
    return z, labels


EMA_PREFIX = "generator_ema.average."
RAW_PREFIX = "generator."


def load_generator(
    ckpt_path: str | Path, device: str | torch.device = "cpu", ema: bool = True, trust: bool = False
) -> tuple[nn.Module, NoisePrior]:
    """The trained generator (in eval mode) of a checkpoint and the noise prior it was trained on:
    the EMA generator when the checkpoint has one and ``ema`` is true, else the raw G. ``trust``:
    see :func:`gan.runtime.checkpoints.load_checkpoint`. A ``.safetensors`` file written by
    ``gan.export`` gives the generator it holds."""
    generator, noise, _ = load_run(ckpt_path, device, ema, trust)
    return generator, noise


def load_run(
    ckpt_path: str | Path, device: str | torch.device = "cpu", ema: bool = True, trust: bool = False
) -> tuple[nn.Module, NoisePrior, DictConfig]:
    """:func:`load_generator` and the run's config (which dataset it trained on, its conditioning);
    of an export, the part of it the export keeps (``data.dataset``, ``model.generator``, ``.noise``,
    ``.conditional``)."""
    if Path(ckpt_path).suffix == EXPORT_SUFFIX:
        return load_export_run(ckpt_path, device, ema)
    ckpt = load_checkpoint(ckpt_path, trust)
    return rebuild_generator(ckpt, ckpt_path, device, ema)


def uses_ema(ckpt: dict, ema: bool = True) -> bool:
    """Whether the generator of ``ckpt`` comes from its moving average: asked for, and kept by the run."""
    return ema and any(k.startswith(EMA_PREFIX) for k in ckpt["state_dict"])


def rebuild_generator(
    ckpt: dict, ckpt_path: str | Path, device: str | torch.device = "cpu", ema: bool = True
) -> tuple[nn.Module, NoisePrior, DictConfig]:
    """:func:`load_run` of a checkpoint already loaded."""
    cfg = checkpoint_config(ckpt, ckpt_path)
    try:
        generator: nn.Module = instantiate(cfg.model.generator)
        conditional = cfg.model.get("conditional")
        if conditional is not None:  # G was built by the GAN around the config's partial
            # the options a run's config has (older configs lack the newer ones: the class's defaults)
            options = {k: conditional[k] for k in ("label_dim", "label_std", "class_norm") if k in conditional}
            generator = ConditionalGenerator(generator, cfg.model.noise.dim, **options)
        noise = instantiate(cfg.model.noise)
    except (InstantiationException, OmegaConfBaseException) as err:  # a network this version lacks, a key it does not take
        raise RunError(f"{ckpt_path}: its saved config cannot rebuild the generator ({_root_cause(err)}); it was "
                       "written by another version of gan, or its config was edited") from None
    prefix = EMA_PREFIX if uses_ema(ckpt, ema) else RAW_PREFIX
    state = {k[len(prefix):]: v for k, v in ckpt["state_dict"].items() if k.startswith(prefix)}
    try:
        generator.load_state_dict(state)
    except RuntimeError as err:
        # torch lists every difference on a line of its own: the first one says enough
        first = next((line.strip() for line in str(err).splitlines()[1:] if line.strip()), str(err).strip()).rstrip(". ")
        raise RunError(f"{ckpt_path}: the generator's weights do not fit its saved config ({first}); "
                       "the config was edited, or belongs to another run") from None
    return generator.to(device).eval(), noise, cfg


def _root_cause(err: BaseException) -> str:
    """The first line of the innermost cause of ``err`` (Hydra wraps the error it reports)."""
    while err.__cause__ is not None:
        err = err.__cause__
    lines = str(err).strip().splitlines()
    return lines[0].strip() if lines else type(err).__name__


def load_export_run(
    path: str | Path, device: str | torch.device = "cpu", ema: bool = True
) -> tuple[nn.Module, NoisePrior, DictConfig]:
    """:func:`load_run` of a file written by ``gan.export`` (one generator, its EMA or its raw G)."""
    try:
        generator, noise, fields = load_exported(path, device)
    except ExportError as err:
        raise RunError(str(err)) from None
    if not ema and fields["weights"] == "ema":
        raise RunError(f"ema=false: {path} holds only the EMA generator; export the raw G with "
                       "python -m gan.export ckpt=... ema=false")
    noise_cfg = {"_target_": "gan.noise.NoisePrior", **fields["noise"]}
    cfg = OmegaConf.create({"data": {"dataset": fields["dataset"]},
                            "model": {"generator": fields["generator"], "noise": noise_cfg, "conditional": fields["conditional"]}})
    return generator, noise, cfg
