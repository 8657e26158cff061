"""gan.sample rebuilds G from a run and writes a PNG grid or an (n, 1, 28, 28) tensor in [0, 1]."""

import subprocess
import sys

import pytest
import torch

from gan.noise import NoisePrior
from gan.sample import interpolation_latents, load_generator, main, sample_images, slerp
from gan.train import train
from tests.conftest import PROJECT, QUICK, compose_config, data_root


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


# ---------------------------------------------------------------------------------- modes
def png_size(path):
    from PIL import Image

    with Image.open(path) as image:
        return image.size


def test_slerp_keeps_the_ends_and_the_norm_of_equal_norm_vectors():
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(3, 16, generator=g), torch.randn(3, 16, generator=g)
    assert torch.allclose(slerp(a, b, 0.0), a, atol=1e-5) and torch.allclose(slerp(a, b, 1.0), b, atol=1e-5)
    b = b / b.norm(dim=1, keepdim=True) * a.norm(dim=1, keepdim=True)
    mid = slerp(a, b, 0.5)
    assert torch.allclose(mid.norm(dim=1), a.norm(dim=1), rtol=1e-4)  # a linear midpoint would be shorter
    assert torch.allclose(slerp(a, a, 0.3), a, atol=1e-5)  # parallel: no division by zero


def test_interpolation_rows_start_and_end_at_the_same_pairs():
    z = interpolation_latents(NoisePrior(8), pairs=3, steps=5, seed=1).reshape(6, 5, 8)
    for pair in range(3):
        linear, spherical = z[2 * pair], z[2 * pair + 1]
        assert torch.allclose(linear[0], spherical[0], atol=1e-5) and torch.allclose(linear[-1], spherical[-1], atol=1e-5)
        assert not torch.allclose(linear[2], spherical[2])


def test_interpolate_mode_writes_a_grid(checkpoint, tmp_path, capsys):
    out = tmp_path / "interp.png"
    assert main([f"ckpt={checkpoint}", "mode=interpolate", "pairs=3", "steps=7", f"out={out}"]) == 0
    assert png_size(out) == (2 + 7 * 30, 2 + 6 * 30)  # 7 columns, 2 rows (linear, spherical) per pair
    assert "linear, then spherical" in capsys.readouterr().out
    assert main([f"ckpt={checkpoint}", "mode=interpolate", "steps=1", f"out={out}"]) == 2


def test_by_class_mode_writes_a_row_per_digit(checkpoint, cache, tmp_path, capsys):
    out = tmp_path / "by_class.pt"
    assert main([f"ckpt={checkpoint}", "mode=by_class", "per_class=4", "max_samples=500", "recipe=quick",
                 f"data_root={data_root()}", f"out={out}"]) == 0
    x = torch.load(out)
    assert x.shape == (40, 1, 28, 28) and x.min() >= 0 and x.max() <= 1
    assert "a row per digit; share of" in capsys.readouterr().out
    png = tmp_path / "by_class.png"
    assert main([f"ckpt={checkpoint}", "mode=by_class", "per_class=4", "max_samples=500", "recipe=quick",
                 f"data_root={data_root()}", f"out={png}"]) == 0
    assert png_size(png) == (2 + 4 * 30, 2 + 10 * 30)


def test_unknown_mode_is_a_usage_error(checkpoint, tmp_path, capsys):
    assert main([f"ckpt={checkpoint}", "mode=movie", f"out={tmp_path / 'x.png'}"]) == 2
    assert "mode=movie is unknown" in capsys.readouterr().err


EMA = "model.ema={_target_: gan.ema.GeneratorEMA, _partial_: true, half_life_images: 50, rampup: null}"


def test_ema_false_draws_from_the_raw_generator(tmp_path):
    cfg = compose_config([*QUICK, EMA], tmp_path)
    train(cfg)
    ckpt = tmp_path / "outputs" / "run" / "checkpoints" / "last.ckpt"
    average, noise = load_generator(ckpt)
    raw, _ = load_generator(ckpt, ema=False)
    a, b = sample_images(average, noise, 8, seed=1), sample_images(raw, noise, 8, seed=1)
    assert not torch.equal(a, b)  # the EMA generator is what the default draws from
    outs = []
    for flag in ("true", "false"):
        out = tmp_path / f"ema-{flag}.pt"
        done = run_cli(f"ckpt={ckpt}", "n=8", "seed=1", f"ema={flag}", f"out={out}")
        assert done.returncode == 0, done.stderr
        outs.append(torch.load(out))
    assert torch.equal(outs[0], a) and torch.equal(outs[1], b)
    assert "ema=maybe: must be true or false" in run_cli(f"ckpt={ckpt}", "ema=maybe").stderr
