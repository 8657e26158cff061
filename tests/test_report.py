"""What a researcher sees of a finished run: the evaluation cadence, the TensorBoard layout, the
floor as text, the hyperparameters beside the final metrics and metrics.json (issue 13)."""

from __future__ import annotations

import json
import math
import subprocess
from pathlib import Path
from urllib.parse import quote

import numpy as np
import pytest
import torch
from omegaconf import open_dict
from PIL import Image
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.custom_scalar import layout_pb2
from tensorboard.plugins.hparams import plugin_data_pb2

from gan.callbacks.evaluation import evenly_spaced_every
from gan.callbacks.training import real_vs_generated
from gan.runtime.serve import get_json, served_tensorboard
from gan.train import train
from tests.conftest import PROJECT, QUICK, compose_config

ITERATIONS = 16
TRAIN_SAMPLES, FINAL_SAMPLES = 50, 100
EVALUATED = [*QUICK[:-1], f"iterations={ITERATIONS}", "callbacks.evaluation.recipe=quick",
             f"eval_samples={TRAIN_SAMPLES}", f"eval_final_samples={FINAL_SAMPLES}"]


def tiny_evaluated_run(folder: Path, *overrides: str) -> tuple[Path, dict]:
    """A QUICK run with the default evaluation cadence (quick classifier, small counts)."""
    cfg = compose_config([*EVALUATED, *overrides], folder)
    with open_dict(cfg):
        cfg.paths.output_dir = str(folder / "run")
    metrics = train(cfg)
    return Path(cfg.paths.output_dir), metrics


@pytest.fixture(scope="module")
def finished(tmp_path_factory, cache):
    run, metrics = tiny_evaluated_run(tmp_path_factory.mktemp("report"))
    events = EventAccumulator(str(run / "tensorboard"), size_guidance={"scalars": 0, "images": 0, "tensors": 0})
    events.Reload()
    return run, metrics, events


@pytest.mark.parametrize(("budget", "points", "every"), [(6000, 8, 750), (16, 8, 2), (10, 8, 2), (5, 8, 1), (100, 8, 13)])
def test_evaluations_are_spaced_evenly_over_the_budget(budget, points, every):
    assert evenly_spaced_every(budget, points) == every
    in_training = [it for it in range(1, budget + 1) if it % every == 0]
    assert min(4, budget) <= len(in_training) <= points  # at least 4 FID points, plus the end


def test_default_cadence_gives_eight_points_small_counts_in_training_and_the_full_count_at_the_end(finished):
    _, metrics, events = finished
    fid = events.Scalars("val/fid")
    assert [e.step for e in fid] == list(range(2, ITERATIONS + 1, 2))
    assert all(math.isfinite(e.value) for e in fid)
    counts = [(e.step, e.value) for e in events.Scalars("val/eval_samples")]
    assert counts == [(it, TRAIN_SAMPLES) for it in range(2, ITERATIONS, 2)] + [(ITERATIONS, FINAL_SAMPLES)]
    assert metrics["val/eval_samples"] == FINAL_SAMPLES


def test_floor_is_one_fid_line_and_text_once_per_count_not_nine_panels(finished):
    _, _, events = finished
    floor_tags = [t for t in events.Tags()["scalars"] if t.startswith("val_floor/")]
    assert floor_tags == ["val_floor/fid"]
    texts = [t for t in events.Tags()["tensors"] if t.startswith("val_floor/")]
    assert sorted(texts) == sorted([f"val_floor/n={TRAIN_SAMPLES}/text_summary", f"val_floor/n={FINAL_SAMPLES}/text_summary"])
    table = events.Tensors(f"val_floor/n={FINAL_SAMPLES}/text_summary")[0].tensor_proto.string_val[0].decode()
    assert "| fid |" in table and "| coverage |" in table


