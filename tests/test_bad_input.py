"""Bad input, 30 cases as a table: config values, files, concurrency, a full disk and a signal, each
given to gan.train, gan.sample, gan.evaluate or gan.metrics.classifier as a user would.

Every case states the exit status, a pattern for the one line that says what was wrong and how to
fix it (no traceback), and what must not be lost: by default every file and folder the case could
touch (the shared tiny run, the case's own folder) is byte for byte as before, and nothing new
appeared. The table is documented in docs/bad_input.md.

The command lines run in this process where the behaviour is the same: ``train(cfg)`` behind
:func:`gan.runtime.errors.main_guard` (what ``python -m gan.train`` runs after Hydra composed the
config: a user's error becomes ``SystemExit("error: ...")``, status 1), and the small CLIs' ``main(argv)``,
which return the status. A subprocess runs only where the process is the point: Hydra's own
composition, a file-size limit, a signal.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.error import URLError

import pytest
import torch
from omegaconf import OmegaConf, open_dict

from gan.evaluate import USAGE as EVALUATE_USAGE
from gan.evaluate import main as evaluate_main
from gan.metrics.classifier import main as classifier_main
from gan.runtime.checkpoints import load_checkpoint
from gan.runtime.errors import main_guard
from gan.runtime.runs import _process_start
from gan.sample import USAGE as SAMPLE_USAGE
from gan.sample import main as sample_main
from gan.train import train
from tests.conftest import PROJECT, QUICK, compose_config, data_root

QUIET = ["callbacks.progress_bar=null", "print_config=false"]
# keys compose_config sets after composing: an override of them is applied again on top
SET_AFTER_COMPOSE = ("data.root", "paths.output_dir")


# ---------------------------------------------------------------------------------- what was there
def snapshot(folder: Path) -> dict[str, str]:
    """Every file (with the hash of its bytes) and every folder under ``folder``, hidden ones too."""
    if not folder.exists():
        return {}
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "folder"
            for p in sorted(folder.rglob("*"))}


@dataclass
class Scene:
    """What a case runs against: the shared finished run, the case's own folder, and what its setup made."""

    run: Path
    tmp: Path
    patch: pytest.MonkeyPatch  # environment and attributes a setup changes, undone after the case
    values: dict[str, str] = field(default_factory=dict)
    before: dict[str, dict[str, str]] = field(default_factory=dict)
    output: str = ""  # a subprocess's stdout and stderr

    def fill(self, args: tuple[str, ...]) -> list[str]:
        values = {"run": self.run, "ckpt": self.run / "checkpoints" / "last.ckpt", "tmp": self.tmp, **self.values}
        return [a.format(**values) for a in args]


def nothing_changed(scene: Scene) -> None:
    """The shared run and the case's folder hold exactly what they held: no file changed, none and
    no folder appeared (a refused command leaves no empty folder behind)."""
    assert snapshot(scene.run) == scene.before["run"]
    assert snapshot(scene.tmp) == scene.before["tmp"]


# ---------------------------------------------------------------------------------- setups
def copy_run(scene: Scene) -> dict[str, str]:
    """A copy of the shared run to resume (a resume in place writes into its run folder)."""
    shutil.copytree(scene.run, scene.tmp / "copy")
    return {"copy": str(scene.tmp / "copy"), "copy_ckpt": str(scene.tmp / "copy" / "checkpoints" / "last.ckpt")}


def fashion_run(scene: Scene) -> dict[str, str]:
    """A run whose checkpoint says it trained on Fashion-MNIST (the data of a ``data=fashion_mnist`` run)."""
    values = copy_run(scene)
    ckpt = torch.load(values["copy_ckpt"], map_location="cpu", weights_only=True)
    ckpt["gan"]["config"]["data"]["dataset"] = "FashionMNIST"
    torch.save(ckpt, values["copy_ckpt"])
    return values


