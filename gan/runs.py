"""Run folders: finding checkpoints to resume and writing what a run needs to be rebuilt."""

from __future__ import annotations

import json
import platform
import sys
from importlib import metadata
from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf

from gan.files import write_atomically

CHECKPOINT_DIR = "checkpoints"
LAST = "last.ckpt"
CONFIG_FILE = "config.yaml"
VERSIONS_FILE = "versions.json"
PACKAGES = ("torch", "torchvision", "pytorch-lightning", "hydra-core", "omegaconf", "torchmetrics", "tensorboard", "numpy")


class RunError(RuntimeError):
    """A run folder or checkpoint is not usable as asked."""


def resolve_checkpoint(ckpt_path: str | None, log_dir: str | Path) -> Path | None:
    """``None``, an existing checkpoint file, or for ``"last"`` the newest ``last.ckpt`` under ``log_dir``."""
    if ckpt_path in (None, ""):
        return None
    if str(ckpt_path) == "last":
        found = sorted(Path(log_dir).glob(f"**/{CHECKPOINT_DIR}/{LAST}"), key=lambda p: p.stat().st_mtime)
        if not found:
            raise RunError(f"ckpt_path=last: no {CHECKPOINT_DIR}/{LAST} under {log_dir}; train a run first or pass a path")
        return found[-1]
    path = Path(ckpt_path).expanduser()
    if not path.is_file():
        raise RunError(f"ckpt_path={ckpt_path}: no such file. Pass a .ckpt written by gan.train, or ckpt_path=last")
    return path


def run_dir_of(checkpoint: Path) -> Path | None:
    """The run folder a checkpoint belongs to (``<run>/checkpoints/x.ckpt``), if it has that layout."""
    return checkpoint.parent.parent if checkpoint.parent.name == CHECKPOINT_DIR else None


def load_checkpoint(path: str | Path) -> dict:
    """Load a checkpoint written by gan.train, with one clear error for anything else."""
    path = Path(path)
    if not path.is_file():
        raise RunError(f"{path}: no such checkpoint file")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as err:
        raise RunError(f"{path} is not a readable checkpoint ({type(err).__name__}: {err}); it may be truncated") from err
    if not isinstance(ckpt, dict) or "gan" not in ckpt or "state_dict" not in ckpt:
        raise RunError(f"{path} was not written by gan.train (it has no 'gan' section)")
    return ckpt


def checkpoint_config(ckpt: dict, path: str | Path) -> DictConfig:
    """The composed config of the run that wrote ``ckpt``: the copy inside it, else the run folder's."""
    stored = ckpt.get("gan", {}).get("config")
    if stored:
        return OmegaConf.create(stored)
    run = run_dir_of(Path(path))
    if run is not None and (run / CONFIG_FILE).is_file():
        return OmegaConf.load(run / CONFIG_FILE)
    raise RunError(f"{path} carries no config and no {CONFIG_FILE} lies in its run folder")


def package_versions() -> dict[str, str]:
    versions = {"python": sys.version.split()[0], "platform": platform.platform()}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    try:
        versions["gan"] = metadata.version("gan")
    except metadata.PackageNotFoundError:
        pass
    return versions


def write_run_files(run_dir: Path, cfg: DictConfig, resumed_at: int | None) -> None:
    """Save the resolved config (and, for a resume, the resumed one beside it) and package versions."""
    run_dir.mkdir(parents=True, exist_ok=True)
    name = CONFIG_FILE if resumed_at is None else f"config.resume-{resumed_at}.yaml"
    write_atomically(run_dir / name, lambda p: p.write_text(OmegaConf.to_yaml(cfg, resolve=True)))
    write_atomically(run_dir / VERSIONS_FILE, lambda p: p.write_text(json.dumps(package_versions(), indent=2) + "\n"))
