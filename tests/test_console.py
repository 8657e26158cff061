"""A readable start: the config tree printed once by a run, and a --help that names the top-level
settings (gan/runtime/console.py, conf/hydra/default.yaml; issue 13)."""

from __future__ import annotations

import subprocess
import sys

from omegaconf import OmegaConf

from gan.runtime.config import ROOT_CONFIG
from gan.train import train
from tests.conftest import PROJECT, QUICK


def test_a_run_prints_its_config_tree_once(make_cfg, capsys):
    train(make_cfg(*QUICK, "callbacks.progress_bar=null"))
    out = capsys.readouterr().out
    assert out.count("config\n") == 1  # the tree's root, once
    for branch in ("data", "model", "loss", "trainer", "callbacks", "top-level settings"):
        assert f"── {branch}\n" in out, branch
    assert "batch_size: 16" in out and "iterations: 6" in out  # the composed values, with the overrides


def test_print_config_false_prints_no_tree(make_cfg, capsys):
    train(make_cfg(*QUICK, "callbacks.progress_bar=null", "print_config=false"))
    assert "top-level settings" not in capsys.readouterr().out


def test_help_names_every_top_level_setting_with_its_current_value():
    done = subprocess.run([sys.executable, "-m", "gan.train", "iterations=1234", "--help"], cwd=PROJECT,
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    settings = [k for k, v in OmegaConf.load(ROOT_CONFIG).items() if k != "defaults"]
    lines = done.stdout.splitlines()
    for key in settings:
        assert any(line.split()[:1] == [key] for line in lines), f"--help does not name {key}"
    assert any(line.split()[:1] == ["iterations"] and line.endswith("[1234]") for line in lines)
    assert "model: " in done.stdout and "hparams_search: optuna" in done.stdout  # the groups too
