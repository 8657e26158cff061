"""The benchmark compares like with like: the plain loop starts from the template's networks, and
both timers count the iterations they claim."""

import json
from types import SimpleNamespace

import pytest
import pytorch_lightning as pl
import torch

from bench.plain import build_networks, run_plain
from bench.quality import FidTrace
from bench.run import print_table
from bench.template import run_template
from gan.runtime.bookkeeping import History
from gan.runtime.build import build_gan
from tests.conftest import QUICK


def test_plain_loop_starts_from_the_templates_initial_networks(make_cfg):
    for model in ("mlp", "dcgan"):
        cfg = make_cfg(f"model={model}")
        G, D, _ = build_networks(cfg)
        pl.seed_everything(int(cfg.seed), verbose=False)
        gan = build_gan(cfg)
        for mine, theirs in ((G, gan.generator), (D, gan.discriminator)):
            a, b = mine.state_dict(), theirs.state_dict()
            assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), model


def test_both_timers_measure_their_window(make_cfg):
    assert run_plain(make_cfg(*QUICK), iterations=3, warmup=1) > 0
    cfg = make_cfg(*QUICK)
    assert run_template(cfg, iterations=4, warmup=2) > 0  # asserts inside that it timed 4 iterations


def test_time_to_quality_trace_times_each_threshold_and_stops_below_the_lowest():
    trace = FidTrace(thresholds=[20.0, 50.0])
    trainer = SimpleNamespace(should_stop=False)
    module = SimpleNamespace(history=History())
    trace.on_train_start(trainer, module)
    for it, fid in ((100, 300.0), (200, 45.0), (300, 30.0), (400, 19.0)):
        module.history.add_evaluation(it, {"fid": fid}, {"fid": 2.0})
        trace.on_train_batch_end(trainer, module, None, None, 0)
        assert trainer.should_stop == (fid < 20)
    assert [p["iteration"] for p in trace.trace] == [100, 200, 300, 400]
    reached = trace.first_below()
    assert (reached["20"]["iteration"], reached["50"]["iteration"]) == (400, 200)


def test_time_to_quality_stops_at_its_time_limit():
    trace = FidTrace(thresholds=[10.0], max_seconds=0.0)
    trainer = SimpleNamespace(should_stop=False)
    module = SimpleNamespace(history=History())
    trace.on_train_start(trainer, module)
    trace.on_train_batch_end(trainer, module, None, None, 0)
    assert trainer.should_stop and trace.first_below() == {"10": None}


def test_table_prints_every_recipe_and_switch(capsys):
    row = {"template_its": 2.0, "plain_its": 1.9, "ratio": 1.05, "pair_ratios": [1.04, 1.06],
           "peak_rss_mb": 1200.0, "plain_peak_rss_mb": 900.0}
    print_table({"cs231n_gan": row, "cs231n_dcgan": row,
                 "switches": {"recipe": "cs231n_dcgan", "reuse_fake": {"its": 2.3, "vs_plain": 1.2, "vs_template_default": 1.15}}})
    out = capsys.readouterr().out
    assert "| cs231n_gan | 2.00 | 1.90 | 1.050 | 1.04 1.06 | 1200 / 900 |" in out and "| reuse_fake | 2.30 |" in out


def test_flop_counter_counts_a_matmul_and_its_backward_exactly():
    from bench.efficiency import FlopCounter

    a, b = torch.randn(4, 5, requires_grad=True), torch.randn(5, 6)
    with FlopCounter() as counter:
        (a @ b).sum().backward()
    assert counter.total == 2 * 4 * 5 * 6 * 2  # forward, and the gradient of a (b needs none)


def test_work_of_an_iteration_is_counted_through_gradient_penalties(make_cfg):
    from bench.efficiency import COUNTED, efficiency, gflop_per_iteration

    plain = gflop_per_iteration(make_cfg(*QUICK), start=2)
    penalised = gflop_per_iteration(make_cfg(*QUICK, "+terms=r1_r2", "loss.terms.r1_r2.every=1", run="r1"), start=2)
    assert 0 < plain < penalised  # R1's double backward is work too
    row = efficiency(plain, its=10.0, fp32_roof=100.0)
    assert row["gflops"] == round(plain * 10, 1) and row["of_fp32_roof"] == round(plain * 10 / 100, 3)
    assert COUNTED % 4 == 0  # the default recipe's lazy penalties are averaged in


