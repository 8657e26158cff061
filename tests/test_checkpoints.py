"""gan.runtime.checkpoints: a checkpoint runs no code when loaded, through every entry point."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from gan.runtime.checkpoints import load_checkpoint
from gan.runtime.errors import RunError
from tests.conftest import PROJECT, data_root


class Payload:
    """Unpickling this calls ``os.system``: what a malicious .ckpt would do."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


@pytest.fixture
def malicious(tmp_path):
    marker = tmp_path / "pwned"
    run = tmp_path / "evil" / "checkpoints"
    run.mkdir(parents=True)
    path = run / "last.ckpt"
    torch.save({"gan": {"iteration": 1, "config": {}}, "state_dict": {}, "extra": Payload(marker)}, path)
    return path, marker


def test_load_checkpoint_refuses_code_and_names_the_type(malicious):
    path, marker = malicious
    with pytest.raises(RunError, match=r"needs posix\.system to be unpickled, which could run code: refused.*trust_checkpoint=true"):
        load_checkpoint(path)
    assert not marker.exists()


@pytest.mark.parametrize("command", [
    ["gan.sample", "ckpt={ckpt}", "out={tmp}/x.png"],
    ["gan.evaluate", "ckpt={ckpt}", "n=10"],
    ["gan.train", "ckpt_path={ckpt}", "paths.log_dir={tmp}/outputs", "callbacks.evaluation=null"],
])
def test_no_entry_point_runs_a_checkpoints_code(malicious, tmp_path, command):
    path, marker = malicious
    args = [a.format(ckpt=path, tmp=tmp_path) for a in command]
    env = {**os.environ, "GAN_DATA_ROOT": str(data_root())}
    env.pop("HYDRA_FULL_ERROR", None)
    done = subprocess.run([sys.executable, "-m", *args], cwd=PROJECT, capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode != 0
    assert "which could run code: refused" in done.stderr and "Traceback" not in done.stderr, done.stderr
    assert not marker.exists()
