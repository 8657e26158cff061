"""python -m gan.export: a generator in safetensors that draws exactly what its checkpoint draws, loads
without Lightning, Hydra or pickles, and is refused in one line when changed."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch
from safetensors.torch import save_file

from gan.evaluate import main as evaluate_main
from gan.export import main as export_main
from gan.metrics.generate import balanced_labels, load_generator, load_run, sample_images
from gan.nets.portable import FORMAT_VERSION, ExportError, load_exported, read_export, seal
from gan.sample import main as sample_main
from gan.train import train
from tests.conftest import PROJECT, QUICK, compose_config
from tests.test_sample import EMA

# the default recipe's networks (BatchNorm G, EMA), class-conditional with class-conditional BatchNorm
CONDITIONAL = ["experiment=conditional", "model.conditional.class_norm=true", "data.batch_size=16", "iterations=2",
               "checkpoint_every=2", "sample_every=2", "log_every=2", "callbacks.evaluation=null"]
BLOCKED = ("pytorch_lightning", "lightning", "lightning_fabric", "hydra", "omegaconf")


def trained(tmp_path_factory, name, overrides):
    tmp = tmp_path_factory.mktemp(name)
    train(compose_config(overrides, tmp))
    return tmp / "outputs" / "run" / "checkpoints" / "last.ckpt"


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    return trained(tmp_path_factory, "export", [*QUICK, EMA])


@pytest.fixture(scope="module")
def conditional_ckpt(tmp_path_factory):
    return trained(tmp_path_factory, "export-conditional", CONDITIONAL)


def exported(ckpt, folder, *args):
    out = folder / f"{ckpt.parents[3].name}-{'-'.join(args) or 'ema'}.safetensors"  # the run's tmp folder
    if not out.exists():
        assert export_main([f"ckpt={ckpt}", f"out={out}", *args]) == 0
    return out


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return tmp_path_factory.mktemp("exports")


def error_lines(capsys):
    return [line for line in capsys.readouterr().err.splitlines() if line.strip()]


def rewritten(path, out, change=None, tensors_change=None, drop=None):
    """A copy of the export ``path`` at ``out`` with one metadata text changed (the old digests kept)."""
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        metadata, tensors = dict(f.metadata()), {k: f.get_tensor(k) for k in f.keys()}
    for field, value in (change or {}).items():
        metadata[field] = value
    if tensors_change:
        tensors_change(tensors)
    if drop:
        del metadata[drop]
    save_file(tensors, str(out), metadata)
    return out


def resealed(path, out, **fields):
    """A copy with fields replaced and the digests computed anew: what a careful forger writes."""
    decoded, tensors = read_export(path)
    save_file(tensors, str(out), seal(decoded | fields, tensors))
    return out


# ---------------------------------------------------------------------------------- same images
@pytest.mark.parametrize("ema", [True, False])
def test_the_export_draws_the_same_images_as_its_checkpoint(ckpt, folder, ema):
    path = exported(ckpt, folder, *([] if ema else ["ema=false"]))
    from_ckpt, noise = load_generator(ckpt, ema=ema)
    from_export, export_noise = load_generator(path)
    assert read_export(path)[0]["weights"] == ("ema" if ema else "raw")
    a, b = sample_images(from_ckpt, noise, 32, seed=7), sample_images(from_export, export_noise, 32, seed=7)
    assert torch.equal(a, b)
    other, _ = load_generator(ckpt, ema=not ema)
    assert not torch.equal(a, sample_images(other, noise, 32, seed=7))  # the export holds the G it was asked for


def test_gan_sample_takes_the_export_as_ckpt(ckpt, folder, tmp_path):
    path = exported(ckpt, folder)
    for source, name in ((ckpt, "ckpt.pt"), (path, "export.pt")):
        assert sample_main([f"ckpt={source}", "n=24", "seed=3", f"out={tmp_path / name}"]) == 0
        assert sample_main([f"ckpt={source}", "mode=interpolate", "pairs=2", "steps=4", f"out={tmp_path / ('walk-' + name)}"]) == 0
    assert torch.equal(torch.load(tmp_path / "ckpt.pt"), torch.load(tmp_path / "export.pt"))
    assert torch.equal(torch.load(tmp_path / "walk-ckpt.pt"), torch.load(tmp_path / "walk-export.pt"))


def test_conditional_export_draws_each_class_as_its_checkpoint(conditional_ckpt, folder, tmp_path):
    path = exported(conditional_ckpt, folder)
    fields = read_export(path)[0]
    assert fields["conditional"]["class_norm"] is True and fields["weights"] == "ema"
    assert not any(k.startswith("_") and k != "_target_" for k in fields["generator"])
    labels = balanced_labels(30, range(10))
    (g1, n1), (g2, n2) = load_generator(conditional_ckpt), load_generator(path)
    assert torch.equal(sample_images(g1, n1, 30, seed=2, labels=labels), sample_images(g2, n2, 30, seed=2, labels=labels))
    for source, name in ((conditional_ckpt, "ckpt.pt"), (path, "export.pt")):
        assert sample_main([f"ckpt={source}", "mode=by_class", "per_class=2", f"out={tmp_path / name}"]) == 0
    assert torch.equal(torch.load(tmp_path / "ckpt.pt"), torch.load(tmp_path / "export.pt"))


def test_the_export_keeps_what_the_tools_read_from_the_run_config(conditional_ckpt, folder):
    _, _, run = load_run(conditional_ckpt)
    _, noise, cfg = load_run(exported(conditional_ckpt, folder))
    assert cfg.data.dataset == run.data.dataset == "MNIST"
    assert cfg.model.generator._target_ == run.model.generator._target_
    assert noise.dim == run.model.noise.dim and cfg.model.conditional.label_dim == run.model.conditional.label_dim


def test_loads_without_lightning_hydra_or_omegaconf(ckpt, conditional_ckpt, folder, tmp_path):
    paths = [exported(ckpt, folder), exported(conditional_ckpt, folder)]
    script = f"""
