"""Safe with files and runs: bad input gets one line and changes nothing; one writer per run folder;
a resume never replaces a newer checkpoint; a failed write keeps the last good checkpoint."""

from __future__ import annotations

import errno
import gzip
import hashlib
import json
import logging
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from gan.runtime.checkpoints import load_checkpoint
from gan.runtime.errors import RunError
from gan.evaluate import main as evaluate_main
from gan.runtime.runs import LOCK_FILE, PARENT_FILE, RunLock, move_log_file
from gan.sample import main as sample_main
from gan.train import train
from tests.conftest import PROJECT, QUICK, data_root


def tree_digest(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` (hidden ones too) with the hash of its bytes."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    """A finished tiny run (6 GAN iterations) written by the command line, as a user's would be."""
    log_dir = tmp_path_factory.mktemp("safety")
    run = log_dir / "run"
    done = subprocess.run([sys.executable, "-m", "gan.train", *QUICK, f"paths.log_dir={log_dir}", f"paths.output_dir={run}",
                           f"data.root={data_root()}", "callbacks.progress_bar=null"],
                          cwd=PROJECT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return run


def one_error_line(stderr: str) -> str:
    assert "Traceback" not in stderr, stderr[-3000:]
    lines = [line for line in stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error:")]
    assert len(errors) == 1, stderr[-3000:]
    return errors[0]


# ---------------------------------------------------------------------------------- bad input, table-driven
def corrupt_gzip_root(tmp: Path) -> Path:
    """An MNIST root whose training images are a gzip file with a corrupt deflate stream."""
    root = tmp / "corrupt"
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for f in (data_root() / "MNIST" / "raw").iterdir():
        if f.name.startswith(("train-labels", "t10k")):
            shutil.copy(f, raw / f.name)
    good = gzip.compress(b"\x00\x00\x08\x03" + bytes(4000))
    (raw / "train-images-idx3-ubyte.gz").write_bytes(good[:20] + bytes(b ^ 0x5A for b in good[20:60]) + good[60:])
    return root


TRAIN_CASES = {
    "eval-samples-not-a-number": (["eval_samples=lots"], "eval_samples=lots"),
    "seed-not-a-number": (["seed=abc"], "seed=abc"),
    "gpu-accelerator-without-cuda": (["trainer.accelerator=gpu"], "trainer=cpu"),
    "gpu-trainer-without-cuda": (["trainer=gpu"], "no CUDA GPU"),
    "ddp-trainer-without-cuda": (["trainer=ddp"], "no CUDA GPU"),
    "mismatched-resume": (["model=dcgan", "ckpt_path={run}/checkpoints/last.ckpt"], "does not fit this model: its generator differs at tensor 1, generator.net.0.weight"),
    "folder-holds-a-run": (["paths.output_dir={run}"], "already holds a run"),
    "corrupt-gzip": (["data.root={corrupt}", "paths.output_dir={fresh}"], "cannot read"),
}


@pytest.mark.parametrize("case", list(TRAIN_CASES))
def test_bad_train_input_is_one_line_and_changes_nothing(case, finished_run, tmp_path):
    if ("cuda" in case or "gpu" in case) and torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    overrides, needle = TRAIN_CASES[case]
    fresh = tmp_path / "fresh"
    values = {"run": finished_run, "fresh": fresh, "corrupt": corrupt_gzip_root(tmp_path) if case == "corrupt-gzip" else ""}
    overrides = [o.format(**values) for o in overrides]
    before = tree_digest(finished_run)
    done = subprocess.run([sys.executable, "-m", "gan.train", *QUICK, f"paths.log_dir={tmp_path / 'outputs'}",
                           f"data.root={data_root()}", *overrides],
                          cwd=PROJECT, capture_output=True, text=True, timeout=300)
    assert done.returncode != 0
    assert needle in one_error_line(done.stderr)
    assert tree_digest(finished_run) == before  # .hydra/, config.yaml, checkpoints, events: all untouched
    assert not fresh.exists() or not ({"config.yaml", "versions.json", "tensorboard"} & {p.name for p in fresh.iterdir()})


SAMPLE_CASES = {
    "seed-not-a-number": (["seed=abc"], "seed=abc is not a whole number"),
    "nrow-zero": (["nrow=0"], "nrow=0 must be at least 1"),
    "device-cuda-without-cuda": (["device=cuda"], "no CUDA GPU"),
    "out-under-a-file": (["out={file}/x.png"], "is a file, not a folder"),
    "unknown-key": (["num=4"], "did you mean n=?"),
    "negative-n": (["n=-1"], "n=-1 must be at least 1"),
}


@pytest.mark.parametrize("case", list(SAMPLE_CASES))
def test_bad_sample_input_is_one_line_and_writes_nothing(case, finished_run, tmp_path, capsys):
    if case.startswith("device") and torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    args, needle = SAMPLE_CASES[case]
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    args = [a.format(file=a_file) for a in args]
    out = tmp_path / "grid.png"
    before = tree_digest(tmp_path)
    assert sample_main([f"ckpt={finished_run}/checkpoints/last.ckpt", f"out={out}", *args]) == 2
    assert needle in one_error_line(capsys.readouterr().err)
    assert tree_digest(tmp_path) == before


def test_bad_evaluate_input_is_refused_before_the_evaluation(finished_run, tmp_path, capsys):
    ckpt = f"ckpt={finished_run}/checkpoints/last.ckpt"
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    empty = tmp_path / "empty.pt"
    torch.save(torch.zeros(0, 1, 28, 28), empty)
    cases = [
        ([ckpt, f"out={a_file}/report.json"], 2, "is a file, not a folder"),
        ([ckpt, "n=-1"], 2, "n=-1 must be at least 1"),
        ([ckpt, "num=4"], 2, "did you mean n=?"),
        ([ckpt, "seed=abc"], 2, "seed=abc is not a whole number"),
        ([f"samples={empty}"], 1, "holds no images"),
    ]
    for args, status, needle in cases:
        started = time.perf_counter()
        assert evaluate_main(args) == status, args
        assert needle in one_error_line(capsys.readouterr().err), args
        assert time.perf_counter() - started < 10  # refused up front, not after scoring
    assert not (tmp_path / "report.json").exists()


# ---------------------------------------------------------------------------------- one writer per folder
def test_a_second_run_into_a_folder_in_use_is_refused_naming_the_process(tmp_path):
    run = tmp_path / "run"
    first = subprocess.Popen([sys.executable, "-m", "gan.train", *QUICK, "iterations=100000", "checkpoint_every=1000",
                              f"paths.log_dir={tmp_path}", f"paths.output_dir={run}", f"data.root={data_root()}",
                              "callbacks.progress_bar=null"],
                             cwd=PROJECT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 120
        while not (run / ".hydra" / "overrides.yaml").exists():
            assert first.poll() is None and time.time() < deadline
            time.sleep(0.2)
        overrides_before = (run / ".hydra" / "overrides.yaml").read_bytes()
        second = subprocess.run([sys.executable, "-m", "gan.train", *QUICK, "seed=3", f"paths.log_dir={tmp_path}",
                                 f"paths.output_dir={run}", f"data.root={data_root()}"],
                                cwd=PROJECT, capture_output=True, text=True, timeout=300)
        assert second.returncode != 0
        line = one_error_line(second.stderr)
        assert str(run) in line and f"process {first.pid}" in line
        assert (run / ".hydra" / "overrides.yaml").read_bytes() == overrides_before
        assert len(list((run / "tensorboard").glob("events.*"))) == 1
    finally:
        first.kill()
        first.wait(timeout=30)


def test_a_lock_left_by_a_dead_process_is_taken_over_and_said(tmp_path, caplog):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    pid = int(dead.stdout)
    (tmp_path / LOCK_FILE).write_text(json.dumps({"pid": pid, "host": os.uname().nodename, "start": "0", "since": "then"}))
    with caplog.at_level(logging.WARNING), RunLock(tmp_path) as lock:
        assert json.loads(lock.path.read_text())["pid"] == os.getpid()
    assert f"left by process {pid}, which no longer runs" in caplog.text
    assert not (tmp_path / LOCK_FILE).exists()  # released


def test_a_live_lock_is_refused_and_a_refused_run_leaves_no_folder(tmp_path):
    with RunLock(tmp_path / "run"), pytest.raises(RunError, match=rf"being written by another run \(process {os.getpid()}"):
        RunLock(tmp_path / "run").acquire()
    fresh = RunLock(tmp_path / "never")
    fresh.acquire()
    fresh.release()
    assert not (tmp_path / "never").exists()


# ---------------------------------------------------------------------------------- resumes
def test_resume_from_an_older_checkpoint_continues_in_a_new_folder(make_cfg):
    first = make_cfg(*QUICK, "iterations=3")
    train(first)
    run = Path(first.paths.output_dir)
    older = run / "checkpoints" / "older.ckpt"
    shutil.copy(run / "checkpoints" / "last.ckpt", older)
    train(make_cfg(*QUICK, "iterations=6", f"ckpt_path={run / 'checkpoints' / 'last.ckpt'}"))  # in place: on to 6
    newest = tree_digest(run / "checkpoints")

    child = make_cfg(*QUICK, "iterations=5", f"ckpt_path={older}", run="child")
    train(child)
    assert tree_digest(run / "checkpoints") == newest  # the parent's last.ckpt (iteration 6) is kept
    assert load_checkpoint(run / "checkpoints" / "last.ckpt")["gan"]["iteration"] == 6
    child_dir = Path(child.paths.output_dir)
    assert load_checkpoint(child_dir / "checkpoints" / "last.ckpt")["gan"]["iteration"] == 5
    parent = json.loads((child_dir / PARENT_FILE).read_text())
    assert parent == {"checkpoint": str(older.resolve()), "run": str(run.resolve()), "iteration": 3}


def test_a_failed_checkpoint_write_keeps_the_last_good_one(make_cfg, monkeypatch):
    import pytorch_lightning as pl

    real_save = pl.Trainer.save_checkpoint
    calls = []

    def disk_full_on_second_save(self, filepath, *args, **kwargs):
        calls.append(filepath)
        if len(calls) == 2:
            Path(filepath).write_bytes(b"half a checkpoint")
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_save(self, filepath, *args, **kwargs)

    monkeypatch.setattr(pl.Trainer, "save_checkpoint", disk_full_on_second_save)
    cfg = make_cfg(*QUICK)
    with pytest.raises(RunError, match="could not write .*last.ckpt: No space left on device; last.ckpt is left as it was"):
        train(cfg)
    folder = Path(cfg.paths.output_dir) / "checkpoints"
    assert load_checkpoint(folder / "last.ckpt")["gan"]["iteration"] == 3
    assert [p.name for p in folder.iterdir()] == ["last.ckpt"]  # the temporary file is gone
    assert calls[0] != calls[1]  # every write has its own temporary name
    assert not (Path(cfg.paths.output_dir) / LOCK_FILE).exists()


def test_the_console_log_follows_the_run_into_its_folder(tmp_path):
    hydra_dir, run = tmp_path / "hydra-fresh", tmp_path / "run"
    hydra_dir.mkdir()
    run.mkdir()
    (run / "train.log").write_text("earlier run\n")
    handler = logging.FileHandler(hydra_dir / "train.log")
    logger = logging.getLogger("gan.test_safety")
    logging.getLogger().addHandler(handler)
    try:
        logger.warning("before the move")
        move_log_file(run, hydra_dir)
        logger.warning("after the move")
    finally:
        logging.getLogger().removeHandler(handler)
        handler.close()
    assert (run / "train.log").read_text() == "earlier run\nbefore the move\nafter the move\n"
    assert not hydra_dir.exists()
