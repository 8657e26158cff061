"""Draw samples from a trained run: ``python -m gan.sample ckpt=PATH n=64 out=FILE.png [seed=S]``.

``out=*.png`` writes a grid; ``out=*.pt`` writes an ``(n, 1, 28, 28)`` float tensor in [0, 1].
The generator is rebuilt from the run's saved config and loaded from the checkpoint.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf
from torch import Tensor, nn
from torchvision.utils import save_image

from gan.callbacks import generate
from gan.files import write_atomically
from gan.images import output_range, to_unit_range
from gan.noise import NoisePrior
from gan.runs import RunError, checkpoint_config, load_checkpoint

OUTPUT_KINDS = (".png", ".pt")


def load_generator(ckpt_path: str | Path, device: str | torch.device = "cpu") -> tuple[nn.Module, NoisePrior]:
    """The trained generator (in eval mode) of a checkpoint and the noise prior it was trained on."""
    ckpt = load_checkpoint(ckpt_path)
    cfg = checkpoint_config(ckpt, ckpt_path)
    generator: nn.Module = instantiate(cfg.model.generator)
    prefix = "generator."
    state = {k[len(prefix):]: v for k, v in ckpt["state_dict"].items() if k.startswith(prefix)}
    try:
        generator.load_state_dict(state)
    except RuntimeError as err:
        raise RunError(f"{ckpt_path}: the generator's weights do not fit its saved config ({err})") from err
    return generator.to(device).eval(), instantiate(cfg.model.noise)


def sample_images(generator: nn.Module, noise: NoisePrior, n: int, seed: int = 0, batch_size: int = 500) -> Tensor:
    """``n`` samples in [0, 1] as an ``(n, 1, 28, 28)`` CPU tensor; the same seed gives the same samples."""
    device = next(generator.parameters()).device
    g = torch.Generator().manual_seed(seed)
    value_range = output_range(getattr(generator, "output_activation", "tanh"))
    chunks = []
    for start in range(0, n, batch_size):
        z = noise.sample(min(batch_size, n - start), generator=g).to(device)
        chunks.append(to_unit_range(generate(generator, z), value_range).cpu())
    return torch.cat(chunks)


def write_samples(images: Tensor, out: str | Path, nrow: int = 8) -> Path:
    out = Path(out)
    if out.suffix == ".pt":
        return write_atomically(out, lambda p: torch.save(images, p))
    return write_atomically(out, lambda p: save_image(images, p, nrow=nrow, padding=2, pad_value=1.0))


def main(argv: list[str] | None = None) -> int:
    args = OmegaConf.from_dotlist(list(sys.argv[1:] if argv is None else argv))
    ckpt, out = args.get("ckpt"), args.get("out", "samples.png")
    if ckpt is None:
        print("usage: python -m gan.sample ckpt=PATH [n=64] [out=FILE.png|FILE.pt] [seed=0] [nrow=8]", file=sys.stderr)
        return 2
    if Path(str(out)).suffix not in OUTPUT_KINDS:
        print(f"error: out={out} must end in .png (a grid) or .pt (a tensor)", file=sys.stderr)
        return 2
    n = int(args.get("n", 64))
    if n < 1:
        print(f"error: n={n} must be a positive number of samples", file=sys.stderr)
        return 2
    try:
        generator, noise = load_generator(str(ckpt), args.get("device", "cpu"))
    except RunError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    images = sample_images(generator, noise, n, seed=int(args.get("seed", 0)))
    path = write_samples(images, str(out), nrow=int(args.get("nrow", 8)))
    print(f"wrote {n} samples to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
