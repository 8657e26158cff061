"""Weight initialisers, applied with ``net.apply(fn)``."""

from __future__ import annotations

from torch import nn


def xavier_uniform_(module: nn.Module) -> None:
    """Xavier-uniform weights for linear and transposed-conv layers (the cs231n recipe).

    Plain convolutions and all biases keep PyTorch's default initialisation.
    """
    if isinstance(module, (nn.Linear, nn.ConvTranspose2d)):
        nn.init.xavier_uniform_(module.weight)


def initialize(net: nn.Module, scheme: str | None) -> nn.Module:
    """Apply the named init ``scheme`` to ``net`` ('xavier_uniform', or None for PyTorch's default)."""
    if scheme is None or scheme == "default":
        return net
    schemes = {"xavier_uniform": xavier_uniform_}
    if scheme not in schemes:
        raise ValueError(f"unknown init scheme {scheme!r}: use one of {sorted(schemes)} or null")
    net.apply(schemes[scheme])
    return net