def locked_by_this_process(scene: Scene) -> dict[str, str]:
    """A copy of the run whose ``.lock`` names a live process on this host (this one), as while training."""
    values = copy_run(scene)
    owner = {"pid": os.getpid(), "host": socket.gethostname(), "start": _process_start(os.getpid()), "since": "now"}
    (scene.tmp / "copy" / ".lock").write_text(json.dumps(owner))
    return values


def locked_by_another_host(scene: Scene) -> dict[str, str]:
    values = copy_run(scene)
    owner = {"pid": 4242, "host": "gpu-node-7", "start": "1", "since": "2026-01-01 10:00:00"}
    (scene.tmp / "copy" / ".lock").write_text(json.dumps(owner))
    return values


def empty_data_root(scene: Scene) -> dict[str, str]:
    """GAN_DATA_ROOT at an empty folder, offline: torchvision's download makes MNIST/raw, then fails."""
    import torchvision.datasets.mnist

    def offline(url, *args, **kwargs):
        raise URLError("offline")

    scene.patch.setattr(torchvision.datasets.mnist, "download_and_extract_archive", offline)
    (scene.tmp / "empty").mkdir()
    scene.patch.setenv("GAN_DATA_ROOT", str(scene.tmp / "empty"))
    return {"root": "${paths.data_dir}"}  # the config's own default: read from GAN_DATA_ROOT


