"""The checks of single config values, and :class:`ConfigError`, which they raise.

Each constructor (the networks, the noise prior, the data module, the GAN's settings) checks its own
values with these and names the config key in its one-line error. They need no config library, so
the networks and the noise prior import without Hydra or omegaconf: an exported generator
(:mod:`gan.nets.portable`) loads with torch and safetensors alone. :mod:`gan.runtime.config`
re-exports them beside the checks of a composed config's keys.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping
from typing import Any


class ConfigError(ValueError):
    """A composed config that asks for something the template cannot do."""


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def positive_int(key: str, value: Any, nullable: bool = False) -> int | None:
    """``value`` as an int if it is a positive integer (or None, if ``nullable``); else ConfigError."""
    if nullable and value is None:
        return None
    if not (is_int(value) and value > 0):
        raise ConfigError(f"{key}={fmt(value)}: must be a positive integer" + (" or null" if nullable else ""))
    return int(value)


def weight(key: str, value: Any) -> float:
    """``value`` as a float if it is a number >= 0 (a loss term's weight; 0 switches it off); else ConfigError."""
    if not (isinstance(value, (int, float)) and value >= 0):
        raise ConfigError(f"{key}={fmt(value)}: must be a number >= 0 (0 switches it off)")
    return float(value)


def boolean(key: str, value: Any) -> bool:
    """``value`` if it is true or false; else ConfigError."""
    if not isinstance(value, bool):
        raise ConfigError(f"{key}={fmt(value)}: must be true or false")
    return value


def one_of(key: str, value: Any, choices: Iterable[Any]) -> Any:
    """``value`` if it is one of ``choices``; else ConfigError listing them."""
    choices = tuple(choices)
    if value not in choices:
        raise ConfigError(f"{key}={fmt(value)}: must be one of {', '.join(str(c) for c in choices)}")
    return value


def fmt(value: Any) -> str:
    """A value as one would write it on the command line."""
    # an omegaconf node exists only once omegaconf is imported, so it is looked up, never imported here
    omegaconf = sys.modules.get("omegaconf")
    if omegaconf is not None and isinstance(value, (omegaconf.DictConfig, omegaconf.ListConfig)):
        try:
            value = omegaconf.OmegaConf.to_container(value, resolve=True)
        except Exception:
            value = omegaconf.OmegaConf.to_container(value, resolve=False)
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{k}: {fmt(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(fmt(v) for v in value) + "]"
    if isinstance(value, str):
        return repr(value) if value == "" or value.strip() != value else value
    return str(value)
