"""python -m gan.compare: grouping runs by their non-seed settings, the statistics, runs listed
apart, the output formats, --sort, --plot's series and the one-line errors, on run folders written
here as a run writes them, and on real tiny runs."""

from __future__ import annotations

import csv
import io
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from gan.compare.cli import main
from gan.compare.groups import group_runs
from gan.compare.plot import fid_series, tensorboard_history
from gan.compare.runs import Run, collect, read_run
from gan.runtime.runs import _process_start
from tests.conftest import PROJECT, QUICK


def write_run(folder: Path, *, seed: int = 0, lr: float = 2e-4, iterations: int = 400, dataset: str = "MNIST",
              generator: dict | None = None, metrics: dict | None = None, fid: float | None = 5.0,
              eval_samples: int = 10000, evaluations: list | None = None, **ending) -> Path:
    """A run folder as gan.train leaves it: the resolved config.yaml (with its per-run paths and
    seed copies) and metrics.json (gan/callbacks/report.py's keys); ``ending`` overrides the latter's
    top-level keys (``status=``, ``iteration=``...; None leaves the key out, as older files do), and
    ``fid=None`` writes no metrics.json."""
    folder.mkdir(parents=True)
    config = {
        "seed": seed, "iterations": iterations, "checkpoint_every": 1000, "print_config": True, "ckpt_path": None,
        "data": {"_target_": "gan.data.MNISTDataModule", "root": "/data", "dataset": dataset, "batch_size": 64, "seed": seed},
        "model": {
            "_target_": "gan.module.GAN",
            "run": {"_target_": "gan.settings.RunSettings", "max_iterations": iterations, "fixed_noise_seed": seed},
            "optimizer_g": {"_target_": "torch.optim.Adam", "_partial_": True, "lr": lr, "betas": [0.5, 0.999]},
            "optimizer_d": {"_target_": "torch.optim.Adam", "_partial_": True, "lr": 2e-4, "betas": [0.5, 0.999]},
            "generator": generator or {"_target_": "gan.nets.dcgan.Generator", "base_channels": 64},
            "ema": None,
        },
        "trainer": {"_target_": "pytorch_lightning.Trainer", "default_root_dir": str(folder), "precision": "32-true"},
        "logger": {"tensorboard": {"save_dir": str(folder), "name": "tensorboard"}},
        "callbacks": {"curves": {"_target_": "gan.callbacks.diagnostics.LearningCurves", "dirpath": str(folder)},
                      "progress_bar": {"refresh_rate": 10}},
        "paths": {"root_dir": ".", "log_dir": str(folder.parent), "output_dir": str(folder)},
    }
    (folder / "config.yaml").write_text(OmegaConf.to_yaml(OmegaConf.create(config)))
    if metrics is None and fid is None:
        return folder
    values = metrics if metrics is not None else {
        "val/fid": fid, "val/kid": fid / 1000, "val/precision": 0.8, "val/recall": 0.7, "val/coverage": 0.9,
        "val/eval_samples": float(eval_samples)}
    report = {"status": "finished", "iteration": iterations, "budget": iterations, "wall_time_s": 60.0,
              "dataset": dataset, "evaluated_at": iterations, "metrics": values, "floor": {"val_floor/fid": 2.0},
              "evaluations": evaluations if evaluations is not None else []} | ending
    report = {k: v for k, v in report.items() if v is not None or k not in ending}  # None: a key older files lack
    (folder / "metrics.json").write_text(json.dumps(report, indent=2) + "\n")
    return folder


def run_compare(capsys, *argv: str) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def as_json(capsys, *argv: str) -> dict:
    code, out, err = run_compare(capsys, *argv, "--format", "json")
    assert code == 0, err
    return json.loads(out)


def by_settings(report: dict) -> dict[tuple, dict]:
    return {tuple(sorted(g["settings"].items())) + (g["dataset"], g["eval_samples"]): g for g in report["groups"]}