def truncated_gzip_root(scene: Scene) -> dict[str, str]:
    """An MNIST root whose training images are a .gz file cut off half-way (a download that stopped)."""
    raw = scene.tmp / "data" / "MNIST" / "raw"
    raw.mkdir(parents=True)
    source = data_root() / "MNIST" / "raw"
    for name in ("train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        found = next(p for p in (source / name, source / f"{name}.gz") if p.exists())
        (raw / found.name).symlink_to(found)
    images = source / "train-images-idx3-ubyte"
    whole = gzip.compress(images.read_bytes()[:200_000] if images.exists() else bytes(200_000), compresslevel=1)
    (raw / "train-images-idx3-ubyte.gz").write_bytes(whole[: len(whole) // 2])
    return {"root": str(scene.tmp / "data")}


def checkpoint_with_config(edit: Callable[[dict], None], name: str) -> Callable[[Scene], dict[str, str]]:
    """A copy of the run's checkpoint whose stored config ``edit`` changed (another version's config)."""

    def setup(scene: Scene) -> dict[str, str]:
        ckpt = torch.load(scene.run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
        edit(ckpt["gan"]["config"])
        torch.save(ckpt, scene.tmp / name)
        return {"edited": str(scene.tmp / name)}

    return setup


def older_checkpoint_with_config_yaml(text: str) -> Callable[[Scene], dict[str, str]]:
    """A run folder whose checkpoint carries no config (older versions), beside a config.yaml edited by hand."""

    def setup(scene: Scene) -> dict[str, str]:
        ckpt = torch.load(scene.run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
        del ckpt["gan"]["config"]
        (scene.tmp / "old" / "checkpoints").mkdir(parents=True)
        torch.save(ckpt, scene.tmp / "old" / "checkpoints" / "last.ckpt")
        (scene.tmp / "old" / "config.yaml").write_text(text)
        return {"old": str(scene.tmp / "old" / "checkpoints" / "last.ckpt")}

    return setup


def samples_file(scene: Scene) -> dict[str, str]:
    torch.save(torch.rand(100, 1, 28, 28, generator=torch.Generator().manual_seed(0)), scene.tmp / "samples.pt")
    return {"samples": str(scene.tmp / "samples.pt")}


def cache_is_a_file(scene: Scene) -> dict[str, str]:
    values = samples_file(scene)
    (scene.tmp / "cache").write_text("not a folder")
    scene.patch.setenv("GAN_CACHE_DIR", str(scene.tmp / "cache"))
    return values


def own_cache(scene: Scene) -> dict[str, str]:
    (scene.tmp / "cache").mkdir()
    scene.patch.setenv("GAN_CACHE_DIR", str(scene.tmp / "cache"))
    return {}


def rename_generator(config: dict) -> None:
    config["model"]["generator"]["_target_"] = "gan.nets.stylegan.StyleGenerator"


def add_generator_argument(config: dict) -> None:
    config["model"]["generator"]["width_mult"] = 2


# ---------------------------------------------------------------------------------- other checks
def checkpoint_kept_after_a_full_disk(scene: Scene) -> None:
    """The resume could not write its checkpoint: last.ckpt is the one from before, no temporary
    file is left, and metrics.json says the run failed with the same line."""
    before = scene.before["tmp"]
    ckpt = Path(scene.values["copy_ckpt"])
    assert hashlib.sha256(ckpt.read_bytes()).hexdigest() == before["copy/checkpoints/last.ckpt"]
    assert [p.name for p in ckpt.parent.iterdir()] == ["last.ckpt"]
    report = json.loads((Path(scene.values["copy"]) / "metrics.json").read_text())
    assert report["status"] == "failed" and "File too large" in report["error"]
    assert snapshot(scene.run) == scene.before["run"]


def checkpoint_at_the_interrupted_iteration(scene: Scene) -> None:
    """SIGINT: last.ckpt holds the iteration the console line names, metrics.json says interrupted."""
    stopped = re.search(r"interrupted (?:by SIGINT )?at GAN iteration (\d+) of 100000; resume with ckpt_path=(\S+)",
                        scene.output)
    run = scene.tmp / "outputs" / "run"
    assert stopped and Path(stopped.group(2)) == (run / "checkpoints" / "last.ckpt").resolve(), scene.output[-3000:]
    assert load_checkpoint(run / "checkpoints" / "last.ckpt")["gan"]["iteration"] == int(stopped.group(1))
    report = json.loads((run / "metrics.json").read_text())
    assert (report["status"], report.get("stopped_by"), report["iteration"]) == ("interrupted", "SIGINT", int(stopped.group(1)))
    assert [p.name for p in (run / "checkpoints").iterdir()] == ["last.ckpt"]


# ---------------------------------------------------------------------------------- the table
@dataclass(frozen=True)
class Case:
    name: str
    tool: str  # train (in this process), sample, evaluate, classifier (their main), or a subprocess: cli, disk, signal
    args: tuple[str, ...]  # overrides or key=value words; {run}, {ckpt}, {tmp} and the setup's values are filled in
    status: int
    line: str  # the one line (re.search)
    setup: Callable[[Scene], dict[str, str]] | None = None  # makes what the case needs; returns values for args
    kept: Callable[[Scene], None] = nothing_changed
    xfail: str | None = None  # strict: the case fails until the lead's fix lands



CASES = [
    # ---------------------------------------------------------------- config values (gan.train)
    Case("iterations-not-whole", "train", ("iterations=1.5",), 1,
         r"^error: iterations=1\.5: must be a positive integer or null$"),
    Case("seed-negative", "train", ("seed=-1",), 1,
         r"^error: seed=-1: must be a whole number from 0 to 2\*\*32-1, or null for no seeding$"),
    Case("auto-budget-of-infinite-minutes", "train", ("iterations=auto", "train_minutes=inf"), 1,
         r"^error: iterations=auto: train_minutes=inf must be a positive number of minutes$"),
    Case("batch-above-the-training-set", "train", ("data.batch_size=70000",), 1,
         r"^error: data\.batch_size=70000 is larger than the 60000 training images selected: lower data\.batch_size\.$"),
    Case("precision-typo", "train", ("trainer.precision=fp13",), 1,
         r"^error: trainer: Lightning refuses a trainer\.\* setting: Precision 'fp13' is invalid\. Allowed precision values: .*'bf16-mixed'"),
    Case("max-time-not-a-duration", "train", ("+trainer.max_time=abc",), 1,
         r"^error: trainer: Lightning refuses a trainer\.\* setting: `Timer\(duration='abc'\)` is not a valid duration\. Expected a string in the format DD:HH:MM:SS\.$"),
    Case("devices-zero", "train", ("trainer.devices=0",), 1,
         r"^error: trainer: Lightning refuses a trainer\.\* setting: `Trainer\(devices=0\)` value is not a valid input"),
    Case("noise-dim-not-whole", "train", ("model.noise.dim=1.5",), 1,
         r"^error: model\.noise\.dim=1\.5: must be a positive integer$"),
    Case("adam-betas-one-number", "train", ("model.optimizer_g.betas=[0.5]",), 1,
         r"^error: model\.optimizer_g\.betas=\[0\.5\]: must be two numbers in \[0, 1\), e\.g\. \[0\.5, 0\.999\]$"),
    Case("loss-name-typo", "cli", ("-m", "gan.train", "loss=hing", "paths.log_dir={tmp}/outputs"), 1,
         r"^error: loss=hing: conf/loss/ has no such option; did you mean loss=hinge\? \(options: .*\)$"),
    # ---------------------------------------------------------------- files
    Case("output-dir-is-a-file", "train", ("paths.output_dir={run}/config.yaml",), 1,
         r"^error: .*/config\.yaml cannot hold a run: .*/config\.yaml is a file, not a folder; choose a folder with paths\.output_dir=\.\.\.$"),
    Case("data-root-an-empty-folder-offline", "train", ("data.root={root}",), 1,
         r"^error: MNIST train files not found in .*/empty/MNIST/raw .*the download failed\. .*set GAN_DATA_ROOT",
         setup=empty_data_root),
    Case("truncated-gz", "train", ("data.root={root}",), 1,
         r"^error: cannot read .*train-images-idx3-ubyte\.gz: Compressed file ended before the end-of-stream marker was reached\. Replace the file with a good copy\.$",
         setup=truncated_gzip_root),
    Case("resume-below-the-reached-iteration", "train", ("ckpt_path={copy_ckpt}", "iterations=3"), 1,
         r"^error: iterations=3: .*already at GAN iteration 6", setup=copy_run),
    Case("fashion-checkpoint-resumed-on-mnist", "train", ("ckpt_path={copy_ckpt}", "iterations=8"), 1,
         r"^error: .*trained on FashionMNIST.*data\.dataset=MNIST", setup=fashion_run),
    Case("checkpoint-of-a-network-this-version-lacks", "sample", ("ckpt={edited}", "out={tmp}/grid.png"), 1,
         r"^error: .*future\.ckpt: its saved config cannot rebuild the generator \(No module named 'gan\.nets\.stylegan'\); "
         r"it was written by another version of gan, or its config was edited$",
         setup=checkpoint_with_config(rename_generator, "future.ckpt")),
    Case("checkpoint-config-with-an-unknown-argument", "evaluate", ("ckpt={edited}", "n=10"), 1,
         r"^error: .*extra\.ckpt: its saved config cannot rebuild the generator \(.*unexpected keyword argument 'width_mult'\)",
         setup=checkpoint_with_config(add_generator_argument, "extra.ckpt")),
    Case("config-yaml-edited-into-bad-yaml", "sample", ("ckpt={old}", "out={tmp}/grid.png"), 1,
         r"^error: .*last\.ckpt carries no config, and its run's .*config\.yaml cannot be read \(ParserError: .*\); restore that file",
         setup=older_checkpoint_with_config_yaml("model:\n  generator: [unclosed\n")),
    Case("config-yaml-edited-to-other-widths", "sample", ("ckpt={old}", "out={tmp}/grid.png"), 1,
         r"^error: .*last\.ckpt: the generator's weights do not fit its saved config \(.*net\.4\.weight.*\); the config was edited, or belongs to another run$",
         setup=older_checkpoint_with_config_yaml(
             "model:\n  generator: {_target_: gan.nets.mlp.MLPGenerator, noise_dim: 96, hidden: [512]}\n"
             "  noise: {_target_: gan.noise.NoisePrior, dim: 96}\n")),
    Case("samples-file-given-as-checkpoint", "sample", ("ckpt={samples}", "out={tmp}/grid.png"), 1,
         r"^error: .*samples\.pt was not written by gan\.train \(it has no 'gan' section\)$", setup=samples_file),
    Case("sample-seed-beyond-torch", "sample", ("ckpt={ckpt}", "seed=18446744073709551616", "out={tmp}/grid.png"), 2,
         r"^error: seed=18446744073709551616 must be at most 18446744073709551615$"),
    Case("out-in-new-folders-with-a-missing-checkpoint", "sample", ("ckpt={tmp}/missing.ckpt", "out={tmp}/new/deeper/grid.png"), 1,
         r"^error: .*missing\.ckpt: no such checkpoint file$"),
    Case("evaluate-recipe-typo", "evaluate", ("ckpt={ckpt}", "recipe=best"), 2,
         r"^error: recipe=best is unknown: use one of full, quick$"),
    Case("evaluate-dataset-typo", "evaluate", ("samples={samples}", "dataset=CIFAR"), 2,
         r"^error: dataset=CIFAR is unknown: use one of MNIST, FashionMNIST$", setup=samples_file),
    Case("classifier-cache-is-a-file", "evaluate", ("samples={samples}", "recipe=quick"), 1,
         r"^error: the classifier cache .*/cache cannot be used: .*/cache is a file, not a folder; set GAN_CACHE_DIR to a folder$",
         setup=cache_is_a_file),
    Case("classifier-force-not-a-boolean", "classifier", ("recipe=quick", "force=maybe"), 2,
         r"^error: force=maybe must be true or false; usage: python -m gan\.metrics\.classifier ", setup=own_cache),
    # ---------------------------------------------------------------- concurrency
    Case("resume-of-a-run-being-written", "train", ("ckpt_path={copy_ckpt}", "iterations=9"), 1,
         rf"^error: .*/copy is being written by another run \(process {os.getpid()}, since now\); wait for it to end",
         setup=locked_by_this_process),
    Case("resume-of-a-run-locked-on-another-host", "train", ("ckpt_path={copy_ckpt}", "iterations=9"), 1,
         r"^error: .*/copy is locked by process 4242 on host gpu-node-7 \(since 2026-01-01 10:00:00\); if that run is over, delete .*/copy/\.lock",
         setup=locked_by_another_host),
    # ---------------------------------------------------------------- disk
    Case("file-size-limit-during-a-resume", "disk",
         ("-m", "gan.train", *QUICK, *QUIET, "iterations=9", "ckpt_path={copy_ckpt}", "paths.log_dir={tmp}/outputs"), 1,
         r"^error: could not write .*/copy/checkpoints/last\.ckpt: File too large; last\.ckpt is left as it was \(the last good state\)$",
         setup=copy_run, kept=checkpoint_kept_after_a_full_disk),
    # ---------------------------------------------------------------- signals (the exit-status contract: 128 + the signal)
    Case("sigint-while-training", "signal",
         ("-m", "gan.train", *QUICK, *QUIET, "iterations=100000", "sample_every=100000", "paths.log_dir={tmp}/outputs",
          "paths.output_dir={tmp}/outputs/run"), 130,
         r"interrupted (by SIGINT )?at GAN iteration \d+ of 100000; resume with ckpt_path=\S+/checkpoints/last\.ckpt",
         kept=checkpoint_at_the_interrupted_iteration),
]
FILE_SIZE_LIMIT = 10 * 2**20  # bytes: the tiny run's checkpoint (26 MB) does not fit, its other files do


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    """One tiny finished run (6 GAN iterations of the MLP GAN), shared by every case that reads a checkpoint."""
    folder = tmp_path_factory.mktemp("bad-input")
    cfg = compose_config([*QUICK, *QUIET], folder)
    train(cfg)
    return Path(cfg.paths.output_dir)


def run_train(case: Case, scene: Scene) -> tuple[int, str]:
    """``python -m gan.train`` after composition: the config's checks, the run, and the guard's one line."""
    overrides = scene.fill(case.args)
    cfg = compose_config([*QUICK, *QUIET, *overrides], scene.tmp)
    with open_dict(cfg):
        for key, _, value in (o.partition("=") for o in overrides):
            if key in SET_AFTER_COMPOSE:
                OmegaConf.update(cfg, key, value)
    try:
        main_guard(train)(cfg)
    except SystemExit as stop:
        return 1, str(stop.code)
    return 0, ""


def run_main(case: Case, scene: Scene, capsys) -> tuple[int, str]:
    """A small CLI's ``main(argv)``: its status, and its stderr with the usage text after a usage error taken off."""
    main, usage = {"sample": (sample_main, SAMPLE_USAGE), "evaluate": (evaluate_main, EVALUATE_USAGE),
                   "classifier": (classifier_main, None)}[case.tool]
    status = main(scene.fill(case.args))
    err = capsys.readouterr().err
    if status == 2 and usage is not None:
        assert err.endswith(f"\n{usage}\n"), err  # a usage error: the line, then the usage
        err = err[: -len(usage) - 1]
    return status, err.strip()


def run_process(case: Case, scene: Scene) -> tuple[int, str]:
    """A subprocess, as a user's shell runs it: the status, and its one ``error:`` line."""
    env = {k: v for k, v in os.environ.items() if k != "HYDRA_FULL_ERROR"} | {"GAN_DATA_ROOT": str(data_root())}
    cmd = [sys.executable, *scene.fill(case.args)]
    if case.tool == "signal":
        return interrupt(cmd, env, scene)
    limit = (lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (FILE_SIZE_LIMIT, FILE_SIZE_LIMIT))) if case.tool == "disk" else None
    done = subprocess.run(cmd, cwd=PROJECT, env=env, capture_output=True, text=True, timeout=300, preexec_fn=limit)
    scene.output = done.stdout + done.stderr
    assert "Traceback" not in scene.output, scene.output[-3000:]
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, done.stderr[-3000:]
    return done.returncode, errors[0]


def interrupt(cmd: list[str], env: dict[str, str], scene: Scene) -> tuple[int, str]:
    """Start training, send SIGINT once its first checkpoint is written, and return the status and
    the one line that says where it stopped."""
    proc = subprocess.Popen(cmd, cwd=PROJECT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    ckpt = scene.tmp / "outputs" / "run" / "checkpoints" / "last.ckpt"
    deadline = time.time() + 180
    try:
        while not ckpt.exists():
            assert proc.poll() is None and time.time() < deadline, "training ended or stalled before its first checkpoint"
            time.sleep(0.2)
        proc.send_signal(signal.SIGINT)
        scene.output, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert "Traceback" not in scene.output, scene.output[-3000:]
    lines = [line for line in scene.output.splitlines() if re.search(r"interrupted .*resume with", line)]
    assert len(lines) == 1, scene.output[-3000:]
    return proc.returncode, lines[0]


def cases():
    for case in CASES:
        marks = [pytest.mark.xfail(strict=True, reason=case.xfail)] if case.xfail else []
        yield pytest.param(case, id=case.name, marks=marks)


@pytest.mark.parametrize("case", cases())
def test_bad_input_gets_one_line_and_loses_nothing(case, finished_run, tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("HYDRA_FULL_ERROR", raising=False)
    scene = Scene(run=finished_run, tmp=tmp_path, patch=monkeypatch)
    if case.setup is not None:
        scene.values = case.setup(scene)
    scene.before = {"run": snapshot(finished_run), "tmp": snapshot(tmp_path)}

    if case.tool == "train":
        status, line = run_train(case, scene)
    elif case.tool in ("sample", "evaluate", "classifier"):
        status, line = run_main(case, scene, capsys)
    else:
        status, line = run_process(case, scene)

    assert status == case.status, line
    assert "\n" not in line and "Traceback" not in line, line
    assert re.search(case.line, line), line
    case.kept(scene)
