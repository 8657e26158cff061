"""gan.sample rebuilds G from a run and writes a PNG grid or an (n, 1, 28, 28) tensor in [0, 1]."""

import subprocess
import sys

import pytest
import torch

from gan.sample import load_generator, main, sample_images
from gan.train import train
from tests.conftest import PROJECT, QUICK, compose_config


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("sample")
    cfg = compose_config(QUICK, tmp)
    train(cfg)
    return tmp / "outputs" / "run" / "checkpoints" / "last.ckpt"


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "gan.sample", *args], cwd=PROJECT, capture_output=True, text=True, timeout=300)


def test_cli_writes_a_png_grid(checkpoint, tmp_path):
    out = tmp_path / "grid.png"
    done = run_cli(f"ckpt={checkpoint}", "n=16", f"out={out}")
    assert done.returncode == 0, done.stderr
    assert out.is_file() and out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_tensor_output_shape_range_and_seed(checkpoint, tmp_path):
    out = tmp_path / "s.pt"
    assert main([f"ckpt={checkpoint}", "n=20", f"out={out}", "seed=5"]) == 0
    x = torch.load(out)
    assert x.shape == (20, 1, 28, 28) and x.dtype == torch.float32
    assert x.min() >= 0.0 and x.max() <= 1.0
    assert main([f"ckpt={checkpoint}", "n=20", f"out={tmp_path / 'again.pt'}", "seed=5"]) == 0
    assert torch.equal(x, torch.load(tmp_path / "again.pt"))
    assert main([f"ckpt={checkpoint}", "n=20", f"out={tmp_path / 'other.pt'}", "seed=6"]) == 0
    assert not torch.equal(x, torch.load(tmp_path / "other.pt"))


def test_generator_comes_back_with_the_trained_weights(checkpoint):
    g, noise = load_generator(checkpoint)
    ckpt = torch.load(checkpoint, weights_only=False)
    assert torch.equal(g.net[0].weight, ckpt["state_dict"]["generator.net.0.weight"])
    assert not g.training and noise.dim == 96
    assert sample_images(g, noise, 3).shape == (3, 1, 28, 28)


def test_bad_arguments_give_one_clear_error(checkpoint, tmp_path, capsys):
    assert main([f"ckpt={tmp_path / 'missing.ckpt'}", f"out={tmp_path / 'x.png'}"]) == 1
    assert "no such checkpoint file" in capsys.readouterr().err
    junk = tmp_path / "junk.ckpt"
    junk.write_bytes(b"not a checkpoint")
    assert main([f"ckpt={junk}"]) == 1
    assert "not a readable checkpoint" in capsys.readouterr().err
    assert main([f"ckpt={checkpoint}", f"out={tmp_path / 'x.jpg'}"]) == 2
    assert "must end in .png" in capsys.readouterr().err
    assert main([]) == 2
