"""Run folders: the files written beside the checkpoints so that a run can be rebuilt and read."""

from __future__ import annotations

import json
import platform
import sys
from importlib import metadata
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from gan.files import write_atomically

CONFIG_FILE = "config.yaml"
VERSIONS_FILE = "versions.json"
PACKAGES = ("torch", "torchvision", "pytorch-lightning", "hydra-core", "omegaconf", "torchmetrics", "tensorboard", "numpy")


def package_versions() -> dict[str, str]:
    versions = {"python": sys.version.split()[0], "platform": platform.platform()}
    for name in (*PACKAGES, "gan"):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return versions


def write_run_files(run_dir: Path, cfg: DictConfig, resumed_at: int | None) -> None:
    """Save the resolved config (and, for a resume, the resumed one beside it) and package versions."""
    run_dir.mkdir(parents=True, exist_ok=True)
    name = CONFIG_FILE if resumed_at is None else f"config.resume-{resumed_at}.yaml"
    write_atomically(run_dir / name, lambda p: p.write_text(OmegaConf.to_yaml(cfg, resolve=True)))
    write_atomically(run_dir / VERSIONS_FILE, lambda p: p.write_text(json.dumps(package_versions(), indent=2) + "\n"))
