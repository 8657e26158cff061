"""Shared fixtures: the composed config (CPU, tiny budgets, outputs in tmp_path) and the MNIST root."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig, open_dict

PROJECT = Path(__file__).resolve().parents[1]
CONF_DIR = PROJECT / "conf"


def data_root() -> Path:
    """GAN_DATA_ROOT, else ../shared/data beside the project, else ./data."""
    for candidate in (os.environ.get("GAN_DATA_ROOT"), PROJECT.parent / "shared" / "data", PROJECT / "data"):
        if candidate and (Path(candidate) / "MNIST" / "raw").is_dir():
            return Path(candidate)
    raise RuntimeError("no MNIST root found: set GAN_DATA_ROOT to a folder holding MNIST/raw")


def compose_config(overrides: list[str] | None = None, tmp_path: Path | None = None) -> DictConfig:
    """The root config with ``overrides``, writing under ``tmp_path``."""
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose(config_name="train", overrides=list(overrides or []))
    with open_dict(cfg):
        cfg.data.root = str(data_root())
        if tmp_path is not None:
            cfg.paths.log_dir = str(tmp_path / "outputs")
            cfg.paths.output_dir = str(tmp_path / "outputs" / "run")
    return cfg


@pytest.fixture(scope="session")
def mnist_root() -> Path:
    return data_root()


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    """The classifier cache folder shared by the whole session (``GAN_CACHE_DIR``), so the quick
    classifier recipe is trained once for every test module that scores samples; GAN_DATA_ROOT
    points at the MNIST root for the CLIs these modules run in subprocesses."""
    path = tmp_path_factory.getbasetemp() / "gan-cache"
    path.mkdir(exist_ok=True)
    patch = pytest.MonkeyPatch()
    patch.setenv("GAN_CACHE_DIR", str(path))
    patch.setenv("GAN_DATA_ROOT", str(data_root()))
    yield path
    patch.undo()


@pytest.fixture
def make_cfg(tmp_path):
    """``make_cfg(*overrides)``: a composed config writing into this test's tmp_path."""

    def make(*overrides: str, run: str = "run") -> DictConfig:
        cfg = compose_config(list(overrides), tmp_path)
        with open_dict(cfg):
            cfg.paths.output_dir = str(tmp_path / "outputs" / run)
        return cfg

    return make


# A tiny, fast recipe for end-to-end tests: the MLP GAN, batch 16, a few iterations.
# The evaluation callback is tested on its own (tests/test_callbacks.py), with the quick classifier.
QUICK = [
    "model=mlp", "loss=nonsaturating", "data.batch_size=16", "iterations=6", "checkpoint_every=3", "sample_every=3", "log_every=2",
    "callbacks.evaluation=null",
]
