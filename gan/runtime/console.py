"""What a run prints once when it starts: the composed config as a tree (rich), one branch per
top-level group or setting, in the root config's order (``print_config=false`` turns it off)."""

from __future__ import annotations

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException
from rich.console import Console
from rich.syntax import Syntax
from rich.tree import Tree


def config_tree(cfg: DictConfig) -> Tree:
    """A tree of ``cfg`` (``hydra`` left out): each group as YAML under its name, then the
    top-level settings as one YAML branch. Interpolations are resolved where they can be."""
    tree = Tree("config", guide_style="dim")
    settings = {}
    for key in cfg:
        if key == "hydra":
            continue
        node = cfg.get(key)
        if isinstance(node, DictConfig):
            tree.add(str(key), style="bold").add(Syntax(_yaml(node), "yaml", theme="ansi_dark", background_color="default"))
        else:
            settings[str(key)] = _plain(cfg, str(key))
    if settings:
        tree.add("top-level settings", style="bold").add(
            Syntax(OmegaConf.to_yaml(OmegaConf.create(settings)), "yaml", theme="ansi_dark", background_color="default"))
    return tree


def print_config_tree(cfg: DictConfig, console: Console | None = None) -> None:
    (console or Console()).print(config_tree(cfg))


def _yaml(node: DictConfig) -> str:
    try:
        return OmegaConf.to_yaml(node, resolve=True)
    except OmegaConfBaseException:  # an interpolation only Hydra's runtime can resolve: show it as written
        return OmegaConf.to_yaml(node, resolve=False)


def _plain(cfg: DictConfig, key: str):
    try:
        return cfg[key]
    except OmegaConfBaseException:
        return OmegaConf.to_container(cfg, resolve=False)[key]