import sys
for name in {BLOCKED!r}:
    sys.modules[name] = None  # importing any of them now fails
import torch
from gan.nets.portable import load_exported_generator
for i, path in enumerate({[str(p) for p in paths]!r}):
    generator, noise = load_exported_generator(path)
    z = noise.sample(6, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        images = generator(z) if i == 0 else generator(z, torch.arange(6))
    torch.save(images, {str(tmp_path)!r} + f"/images{{i}}.pt")
loaded = [name for name in sys.modules if name.split(".")[0] in {BLOCKED!r} and sys.modules[name] is not None]
print("loaded:", loaded)
"""
    done = subprocess.run([sys.executable, "-c", script], cwd=PROJECT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "loaded: []" in done.stdout
    for i, source in enumerate((ckpt, conditional_ckpt)):
        generator, noise = load_generator(source)
        z = noise.sample(6, generator=torch.Generator().manual_seed(1))
        with torch.no_grad():
            expected = generator(z) if i == 0 else generator(z, torch.arange(6))
        assert torch.equal(torch.load(tmp_path / f"images{i}.pt"), expected)


# ---------------------------------------------------------------------------------- refused files
@pytest.mark.parametrize("field, text", [
    ("dataset", json.dumps("FashionMNIST")),
    ("generator", '{"_target_":"gan.nets.mlp.MLPGenerator","hidden":[1024,1024],"init":"xavier_uniform","noise_dim":96,"output_activation":"sigmoid"}'),
    ("noise", '{"dim":96,"distribution":"normal","high":1.0,"low":-1.0}'),
])
def test_a_changed_metadata_field_is_refused_in_one_line(ckpt, folder, tmp_path, capsys, field, text):
    bad = rewritten(exported(ckpt, folder), tmp_path / "bad.safetensors", change={field: text})
    out = tmp_path / "x.png"
    assert sample_main([f"ckpt={bad}", f"out={out}"]) == 1
    lines = error_lines(capsys)
    assert lines == [f"error: {bad}: metadata field {field} was changed or the file is damaged (it does not match its sha256)"]
    assert not out.exists()
    assert evaluate_main([f"ckpt={bad}", "n=10"]) == 1  # the same loader behind gan.evaluate
    assert len(error_lines(capsys)) == 1


def test_changed_weights_and_missing_fields_are_refused(ckpt, folder, tmp_path):
    good = exported(ckpt, folder)

    def nudge(tensors):
        name = sorted(tensors)[0]
        tensors[name] = tensors[name] + 1e-3

    with pytest.raises(ExportError, match="the weights were changed or the file is damaged"):
        load_exported(rewritten(good, tmp_path / "weights.safetensors", tensors_change=nudge))
    with pytest.raises(ExportError, match="metadata field iteration is missing"):
        load_exported(rewritten(good, tmp_path / "missing.safetensors", drop="iteration"))
    with pytest.raises(ExportError, match="metadata field sha256 was changed"):
        load_exported(rewritten(good, tmp_path / "digest.safetensors", change={"sha256": "{"}))
    with pytest.raises(ExportError, match=f"format version {FORMAT_VERSION + 1}, newer than this gan reads"):
        load_exported(resealed(good, tmp_path / "newer.safetensors", format_version=FORMAT_VERSION + 1))


@pytest.mark.parametrize("target", ["os.system", "builtins.eval", "gan.runtime.checkpoints.load_checkpoint",
                                    "gan.nets.mlp.Tensor", "gan.nets.init.nn.Linear", "gan.nets..mlp.MLPGenerator", None])
def test_a_target_outside_gan_nets_is_refused_even_when_resealed(ckpt, folder, tmp_path, capsys, target):
    decoded = read_export(exported(ckpt, folder))[0]
    forged = resealed(exported(ckpt, folder), tmp_path / "forged.safetensors", generator=decoded["generator"] | {"_target_": target})
    with pytest.raises(ExportError, match=r"generator\._target_=.*(refused|no such class)"):
        load_exported(forged)
    assert sample_main([f"ckpt={forged}", f"out={tmp_path / 'x.png'}"]) == 1
    assert len(error_lines(capsys)) == 1


def test_nested_targets_in_the_arguments_are_refused(ckpt, folder, tmp_path):
    decoded = read_export(exported(ckpt, folder))[0]
    nested = decoded["generator"] | {"init": {"_target_": "os.system", "command": "true"}}
    with pytest.raises(ExportError, match="only plain arguments"):
        load_exported(resealed(exported(ckpt, folder), tmp_path / "nested.safetensors", generator=nested))


@pytest.mark.parametrize("make, message", [
    (lambda p: p.write_bytes(b"not safetensors at all"), "is not a readable safetensors file"),
    (lambda p: save_file({"weight": torch.zeros(3)}, str(p)), "not a generator exported by gan.export"),
    (lambda p: None, "no such file"),
])
def test_a_file_that_is_not_an_export_is_refused_in_one_line(tmp_path, capsys, make, message):
    path = tmp_path / "model.safetensors"
    make(path)
    assert sample_main([f"ckpt={path}", f"out={tmp_path / 'x.png'}"]) == 1
    lines = error_lines(capsys)
    assert len(lines) == 1 and message in lines[0]


def test_ema_false_on_an_ema_export_is_refused(ckpt, folder, capsys, tmp_path):
    assert sample_main([f"ckpt={exported(ckpt, folder)}", "ema=false", f"out={tmp_path / 'x.png'}"]) == 1
    assert "holds only the EMA generator" in error_lines(capsys)[0]
    assert sample_main([f"ckpt={exported(ckpt, folder, 'ema=false')}", "ema=false", f"out={tmp_path / 'y.png'}"]) == 0


# ---------------------------------------------------------------------------------- the command line
@pytest.mark.parametrize("args, message", [
    ([], "ckpt=PATH is required"),
    (["ckpt={tmp}/missing.ckpt"], "no such file"),
    (["ckpt={ckpt}", "out={tmp}/generator.pt"], "must end in .safetensors"),
    (["ckpt={tmp}/folder.safetensors"], "must end in .ckpt"),
    (["ckpt={ckpt}", "out={tmp}/folder.safetensors"], "is a folder"),
    (["ckpt={ckpt}", "ema=maybe"], "ema=maybe"),
    (["ckpt={ckpt}", "outt=x.safetensors"], "did you mean out="),
])
def test_usage_errors_give_one_line_exit_2_and_write_nothing(ckpt, tmp_path, capsys, args, message):
    (tmp_path / "folder.safetensors").mkdir()
    before = sorted(tmp_path.rglob("*"))
    argv = [a.format(tmp=tmp_path, ckpt=ckpt) for a in args]
    assert export_main(argv) == 2
    lines = error_lines(capsys)
    assert lines[0].startswith("error: ") and message in lines[0] and lines[1].startswith("usage:")
    assert sorted(tmp_path.rglob("*")) == before


def test_a_failing_export_leaves_the_existing_file_as_it_was(ckpt, folder, tmp_path, capsys):
    out = tmp_path / "generator.safetensors"
    out.write_bytes(exported(ckpt, folder).read_bytes())
    junk = tmp_path / "junk.ckpt"
    junk.write_bytes(b"not a checkpoint")
    done = subprocess.run([sys.executable, "-m", "gan.export", f"ckpt={junk}", f"out={out}"], cwd=PROJECT,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 1
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith(f"error: {junk} is not a readable checkpoint")
    assert out.read_bytes() == exported(ckpt, folder).read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["generator.safetensors", "junk.ckpt"]  # no temporary left
    load_exported(out)