# ---------------------------------------------------------------------------------- grouping and statistics
def test_seeds_of_one_config_form_one_group_with_mean_std_best(tmp_path, capsys):
    sweep = tmp_path / "sweep"
    for seed, fid, precision in ((0, 5.0, 0.70), (1, 6.0, 0.90), (2, 7.0, 0.80)):
        run = write_run(sweep / f"{seed}_a", seed=seed, fid=fid)
        report = json.loads((run / "metrics.json").read_text())
        report["metrics"]["val/precision"] = precision
        (run / "metrics.json").write_text(json.dumps(report))
    write_run(sweep / "3_b", seed=0, lr=1e-4, fid=9.0)
    write_run(sweep / "4_b", seed=1, lr=1e-4, fid=11.0)

    report = as_json(capsys, sweep)
    assert report["columns"] == ["optimizer_g.lr"]  # the seed, its copies and the per-run paths do not count
    groups = {g["settings"]["optimizer_g.lr"]: g for g in report["groups"]}
    assert set(groups) == {"0.0002", "0.0001"}
    three = groups["0.0002"]
    assert three["seeds"] == 3 and sorted(r["seed"] for r in three["runs"]) == [0, 1, 2]
    assert three["stats"]["fid"] == {"mean": pytest.approx(6.0), "std": pytest.approx(1.0), "best": 5.0, "n": 3}
    assert three["stats"]["precision"]["best"] == pytest.approx(0.9)  # higher is better
    assert three["stats"]["precision"]["mean"] == pytest.approx(0.8)
    two = groups["0.0001"]
    assert two["stats"]["fid"]["mean"] == pytest.approx(10.0)
    assert two["stats"]["fid"]["std"] == pytest.approx(2 ** 0.5)  # n-1
    assert two["stats"]["kid"]["best"] == pytest.approx(0.009)  # lower is better
    assert "label_accuracy" not in two["stats"]  # no run has it


def test_markdown_table_shows_mean_std_best_and_a_dash_for_one_seed(tmp_path, capsys):
    write_run(tmp_path / "a", seed=0, fid=4.75)
    write_run(tmp_path / "b", seed=1, fid=5.25)
    write_run(tmp_path / "c", seed=0, lr=1e-4, fid=12.3456)
    code, out, err = run_compare(capsys, tmp_path)
    assert code == 0, err
    lines = out.splitlines()
    head = [c.strip() for c in lines[0].strip("|").split("|")]
    assert head[:3] == ["optimizer_g.lr", "samples", "seeds"] and "FID" in head and "best FID" in head
    rows = {r[0]: r for r in ([c.strip() for c in line.strip("|").split("|")] for line in lines[2:4])}
    fid = head.index("FID")
    assert rows["0.0002"][fid] == "5.000 ± 0.354" and rows["0.0002"][fid + 1] == "4.750"
    assert rows["0.0001"][fid] == "12.346 ± —" and rows["0.0001"][head.index("seeds")] == "1"
    assert rows["0.0002"][head.index("wall time")] == "1 min 0 s ± 0 s"


def test_datasets_and_sample_counts_are_never_merged(tmp_path, capsys):
    write_run(tmp_path / "mnist_10k_0", seed=0, fid=5.0)
    write_run(tmp_path / "mnist_10k_1", seed=1, fid=6.0)
    write_run(tmp_path / "mnist_5k", seed=2, fid=8.0, eval_samples=5000)
    write_run(tmp_path / "fashion", seed=0, fid=7.0, dataset="FashionMNIST")
    report = as_json(capsys, tmp_path)
    keyed = {(g["dataset"], g["eval_samples"]): g for g in report["groups"]}
    assert set(keyed) == {("MNIST", 10000), ("MNIST", 5000), ("FashionMNIST", 10000)}
    assert keyed[("MNIST", 10000)]["seeds"] == 2 and keyed[("MNIST", 5000)]["seeds"] == 1
    assert keyed[("MNIST", 5000)]["stats"]["fid"]["mean"] == 8.0


def test_settings_columns_name_a_swapped_class_once_and_drop_interpolated_copies(tmp_path, capsys):
    mlp = {"_target_": "gan.nets.mlp.MLPGenerator", "hidden": [1024, 1024]}
    write_run(tmp_path / "a", generator=mlp)
    write_run(tmp_path / "b")  # the DCGAN generator: its base_channels against the MLP's hidden
    write_run(tmp_path / "c", iterations=800)  # model.run.max_iterations follows iterations
    report = as_json(capsys, tmp_path)
    assert sorted(report["columns"]) == ["generator", "iterations"]  # model.generator: no other key ends so
    rows = {(g["settings"]["generator"], g["settings"]["iterations"]) for g in report["groups"]}
    assert rows == {("MLPGenerator", "400"), ("Generator", "400"), ("Generator", "800")}