def test_work_of_a_conditional_iteration_adds_the_labels_layers(make_cfg):
    from bench.efficiency import gflop_per_iteration

    small = ["data.batch_size=16", "trainer.precision=32-true"]
    unconditional = gflop_per_iteration(make_cfg(*small), start=1)
    conditional = gflop_per_iteration(make_cfg("experiment=conditional", *small, run="conditional"), start=1)
    # G's first layer takes 32 more inputs and D adds the projection: more work, well under 1% more
    assert unconditional < conditional < 1.01 * unconditional


def test_profile_splits_an_iteration_into_its_phases(capsys, monkeypatch):
    from bench.profile import main as profile_main
    from tests.conftest import data_root

    monkeypatch.setenv("GAN_DATA_ROOT", str(data_root()))
    assert profile_main(["--recipe", "cs231n_gan", "--warmup", "2", "--iterations", "3", "--rows", "5",
                         "data.batch_size=16", "callbacks.progress_bar=null"]) == 0
    out = capsys.readouterr().out
    rows = {line.split("|")[1].strip(): float(line.split("|")[2]) for line in out.splitlines()
            if line.startswith("| ") and not line.startswith("| phase")}
    assert rows["D update: backward + step"] > 0 and rows["G update: backward + step"] > 0
    assert rows["G forward passes"] > 0 and rows["optimizer steps (both networks; inside the updates)"] > 0
    assert "aten::" in out  # torch's per-op table follows


def test_fid_vs_time_reads_the_evaluations_against_the_training_clock(tmp_path):
    from torch.utils.tensorboard import SummaryWriter

    from bench.fid_vs_time import fid_over_time, plot

    run = tmp_path / "run"
    writer = SummaryWriter(str(run / "tensorboard"))
    writer.add_scalar("train/d_loss", 1.0, 10, walltime=1000.0)  # the first training scalar: t = 0
    for step, fid, n, floor, t in ((20, 80.0, 1000, 8.0, 1030.0), (40, 20.0, 1000, 8.0, 1060.0), (50, 6.0, 10000, 2.3, 1095.5)):
        writer.add_scalar("val/fid", fid, step, walltime=t)
        writer.add_scalar("val/eval_samples", n, step, walltime=t)
        writer.add_scalar("val_floor/fid", floor, step, walltime=t)
    writer.close()
    points = fid_over_time(run)
    assert [(p.seconds, p.fid, p.iteration, p.samples, p.floor) for p in points] == [
        (30.0, 80.0, 20, 1000, 8.0), (60.0, 20.0, 40, 1000, 8.0), (95.5, 6.0, 50, 10000, pytest.approx(2.3))]
    out = plot({"run": points}, tmp_path / "fid_vs_time.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(SystemExit, match="no val/fid"):
        SummaryWriter(str(tmp_path / "bare" / "tensorboard")).close()
        fid_over_time(tmp_path / "bare")


def test_fid_vs_time_reads_a_bench_results_time_to_quality_traces(tmp_path):
    from bench.fid_vs_time import bench_traces

    result = {"time_to_quality": {"default": {"eval_samples": 2000, "trace": [
        {"iteration": 250, "seconds": 81.2, "fid": 140.5}, {"iteration": 500, "seconds": 160.0, "fid": 19.1}]}}}
    path = tmp_path / "bench.json"
    path.write_text(json.dumps(result))
    series = bench_traces(path)
    assert [(p.seconds, p.fid, p.iteration, p.samples, p.floor) for p in series["default (make bench)"]] == [
        (81.2, 140.5, 250, 2000, None), (160.0, 19.1, 500, 2000, None)]
    path.write_text(json.dumps({"roof": {}}))
    with pytest.raises(SystemExit, match="no time_to_quality"):
        bench_traces(path)
