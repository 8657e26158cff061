"""Pixel ranges of generator outputs and conversions between them.

A generator ends in ``tanh`` (images in [-1, 1]) or ``sigmoid`` (images in [0, 1]). The data module
scales real images to the same range, and everything that shows or measures images converts to
[0, 1] first.
"""

from __future__ import annotations

from torch import Tensor, nn

OUTPUT_RANGES: dict[str, tuple[float, float]] = {"tanh": (-1.0, 1.0), "sigmoid": (0.0, 1.0)}


def output_range(activation: str) -> tuple[float, float]:
    """The (low, high) pixel range of a generator ending in ``activation``."""
    try:
        return OUTPUT_RANGES[activation]
    except KeyError:
        raise ValueError(
            f"unknown output activation {activation!r}: use one of {sorted(OUTPUT_RANGES)}"
        ) from None


def output_layer(activation: str) -> nn.Module:
    """The final activation module for ``activation`` ('tanh' or 'sigmoid')."""
    output_range(activation)  # validates the name
    return nn.Tanh() if activation == "tanh" else nn.Sigmoid()


def to_unit_range(images: Tensor, value_range: tuple[float, float]) -> Tensor:
    """Map images from ``value_range`` to [0, 1], clamped."""
    low, high = value_range
    return ((images.float() - low) / (high - low)).clamp_(0.0, 1.0)


__all__ = [
    "OUTPUT_RANGES",
    "output_range",
    "output_layer",
    "to_unit_range",
]