def test_hydra_record_gives_the_group_choices_and_overrides(tmp_path, capsys):
    def launched(folder: Path, loss: str, overrides: list[str], **kwargs) -> None:
        write_run(folder, **kwargs)
        record = {"hydra": {"runtime": {"choices": {"loss": loss, "model": "modern_dcgan", "hydra/launcher": "basic",
                                                    "paths": "default"}}}}
        (folder / ".hydra").mkdir()
        (folder / ".hydra" / "hydra.yaml").write_text(OmegaConf.to_yaml(OmegaConf.create(record)))
        (folder / ".hydra" / "overrides.yaml").write_text(OmegaConf.to_yaml(OmegaConf.create(overrides)))

    # the loss choice changes many keys (here the generator, standing for them); the table shows the choice
    launched(tmp_path / "0", "rpgan", ["seed=0", f"paths.log_dir={tmp_path}"], seed=0)
    launched(tmp_path / "1", "rpgan", ["seed=1"], seed=1)
    launched(tmp_path / "2", "hinge", ["loss=hinge", "model.optimizer_g.lr=1e-4"], lr=1e-4,
             generator={"_target_": "gan.nets.mlp.MLPGenerator"})
    report = as_json(capsys, tmp_path)
    assert report["columns"] == ["loss", "optimizer_g.lr"]
    rows = {(g["settings"]["loss"], g["settings"]["optimizer_g.lr"], g["seeds"]) for g in report["groups"]}
    assert rows == {("rpgan", "0.0002", 2), ("hinge", "0.0001", 1)}


# ---------------------------------------------------------------------------------- runs listed apart
def test_unfinished_failed_locked_and_unreported_runs_are_listed_apart(tmp_path, capsys):
    sweep = tmp_path / "multiruns" / "2026-01-01" / "12-00-00"
    write_run(sweep / "0_done", seed=0, fid=5.0)
    write_run(sweep / "1_old_done", seed=1, fid=7.0, status=None, budget=None)  # an older file: its budget reached
    write_run(sweep / "2_interrupted", seed=2, fid=900.0, status="interrupted", stopped_by="SIGINT", iteration=12)
    write_run(sweep / "3_old_stopped", seed=3, fid=900.0, status=None, budget=None, iteration=12)
    write_run(sweep / "4_failed", seed=4, fid=900.0, status="failed", error="loss is NaN at iteration 30", iteration=30)
    live = write_run(sweep / "5_live", seed=5, fid=900.0)
    me = os.getpid()
    (live / ".lock").write_text(json.dumps({"pid": me, "host": socket.gethostname(), "start": _process_start(me),
                                            "since": "2026-01-01 12:00:00"}))
    stale = write_run(sweep / "6_stale_lock", seed=6, fid=6.0)  # a lock whose process is gone (pid reused)
    (stale / ".lock").write_text(json.dumps({"pid": me, "host": socket.gethostname(), "start": "0", "since": "x"}))
    write_run(sweep / "7_killed", seed=7, fid=None)  # config.yaml, no metrics.json
    crashed = write_run(sweep / "8_crashed", seed=8, fid=None)
    (sweep / "failures").mkdir()
    for job, output_dir in ((8, crashed), (9, sweep / "9_never_started")):
        (sweep / "failures" / f"{job}.json").write_text(json.dumps({
            "job": job, "overrides": [f"seed={job}"], "error": "CUDA out of memory", "type": "RuntimeError",
            "output_dir": str(output_dir)}))

    report = as_json(capsys, tmp_path / "multiruns")
    (group,) = report["groups"]
    assert sorted(r["seed"] for r in group["runs"]) == [0, 1, 6]
    assert group["stats"]["fid"]["mean"] == pytest.approx(6.0)  # none of the 900s
    reasons = {Path(a["path"]).name: a["reason"] for a in report["apart"]}
    assert reasons["2_interrupted"] == "interrupted at iteration 12 of 400 by SIGINT"
    assert reasons["3_old_stopped"] == "interrupted at iteration 12 of 400"
    assert reasons["4_failed"] == "failed at iteration 30 of 400: loss is NaN at iteration 30"
    assert reasons["5_live"].startswith(f"being written by process {me} ")
    assert reasons["7_killed"].startswith("no metrics.json")
    assert reasons["8_crashed"] == "failed (sweep job 8): CUDA out of memory"
    assert reasons["9_never_started"] == "failed (sweep job 9 [seed=9]): CUDA out of memory"
    assert len(reasons) == 7

    code, out, _ = run_compare(capsys, tmp_path / "multiruns")
    assert code == 0
    apart = out.split("Listed apart, not averaged:")[1]
    assert "interrupted at iteration 12 of 400 by SIGINT" in apart and "5_live" in apart