def test_custom_scalars_layout_puts_fid_with_its_floor_accuracies_and_losses_on_one_chart_each(finished):
    _, _, events = finished
    layout = layout_pb2.Layout()
    layout.ParseFromString(events.Tensors("custom_scalars__config__")[0].tensor_proto.string_val[0])
    charts = {c.title: list(c.multiline.tag) for cat in layout.category for c in cat.chart}
    fid = next(tags for title, tags in charts.items() if title.startswith("FID"))
    assert {"^val/fid$", "^val_floor/fid$"} <= set(fid)
    assert ["^train/d_acc_real$", "^train/d_acc_fake$"] in charts.values()
    assert ["^train/d_loss$", "^train/g_loss$"] in charts.values()
    logged = set(events.Tags()["scalars"])
    for tags in charts.values():  # every charted tag is one the run logs
        assert {t.strip("^$") for t in tags} <= logged | {"val/fid_raw"}


def test_hparams_sit_beside_the_final_metrics_and_metrics_json(finished):
    run, metrics, events = finished
    start = plugin_data_pb2.HParamsPluginData()
    start.ParseFromString(events.summary_metadata["_hparams_/session_start_info"].plugin_data.content)
    hparams = {k: v.WhichOneof("kind") and getattr(v, v.WhichOneof("kind")) for k, v in start.session_start_info.hparams.items()}
    assert hparams["model"] == "MLPGenerator" and hparams["loss"] == "nonsaturating"
    assert hparams["batch_size"] == 16 and hparams["iterations"] == ITERATIONS and hparams["seed"] == 0
    assert {"lr_g", "lr_d", "betas_g", "d_steps", "g_steps"} <= set(hparams)
    experiment = plugin_data_pb2.HParamsPluginData()
    experiment.ParseFromString(events.summary_metadata["_hparams_/experiment"].plugin_data.content)
    metric_tags = {m.name.tag for m in experiment.experiment.metric_infos}
    assert {"val/fid", "val/coverage", "val/precision", "val/recall", "run/wall_time_s"} <= metric_tags
    assert {"val/fid", "run/wall_time_s"} <= set(events.Tags()["scalars"])  # what the tab reads

    assert hparams["status"] == "finished"
    report = json.loads((run / "metrics.json").read_text())
    assert report["status"] == "finished" and "error" not in report and "stopped_by" not in report
    assert report["iteration"] == report["budget"] == ITERATIONS and report["evaluated_at"] == ITERATIONS
    assert report["dataset"] == "MNIST" and report["wall_time_s"] > 0
    assert report["metrics"]["val/fid"] == pytest.approx(metrics["val/fid"])
    assert report["metrics"]["val/eval_samples"] == FINAL_SAMPLES
    assert report["floor"]["val_floor/fid"] >= 0


def test_timelapse_gif_has_one_captioned_frame_per_kept_grid(finished):
    run, _, _ = finished
    samples = run / "samples"
    kept = sorted(int(p.stem.split("_")[-1]) for p in samples.glob("fixed_noise_*.png"))
    # iteration 1, every sample_every=3, 8 frames spread over the budget (every 2nd), the end
    assert kept == [1, 2, 3, 4, 6, 8, 9, 10, 12, 14, 15, 16]
    with Image.open(samples / "timelapse.gif") as gif:
        assert gif.n_frames == len(kept)
        gif.seek(0)
        first = np.asarray(gif.convert("RGB"))
        gif.seek(gif.n_frames - 1)
        last = np.asarray(gif.convert("RGB"))
    grid = np.asarray(Image.open(samples / "fixed_noise_16.png").convert("RGB"))
    assert first.shape[1] == grid.shape[1] and first.shape[0] > grid.shape[0]  # the caption strip above
    caption = last[: first.shape[0] - grid.shape[0]]
    assert (caption < 128).any() and (caption > 128).any()  # dark text on a light strip
    assert not np.array_equal(first, last)


