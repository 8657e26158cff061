"""Weight initialisers, applied with ``net.apply(fn)``.

A *scheme* is a name in ``SCHEMES`` whose factory takes the scheme's options and returns the
function that ``net.apply`` calls on every submodule. ``initialize`` takes the scheme as a name
(``"normal"``, with options as keyword arguments) or as a mapping (``{"scheme": "normal",
"std": 0.1, "bias": 0.2}``, the form a YAML config writes). Batch-norm layers keep PyTorch's
default (weight 1, bias 0) under every scheme.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import Any

from torch import nn

InitFn = Callable[[nn.Module], None]

# the layers the normal / uniform / glorot_uniform schemes set
WEIGHTED_LAYERS = (nn.Linear, nn.Conv2d, nn.ConvTranspose2d)


def xavier_uniform_(module: nn.Module) -> None:
    """Xavier-uniform weights for linear and transposed-conv layers (the cs231n recipe).

    Plain convolutions and all biases keep PyTorch's default initialisation.
    """
    if isinstance(module, (nn.Linear, nn.ConvTranspose2d)):
        nn.init.xavier_uniform_(module.weight)


def xavier_uniform() -> InitFn:
    """The cs231n recipe, ``xavier_uniform_`` (takes no options)."""
    return xavier_uniform_


def glorot_uniform(bias: float = 0.0) -> InitFn:
    """Keras' default: Glorot/Xavier-uniform weights for every linear, conv and transposed-conv
    layer, and constant biases (zero unless ``bias`` says otherwise)."""

    def init(module: nn.Module) -> None:
        if isinstance(module, WEIGHTED_LAYERS):
            nn.init.xavier_uniform_(module.weight)
            _set_bias(module, bias)

    return init


def normal(std: float = 0.02, mean: float = 0.0, bias: float = 0.0) -> InitFn:
    """Weights drawn from normal(``mean``, ``std``), biases set to the constant ``bias``."""
    if not std > 0:
        raise ValueError(f"init scheme 'normal' needs std > 0, got {std}")

    def init(module: nn.Module) -> None:
        if isinstance(module, WEIGHTED_LAYERS):
            nn.init.normal_(module.weight, mean=mean, std=std)
            _set_bias(module, bias)

    return init


def uniform(bound: float, bias: float = 0.0) -> InitFn:
    """Weights drawn from U(-``bound``, ``bound``), biases set to the constant ``bias``."""
    if not bound > 0:
        raise ValueError(f"init scheme 'uniform' needs bound > 0, got {bound}")

    def init(module: nn.Module) -> None:
        if isinstance(module, WEIGHTED_LAYERS):
            nn.init.uniform_(module.weight, -bound, bound)
            _set_bias(module, bias)

    return init


def _set_bias(module: nn.Module, value: float) -> None:
    if module.bias is not None:
        nn.init.constant_(module.bias, value)


SCHEMES: dict[str, Callable[..., InitFn]] = {
    "xavier_uniform": xavier_uniform,
    "glorot_uniform": glorot_uniform,
    "normal": normal,
    "uniform": uniform,
}


def initialize(net: nn.Module, scheme: str | Mapping[str, Any] | None, **options: Any) -> nn.Module:
    """Apply the init ``scheme`` to ``net`` and return ``net``.

    ``scheme`` is a name in ``SCHEMES`` (None or 'default' keep PyTorch's default), or a mapping
    holding the name under ``"scheme"`` and the scheme's options beside it. ``options`` are
    keyword arguments of the scheme's factory, e.g. ``initialize(net, "normal", std=0.1, bias=0.2)``.
    """
    if isinstance(scheme, Mapping):
        options = {**{k: v for k, v in scheme.items() if k != "scheme"}, **options}
        scheme = scheme.get("scheme")
    if scheme is None or scheme == "default":
        if options:
            raise ValueError(f"init options {sorted(options)} were given without an init scheme")
        return net
    if scheme not in SCHEMES:
        raise ValueError(f"unknown init scheme {scheme!r}: use one of {sorted(SCHEMES)} or null")
    factory = SCHEMES[scheme]
    try:
        inspect.signature(factory).bind(**options)
    except TypeError:
        raise ValueError(
            f"init scheme {scheme!r} takes the options {list(inspect.signature(factory).parameters)}, "
            f"got {sorted(options)}"
        ) from None
    net.apply(factory(**options))
    return net
