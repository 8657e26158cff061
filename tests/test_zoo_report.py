"""make zoo-report: trains each recipe for a wall-clock budget, scores it, writes a table with the floor."""

import json

from gan.metrics.evaluator import METRICS
from gan.zoo_report import COLUMNS, main


def test_report_trains_scores_and_resumes_without_training_again(cache, tmp_path, capsys):
    out = tmp_path / "zoo"
    args = ["experiments=cs231n_gan", "budget=00:00:00:04", "n=200", "recipe=quick", f"out={out}"]
    assert main(args) == 0
    table = (out / "zoo_report.md").read_text().splitlines()
    assert table[0].startswith("| experiment | GAN iterations in 00:00:00:04 |")
    assert table[2].startswith("| cs231n_gan | ") and table[3].startswith("| *floor (real train vs test)* |")
    report = json.loads((out / "zoo_report.json").read_text())
    row = report["rows"]["cs231n_gan"]
    assert row["iterations"] > 0 and 0 < row["train_seconds"] < 60
    assert set(COLUMNS) <= set(row) and set(report["floor"]) == set(METRICS)
    assert row["fid"] > report["floor"]["fid"]  # a few seconds of training is far from real data
    assert (out / "cs231n_gan" / "checkpoints" / "last.ckpt").is_file()
    capsys.readouterr()

    # an interrupted report run again with the same out= scores the finished runs without retraining
    assert main(args) == 0
    assert "cs231n_gan: trained before" in capsys.readouterr().out
    again = json.loads((out / "zoo_report.json").read_text())["rows"]["cs231n_gan"]
    assert again == row  # same checkpoint, same samples (seed 0), same scores


def test_an_interrupted_experiment_resumes_with_the_rest_of_its_budget(cache, tmp_path, capsys):
    out = tmp_path / "zoo"
    args = ["experiments=cs231n_gan", "budget=00:00:00:04", "n=200", "recipe=quick", f"out={out}"]
    assert main(args) == 0
    first = json.loads((out / "zoo_report.json").read_text())["rows"]["cs231n_gan"]
    (out / "cs231n_gan" / "zoo_run.json").unlink()  # as if a signal had stopped training
    capsys.readouterr()
    assert main(args) == 0
    assert "an interrupted run" in capsys.readouterr().out
    again = json.loads((out / "zoo_report.json").read_text())["rows"]["cs231n_gan"]
    # went on from the checkpoint (not from scratch), with the budget it had left: almost none
    assert first["iterations"] <= again["iterations"] <= first["iterations"] + 20
