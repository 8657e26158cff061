"""The recipes the benchmark measures, as Hydra overrides of the root config."""

from __future__ import annotations

import os
from pathlib import Path

from hydra import compose, initialize_config_dir
from omegaconf import DictConfig, open_dict

PROJECT = Path(__file__).resolve().parents[1]
RECIPES = {
    "cs231n_gan": ["experiment=cs231n_gan"],
    "cs231n_dcgan": ["experiment=cs231n_dcgan"],
    "default": [],  # what `make train` runs
    "conditional": ["experiment=conditional"],  # the default recipe, class-conditional
}


def compose_recipe(recipe: str, overrides: list[str], output_dir: str) -> DictConfig:
    with initialize_config_dir(config_dir=str(PROJECT / "conf"), version_base="1.3"):
        cfg = compose(config_name="train", overrides=[*RECIPES[recipe], *overrides])
    with open_dict(cfg):
        cfg.paths.output_dir = output_dir
        cfg.paths.log_dir = str(Path(output_dir).parent)
        if os.environ.get("GAN_DATA_ROOT"):
            cfg.data.root = os.environ["GAN_DATA_ROOT"]
    return cfg
