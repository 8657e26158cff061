"""Drawing images from a generator: in eval mode, under no_grad, in [0, 1], the same seed giving the
same images. Used by the sample grids, the in-training evaluation, ``gan.sample`` and ``gan.evaluate``."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor, nn

from gan.build import instantiate
from gan.checkpoints import checkpoint_config, load_checkpoint
from gan.errors import RunError
from gan.images import output_range, to_unit_range
from gan.noise import NoisePrior


@torch.no_grad()
def generate(generator: nn.Module, z: Tensor) -> Tensor:
    """G(z) with G in eval mode (BatchNorm uses its running statistics), restoring its mode after."""
    was_training = generator.training
    generator.eval()
    try:
        return generator(z)
    finally:
        generator.train(was_training)


def unit_images(generator: nn.Module, z: Tensor) -> Tensor:
    """G(z) mapped to [0, 1] on the CPU, whatever G's output activation."""
    value_range = output_range(getattr(generator, "output_activation", "tanh"))
    return to_unit_range(generate(generator, z), value_range).cpu()


def sample_images(generator: nn.Module, noise: NoisePrior, n: int, seed: int = 0, batch_size: int = 500) -> Tensor:
    """``n`` samples in [0, 1] as an ``(n, 1, 28, 28)`` CPU tensor; the same seed gives the same samples.
    The noise comes from a generator of its own, so the global RNG (the training's) is untouched."""
    device = next(generator.parameters()).device
    g = torch.Generator().manual_seed(seed)
    chunks = []
    for start in range(0, n, batch_size):
        z = noise.sample(min(batch_size, n - start), generator=g).to(device)
        chunks.append(unit_images(generator, z))
    return torch.cat(chunks)


EMA_PREFIX = "generator_ema.average."
RAW_PREFIX = "generator."


def load_generator(
    ckpt_path: str | Path, device: str | torch.device = "cpu", ema: bool = True, trust: bool = False
) -> tuple[nn.Module, NoisePrior]:
    """The trained generator (in eval mode) of a checkpoint and the noise prior it was trained on:
    the EMA generator when the checkpoint has one and ``ema`` is true, else the raw G. ``trust``:
    see :func:`gan.checkpoints.load_checkpoint`."""
    ckpt = load_checkpoint(ckpt_path, trust)
    cfg = checkpoint_config(ckpt, ckpt_path)
    generator: nn.Module = instantiate(cfg.model.generator)
    has_ema = any(k.startswith(EMA_PREFIX) for k in ckpt["state_dict"])
    prefix = EMA_PREFIX if ema and has_ema else RAW_PREFIX
    state = {k[len(prefix):]: v for k, v in ckpt["state_dict"].items() if k.startswith(prefix)}
    try:
        generator.load_state_dict(state)
    except RuntimeError as err:
        raise RunError(f"{ckpt_path}: the generator's weights do not fit its saved config ({err})") from err
    return generator.to(device).eval(), instantiate(cfg.model.noise)
