"""python -m gan.evaluate: samples files and checkpoints into a table and JSON; one clear error line for bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch

from gan.evaluate import main
from gan.metrics.evaluator import METRICS
from gan.train import train
from tests.conftest import PROJECT, QUICK, compose_config, data_root

N = 200


@pytest.fixture(scope="module")
def real_file(tmp_path_factory):
    from gan.data import load_split

    images, _ = load_split(data_root(), "test")
    path = tmp_path_factory.mktemp("evaluate") / "real.pt"
    torch.save(images[:N].float().div(255).unsqueeze(1) * 2 - 1, path)  # in [-1, 1], as a tanh G gives
    return path


def test_samples_file_round_trips_into_json_with_every_key(cache, real_file, tmp_path, capsys):
    out = tmp_path / "report.json"
    assert main([f"samples={real_file}", f"out={out}", "recipe=quick"]) == 0
    printed = capsys.readouterr().out
    assert "floor" in printed and all(k in printed for k in METRICS)
    report = json.loads(out.read_text())
    assert set(report) == set(METRICS) | {"floor", "n", "dataset"}
    assert set(report["floor"]) == set(METRICS) and report["n"] == N and report["dataset"] == "MNIST"
    # [-1, 1] was recognised: real test digits score like real data
    assert report["coverage"] == 10 and report["precision"] > 0.7
    assert report["fid"] < 2 * report["floor"]["fid"] + 1

    noise = tmp_path / "noise.pt"
    torch.save(torch.rand(N, 1, 28, 28), noise)
    assert main([f"samples={noise}", f"out={tmp_path / 'noise.json'}", "recipe=quick"]) == 0
    noisy = json.loads((tmp_path / "noise.json").read_text())
    assert noisy["fid"] > 20 * report["fid"] and noisy["precision"] < report["precision"]
    assert noisy["floor"] == report["floor"]


def test_checkpoint_is_sampled_and_scored(cache, tmp_path, capsys):
    cfg = compose_config(QUICK, tmp_path)
    train(cfg)
    ckpt = tmp_path / "outputs" / "run" / "checkpoints" / "last.ckpt"
    out = tmp_path / "ckpt.json"
    assert main([f"ckpt={ckpt}", f"n={N}", f"out={out}", "recipe=quick"]) == 0
    report = json.loads(out.read_text())
    assert report["n"] == N and set(METRICS) <= set(report)
    assert "checkpoint" in capsys.readouterr().out


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda p: None, "no such file"),
        (lambda p: p.write_bytes(b"not a tensor"), "not a readable tensor file"),
        (lambda p: torch.save(torch.rand(20, 3, 28, 28), p), "expected (n, 1, 28, 28)"),
        (lambda p: torch.save({"images": torch.rand(20, 1, 28, 28)}, p), "not a tensor"),
        (lambda p: torch.save(torch.rand(20, 1, 28, 28) * 5, p), "expected [0, 1] or [-1, 1]"),
        (lambda p: torch.save(torch.rand(3, 1, 28, 28), p), "need at least"),
    ],
    ids=["missing", "corrupt", "wrong-shape", "not-a-tensor", "out-of-range", "too-few"],
)
def test_bad_samples_give_one_error_line(tmp_path, capsys, make, message):
    path = tmp_path / "bad.pt"
    make(path)
    assert main([f"samples={path}"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and message in err and "\n" not in err


def test_usage_errors(tmp_path, capsys):
    assert main([]) == 2
    assert main([f"samples={tmp_path}/a.pt", f"ckpt={tmp_path}/b.ckpt"]) == 2
    assert main([f"samples={tmp_path}/a.pt", "bogus=1"]) == 2
    assert main([f"samples={tmp_path}/a.pt", "out=report.txt"]) == 2
    assert "usage" in capsys.readouterr().err


def test_command_line_error_has_no_traceback(tmp_path):
    junk = tmp_path / "junk.ckpt"
    junk.write_bytes(b"garbage")
    done = subprocess.run([sys.executable, "-m", "gan.evaluate", f"ckpt={junk}"], cwd=PROJECT, capture_output=True,
                          text=True, timeout=300, env={**os.environ, "GAN_DATA_ROOT": str(data_root())})
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert lines == [lines[0]] and lines[0].startswith("error:") and "not a readable checkpoint" in lines[0]
