"""Pictures of a run that explain themselves: grids with a caption, the real-vs-generated grid with
a divider and its two halves named, and the timelapse of the fixed-noise grids."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont
from torch import Tensor

CAPTION_HEIGHT = 18
DIVIDER_HEIGHT = 4
DIVIDER_COLOUR = (0.85, 0.1, 0.1)  # red: visible on black digits and on white padding
FRAME_PREFIX = "fixed_noise_"
FRAME_PATTERN = re.compile(rf"^{FRAME_PREFIX}(\d+)\.png$")


def frame_name(iteration: int) -> str:
    """The file name of the fixed-noise grid kept for ``iteration``."""
    return f"{FRAME_PREFIX}{int(iteration)}.png"


def _font() -> ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=13)
    except (TypeError, OSError):  # a Pillow without FreeType: the small bitmap font
        return ImageFont.load_default()


def caption_strip(text: str, width: int) -> Image.Image:
    """A white strip ``width`` pixels wide with ``text`` in black at its left."""
    strip = Image.new("RGB", (width, CAPTION_HEIGHT), "white")
    ImageDraw.Draw(strip).text((4, 2), text, fill="black", font=_font())
    return strip


def with_caption(image: Image.Image, text: str) -> Image.Image:
    """``image`` with ``text`` on a strip above it."""
    out = Image.new("RGB", (image.width, image.height + CAPTION_HEIGHT), "white")
    out.paste(caption_strip(text, image.width), (0, 0))
    out.paste(image.convert("RGB"), (0, CAPTION_HEIGHT))
    return out


def _to_tensor(image: Image.Image) -> Tensor:
    return torch.from_numpy(np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0).permute(2, 0, 1)


def labelled_halves(top: Tensor, bottom: Tensor, top_label: str = "real", bottom_label: str = "generated") -> Tensor:
    """One (3, H, W) picture in [0, 1]: ``top_label``, the ``top`` grid, a red divider,
    ``bottom_label``, the ``bottom`` grid (both grids (3, h, w) in [0, 1], of equal width)."""
    width = top.shape[-1]
    divider = torch.tensor(DIVIDER_COLOUR).view(3, 1, 1).expand(3, DIVIDER_HEIGHT, width)
    return torch.cat([
        _to_tensor(caption_strip(top_label, width)), top.float().cpu(),
        divider, _to_tensor(caption_strip(bottom_label, width)), bottom.float().cpu(),
    ], dim=1)


def kept_frames(folder: str | Path) -> list[tuple[int, Path]]:
    """``(iteration, path)`` of every ``fixed_noise_<iteration>.png`` in ``folder``, by iteration."""
    found = []
    for path in Path(folder).glob(f"{FRAME_PREFIX}*.png"):
        match = FRAME_PATTERN.match(path.name)
        if match:
            found.append((int(match.group(1)), path))
    return sorted(found)


def write_timelapse(frames: list[tuple[int, Path]], path: str | Path, frame_ms: int = 400, last_ms: int = 2000) -> Path | None:
    """An animated GIF of ``frames`` (``(iteration, png)``), each captioned with its GAN
    iteration; the last frame stays longer. None (nothing written) without frames."""
    if not frames:
        return None
    images = [with_caption(Image.open(png).convert("RGB"), f"GAN iteration {it}") for it, png in frames]
    durations = [frame_ms] * (len(images) - 1) + [last_ms]
    path = Path(path)
    images[0].save(path, save_all=True, append_images=images[1:], duration=durations, loop=0)
    return path