def test_real_vs_generated_has_a_red_divider_and_labels():
    real, fake = torch.zeros(16, 1, 28, 28), torch.ones(16, 1, 28, 28)
    picture = real_vs_generated(real, fake, nrow=8)
    red = (picture[0] > 0.7) & (picture[1] < 0.3) & (picture[2] < 0.3)
    red_rows = red.all(dim=1).nonzero().flatten().tolist()
    assert red_rows and red_rows == list(range(red_rows[0], red_rows[0] + len(red_rows)))  # one band across
    above, below = picture[:, : red_rows[0]], picture[:, red_rows[-1] + 1:]
    grid_height = 2 * (28 + 2) + 2
    assert above.shape[1] == below.shape[1] > grid_height  # each half: a label strip and its grid
    for half, label in ((above, "real"), (below, "generated")):
        strip = half[:, : half.shape[1] - grid_height]
        assert (strip < 0.5).any(), f"no {label} text"
    assert above[:, -grid_height + 3:].mean() < below[:, -grid_height + 3:].mean()  # real (black) on top


def test_tensorboard_served_over_a_finished_run_shows_every_plugin_and_the_fid_curve(finished):
    run, _, _ = finished
    with served_tensorboard(run.parent) as base:
        plugins = get_json(f"{base}/data/plugins_listing")
        for plugin in ("scalars", "images", "hparams", "custom_scalars", "text"):
            assert plugins.get(plugin, {}).get("enabled"), f"{plugin} is not active: {plugins.get(plugin)}"
        scalars = get_json(f"{base}/data/plugin/scalars/tags")
        (name,) = scalars  # one run, named by its folder under --logdir
        assert name == "run/tensorboard"
        assert {"val/fid", "val_floor/fid", "train/d_loss", "run/wall_time_s"} <= set(scalars[name])
        assert not [t for t in scalars[name] if t.startswith("val_floor/") and t != "val_floor/fid"]
        fid = get_json(f"{base}/data/plugin/scalars/scalars?run={quote(name)}&tag={quote('val/fid')}")
        assert [step for _, step, _ in fid] == list(range(2, ITERATIONS + 1, 2))
        images = get_json(f"{base}/data/plugin/images/tags")
        assert {"samples/fixed_noise", "samples/real_vs_generated"} <= set(images[name])
        layout = get_json(f"{base}/data/plugin/custom_scalars/layout")
        assert {c["title"] for c in layout["category"]} == {"quality", "discriminator", "losses"}
        experiment = get_json(f"{base}/data/plugin/hparams/experiment", {"experimentName": ""})
        assert "lr_g" in {h["name"] for h in experiment["hparamInfos"]}
        assert "val/fid" in {m["name"]["tag"] for m in experiment["metricInfos"]}


def test_make_tensorboard_passes_its_arguments_and_binds_to_localhost():
    done = subprocess.run(["make", "-n", "tensorboard", "ARGS=--port 7007 --reload_interval 5"], cwd=PROJECT,
                          capture_output=True, text=True, timeout=60, check=False)
    (line,) = [x for x in done.stdout.splitlines() if "bin/tensorboard" in x]
    assert "--host 127.0.0.1" in line and line.endswith("--port 7007 --reload_interval 5")


def test_a_run_trained_by_epochs_spaces_its_points_over_the_epochs_batches(tmp_path, cache):
    run, metrics = tiny_evaluated_run(tmp_path, "iterations=null", "trainer.max_epochs=1", "data.digits=[1]",
                                      "data.batch_size=200", "sample_every=100", "log_every=5")
    batches = int(metrics["train/iteration"])  # one epoch of digit 1 (6742 images) in full batches of 200
    assert batches == 6742 // 200
    every = evenly_spaced_every(batches, 8)
    events = EventAccumulator(str(run / "tensorboard"), size_guidance={"scalars": 0})
    events.Reload()
    assert [e.step for e in events.Scalars("val/fid")] == [*range(every, batches, every), batches]
