"""iterations=auto: a minutes budget becomes a count of GAN iterations measured on this machine,
recorded in the run and kept by a resume."""

import re
from pathlib import Path

import pytest
import yaml

from gan.runtime import budget
from gan.runtime.budget import RateProbe, iterations_for, resolve_iterations
from gan.runtime.checkpoints import load_checkpoint
from gan.runtime.errors import ConfigError
from gan.train import train
from tests.conftest import PROJECT, QUICK

AUTO = [*QUICK, "iterations=auto"]


def test_make_train_budgets_minutes_and_the_config_a_count(make_cfg):
    recipe = re.search(r"^train:.*\n\t(.*)$", (PROJECT / "Makefile").read_text(), re.MULTILINE).group(1)
    assert "-m gan.train iterations=auto $(ARGS)" in recipe  # ARGS="iterations=N" still wins (the last one)
    cfg = make_cfg()
    assert isinstance(cfg.iterations, int) and cfg.train_minutes > 0  # seeds of a sweep train alike


@pytest.mark.parametrize(("rate", "minutes", "multiple", "count"),
                         [(10.37, 1, 10, 620), (10.37, 1, 1, 622), (0.01, 1, 10, 10), (50.0, 0.5, 4, 1500)])
def test_the_count_is_the_minutes_at_the_rate_rounded_down(rate, minutes, multiple, count):
    assert iterations_for(rate, minutes, multiple) == count


class _Trainer:
    should_stop = False


def test_the_probe_times_only_after_the_warmup_and_stops_when_it_has_enough(monkeypatch):
    clock = iter(range(100))  # one second per iteration
    monkeypatch.setattr(budget.time, "perf_counter", lambda: float(next(clock)))
    probe, trainer = RateProbe(warmup=3, min_timed=5, min_seconds=2.0), _Trainer()
    batches = 0
    while not trainer.should_stop:
        probe.on_train_batch_end(trainer, None, None, None, batches)
        batches += 1
    assert (batches, probe.timed, probe.seconds, probe.rate) == (8, 5, 5.0, 1.0)


def test_auto_measures_the_rate_and_fixes_a_count_before_the_run(make_cfg):
    cfg = make_cfg(*AUTO, "train_minutes=0.02")
    resolve_iterations(cfg)
    assert isinstance(cfg.iterations, int) and cfg.iterations > 0
    assert cfg.iterations % cfg.log_every == 0
    assert cfg.model.run.max_iterations == cfg.iterations  # everything that counts iterations sees it
    assert not Path(cfg.paths.output_dir).exists()  # the probe wrote nothing into the run folder
    assert (cfg.trainer.precision, cfg.trainer.enable_model_summary) == ("auto", True)  # its trainer settings stayed its own


def test_a_run_records_its_count_and_a_resume_keeps_it(make_cfg, monkeypatch):
    monkeypatch.setattr(budget, "measure_rate", lambda cfg: 300.0)  # iterations per second
    cfg = make_cfg(*AUTO, "train_minutes=0.0004", "log_every=1")  # 300/s * 0.024 s = 7.2 -> 7 iterations
    train(cfg)
    run = Path(cfg.paths.output_dir)
    assert yaml.safe_load((run / "config.yaml").read_text())["iterations"] == 7
    ckpt = load_checkpoint(run / "checkpoints" / "last.ckpt")
    assert (ckpt["gan"]["iteration"], ckpt["gan"]["config"]["iterations"]) == (7, 7)

    def no_probe(cfg):
        raise AssertionError("a resume measured the rate again")

    monkeypatch.setattr(budget, "measure_rate", no_probe)
    resumed = make_cfg(*AUTO, "train_minutes=5", "log_every=1", "ckpt_path=last", run="ignored")
    train(resumed)  # its budget is already reached: it stops at once
    assert resumed.iterations == 7  # the resumed run's own count, not 5 minutes' worth
    assert load_checkpoint(run / "checkpoints" / "last.ckpt")["gan"]["iteration"] == 7


@pytest.mark.parametrize(("override", "says"), [
    ("train_minutes=0", "train_minutes=0 must be a positive number"),
    ("train_minutes=soon", "train_minutes='soon' must be a positive number"),
    ("trainer.devices=2", "set iterations=N"),
])
def test_auto_refuses_what_it_cannot_measure(make_cfg, override, says):
    cfg = make_cfg(*AUTO, override)
    with pytest.raises(ConfigError, match=says):
        resolve_iterations(cfg)
    assert not Path(cfg.paths.output_dir).exists()