def test_nothing_finished_is_one_error_line(tmp_path, capsys):
    write_run(tmp_path / "a", fid=5.0, status="interrupted", iteration=3)
    code, out, err = run_compare(capsys, tmp_path)
    assert code == 1 and out == ""
    assert err.startswith("error: none of the 1 runs found is a finished result") and err.count("\n") == 1
    assert "interrupted at iteration 3 of 400" in err


# ---------------------------------------------------------------------------------- formats, sort, plot
def three_groups(root: Path) -> None:
    write_run(root / "a0", lr=1e-4, fid=9.0, seed=0)
    write_run(root / "a1", lr=1e-4, fid=7.0, seed=1)
    write_run(root / "b0", lr=2e-4, fid=4.0, seed=0,
              metrics={"val/fid": 4.0, "val/precision": 0.6, "val/eval_samples": 10000.0})
    write_run(root / "c0", lr=3e-4, fid=6.0, seed=0,
              metrics={"val/fid": 6.0, "val/precision": 0.9, "val/eval_samples": 10000.0})


def test_csv_parses_and_json_lists_every_run(tmp_path, capsys):
    three_groups(tmp_path)
    code, out, err = run_compare(capsys, tmp_path, "--format", "csv")
    assert code == 0, err
    rows = list(csv.DictReader(io.StringIO(out)))
    assert len(rows) == 3
    first = {r["optimizer_g.lr"]: r for r in rows}["0.0001"]
    assert float(first["fid_mean"]) == pytest.approx(8.0) and float(first["fid_best"]) == 7.0
    assert float(first["fid_std"]) == pytest.approx(2 ** 0.5) and first["seeds"] == "2"
    assert {r["optimizer_g.lr"]: r for r in rows}["0.0002"]["fid_std"] == ""
    report = as_json(capsys, tmp_path)
    paths = sorted(Path(r["path"]).name for g in report["groups"] for r in g["runs"])
    assert paths == ["a0", "a1", "b0", "c0"]


def test_sort_puts_the_best_first(tmp_path, capsys):
    three_groups(tmp_path)
    order = [g["settings"]["optimizer_g.lr"] for g in as_json(capsys, tmp_path, "--sort", "fid")["groups"]]
    assert order == ["0.0002", "0.0003", "0.0001"]  # FID 4, 6, 8: lower first
    order = [g["settings"]["optimizer_g.lr"] for g in as_json(capsys, tmp_path, "--sort", "precision")["groups"]]
    assert order == ["0.0003", "0.0001", "0.0002"]  # 0.9, 0.8, 0.6: higher first
    order = [g["settings"]["optimizer_g.lr"] for g in as_json(capsys, tmp_path, "--sort", "kid")["groups"]]
    assert order[0] == "0.0001"  # the only group with a KID; the others after it


def evaluations(final_fid: float, early: list[tuple[int, float]]) -> list[dict]:
    return [{"iteration": it, "eval_samples": 1000, "fid": fid} for it, fid in early] + [
        {"iteration": 400, "eval_samples": 10000, "fid": final_fid}]


def test_plot_series_are_split_by_sample_count(tmp_path, capsys):
    write_run(tmp_path / "s0", seed=0, fid=5.0, evaluations=evaluations(5.0, [(200, 20.0), (400, 8.0)]))
    write_run(tmp_path / "s1", seed=1, fid=7.0, evaluations=evaluations(7.0, [(100, 40.0), (200, 30.0), (400, 10.0)]))
    write_run(tmp_path / "old", seed=0, lr=1e-4, fid=9.0, evaluations=None)
    report = json.loads((tmp_path / "old" / "metrics.json").read_text())
    del report["evaluations"]  # written before the key existed, and no TensorBoard events
    (tmp_path / "old" / "metrics.json").write_text(json.dumps(report))
    runs, _ = collect([str(tmp_path)])
    groups = group_runs(runs)
    series, without = fid_series(groups)
    assert [r.path.name for r in without] == ["old"]
    lines = {s.samples: s for s in series}
    assert set(lines) == {1000, 10000}  # the final 10,000-sample point is its own series
    early, final = lines[1000], lines[10000]
    assert early.iterations == [200, 400]  # iteration 100: only one seed has it
    assert early.mean == [25.0, 9.0] and early.low == [20.0, 8.0] and early.high == [30.0, 10.0]
    assert final.iterations == [400] and final.mean == [6.0] and (final.low, final.high) == ([5.0], [7.0])
    assert early.seeds == final.seeds == 2 and early.group == final.group

    out = tmp_path / "plots" / "fid.png"
    code, _, err = run_compare(capsys, tmp_path, "--plot", out)
    assert code == 0, err
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_history_falls_back_to_tensorboard_events(tmp_path):
    from torch.utils.tensorboard import SummaryWriter

    writer = SummaryWriter(str(tmp_path / "tensorboard"))
    for step, n, fid in ((100, 1000, 30.0), (200, 1000, 12.0), (200, 10000, 9.0)):
        writer.add_scalar("val/fid", fid, step)
        writer.add_scalar("val/eval_samples", n, step)
        writer.add_scalar("train/d_loss", 1.0, step)
    writer.close()
    # the last value logged at a step wins (the final evaluation comes after the in-training one)
    assert tensorboard_history(tmp_path / "tensorboard") == [(100, 1000, 30.0), (200, 10000, 9.0)]
    assert tensorboard_history(tmp_path / "nothing") is None


# ---------------------------------------------------------------------------------- errors
@pytest.mark.parametrize(("argv", "status", "says"), [
    (["missing"], 1, "error: missing: no such folder"),
    (["empty"], 1, "error: no runs found in empty"),
    (["run*/x"], 1, "error: run*/x matches no folder"),
    (["runs", "--sort", "fdi"], 2, "error: --sort fdi: no such metric; did you mean --sort fid?"),
    (["runs", "--format", "xml"], 2, "error: --format xml: use one of markdown, csv, json"),
    (["runs", "--plot", "fid.jpg"], 2, "error: --plot=fid.jpg must end in .png"),
    ([], 2, "error: the following arguments are required: PATH"),
])
def test_bad_input_is_one_error_line(tmp_path, capsys, monkeypatch, argv, status, says):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "empty").mkdir()
    write_run(tmp_path / "runs" / "a")
    code, out, err = run_compare(capsys, *argv)
    assert code == status and out == ""
    assert err.startswith(says)
    assert len(err.splitlines()) == (1 if status == 1 else 3)  # usage errors: the line, then the usage
    assert "Traceback" not in err and not (tmp_path / "fid.jpg").exists()


def test_command_line_entry_point(tmp_path):
    write_run(tmp_path / "a", fid=5.0)
    env = os.environ | {"PYTHONPATH": str(PROJECT)}
    done = subprocess.run([sys.executable, "-m", "gan.compare", str(tmp_path / "a")], capture_output=True, text=True,
                          env=env, cwd=tmp_path, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "| samples | seeds | FID | best FID |" in done.stdout and "5.000 ± —" in done.stdout
    done = subprocess.run([sys.executable, "-m", "gan.compare", str(tmp_path / "nope")], capture_output=True, text=True,
                          env=env, cwd=tmp_path, timeout=120)
    assert done.returncode == 1 and done.stderr.strip() == f"error: {tmp_path / 'nope'}: no such folder"


# ---------------------------------------------------------------------------------- real runs
def test_real_runs_of_two_seeds_form_one_group(make_cfg, tmp_path, capsys):
    from gan.train import train

    train(make_cfg(*QUICK, run="seed0"))
    train(make_cfg(*QUICK, "seed=1", run="seed1"))
    capsys.readouterr()  # the trainings' console output
    runs = tmp_path / "outputs"
    assert all(isinstance(read_run(runs / name), Run) for name in ("seed0", "seed1"))
    report = as_json(capsys, runs)
    assert report["apart"] == [] and report["columns"] == []  # the per-run paths and seeds do not split them
    (group,) = report["groups"]
    assert group["seeds"] == 2 and sorted(r["seed"] for r in group["runs"]) == [0, 1]
    assert group["stats"]["iterations_run"]["mean"] == 6 and group["dataset"] == "MNIST"
    code, out, err = run_compare(capsys, runs)
    assert code == 0, err
    assert out.splitlines()[2].startswith("| — | 2 | 6 |")  # no evaluation in QUICK: no sample count, no scores
