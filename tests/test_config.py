"""Config checks: each bad setting is rejected before any work with one line naming the key, the
value given and what is allowed (the keys by gan.runtime.config, the values by the constructors that use
them); every shipped option passes; the CLI shows only that line."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from hydra.errors import ConfigCompositionException
from omegaconf import open_dict

import gan.runtime.config
from gan.runtime.build import build_gan, build_run
from gan.runtime.config import validate
from gan.runtime.errors import ConfigError, RunError, main_guard
from gan.train import train
from tests.conftest import CONF_DIR, PROJECT, QUICK, compose_config, data_root

SIMULTANEOUS_MODELS = ("renom_maxout", "tf_simple")


def options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF_DIR / group).glob("*.yaml"))


def check(cfg) -> None:
    """What gan.train does before writing anything: check the keys, then build every part."""
    validate(cfg)
    with open_dict(cfg):
        cfg.paths.output_dir = "never-written"  # building writes nothing; the folder need not exist
    build_run(cfg)


def rejection(*overrides: str) -> str:
    """The message the checks give for the config composed with ``overrides``."""
    with pytest.raises(ConfigError) as caught:
        check(compose_config(list(overrides)))
    message = str(caught.value)
    assert "\n" not in message, message  # one line
    return message


# (overrides, the exact message: key=value given, then what is allowed)
REJECTED = {
    "batch_size": (["data.batch_size=0"], "data.batch_size=0: must be a positive integer"),
    "batch_size_negative": (["data.batch_size=-4"], "data.batch_size=-4: must be a positive integer"),
    "batch_size_float": (["data.batch_size=1.5"], "data.batch_size=1.5: must be a positive integer"),
    "batch_size_bool": (["data.batch_size=true"], "data.batch_size=true: must be a positive integer"),
    "lr_g": (["model.optimizer_g.lr=0"], "model.optimizer_g.lr=0: must be a positive number"),
    "lr_d": (["model.optimizer_d.lr=-0.001"], "model.optimizer_d.lr=-0.001: must be a positive number"),
    "noise_dim": (["model.noise.dim=0"], "model.noise.dim=0: must be a positive integer"),
    "iterations": (["iterations=0"], "iterations=0: must be a positive integer or null"),
    "checkpoint_every": (["checkpoint_every=0"], "checkpoint_every=0: must be a positive integer"),
    "sample_every": (["sample_every=-1"], "sample_every=-1: must be a positive integer"),
    "log_every": (["log_every=0"], "log_every=0: must be a positive integer"),
    "d_steps": (["model.updates.d_steps=0"], "model.updates.d_steps=0: must be a positive integer"),
    "g_steps": (["model.updates.g_steps=0"], "model.updates.g_steps=0: must be a positive integer"),
    "digits_empty": (["data.digits=[]"], "data.digits=[]: must be null (all ten) or a non-empty list of digits 0-9, e.g. [7]"),
    "digits_range": (["data.digits=[3,10]"], "data.digits=[3, 10]: must be null (all ten) or a non-empty list of digits 0-9, e.g. [7]"),
    "digits_scalar": (["data.digits=7"], "data.digits=7: must be null (all ten) or a non-empty list of digits 0-9, e.g. [7]"),
    "schedule": (["loss=nonsaturating", "model.updates.schedule=alternate"], "model.updates.schedule=alternate: must be one of alternating, simultaneous"),
    "dataset": (["data.dataset=CIFAR"], "data.dataset=CIFAR: must be one of MNIST, FashionMNIST"),
    # a loss that needs something the model lacks (declared by the loss config's `requires`)
    "wasserstein_simultaneous": (
        ["loss=wasserstein", "model.updates.schedule=simultaneous"],
        "model.updates.schedule=simultaneous: loss=wasserstein needs model.updates.schedule=alternating",
    ),
    "gradient_penalty_simultaneous": (
        ["loss=wasserstein_gp", "model.updates.schedule=simultaneous"],
        "model.updates.schedule=simultaneous: loss=wasserstein_gp needs model.updates.schedule=alternating",
    ),
    "requires_any_path": (
        ["loss=nonsaturating", "+loss.requires={updates.d_steps: [2, 5]}"],
        "model.updates.d_steps=1: loss=nonsaturating needs model.updates.d_steps to be one of 2, 5",
    ),
    "requires_missing_setting": (
        ["loss=nonsaturating", "+loss.requires={discriminator.output: score}"],
        "model.discriminator.output is not set: loss=nonsaturating needs model.discriminator.output=score",
    ),
    "requires_list_must_be_set": (
        ["model=dcgan", "loss=nonsaturating", "+loss.requires=[updates.scheduler_d]"],
        "model.updates.scheduler_d=null: loss=nonsaturating needs model.updates.scheduler_d to be set",
    ),
    # a penalty on D is applied by the alternating D phase only, with or without `requires`
    "penalty_simultaneous": (
        ["loss=wasserstein_gp", "~loss.requires", "model.updates.schedule=simultaneous"],
        "model.updates.schedule=simultaneous: loss=wasserstein_gp needs model.updates.schedule=alternating",
    ),
    # unknown keys (added with +, which Hydra's struct mode lets through), with the close match
    "model_typo": (["+model.d_step=2"], "model.d_step=2: unknown key; did you mean model.updates.d_steps?"),
    "data_typo": (["+data.batchsize=64"], "data.batchsize=64: unknown key; did you mean data.batch_size?"),
    "top_level_typo": (["+iteration=5"], "iteration=5: unknown key; did you mean iterations?"),
    "trainer_typo": (["+trainer.max_step=5"], "trainer.max_step=5: unknown key; did you mean trainer.max_steps?"),
    "nested_typo": (["+model.generator.hiden=[64]"], "model.generator.hiden=[64]: unknown key; did you mean model.generator.hidden?"),
    "loss_typo": (["+loss.weight_clp=0.1"], "loss.weight_clp=0.1: unknown key; did you mean loss.weight_clip?"),
    "trainer_unknown": (["+trainer.foo=1"], "trainer.foo=1: unknown key; not an argument of pytorch_lightning.Trainer"),
    "trainer_set_by_train": (["+trainer.logger=false"], "trainer.logger=false: not read from here; gan.train sets it from the logger group"),
    "budget_schedule_without_budget": (
        ["experiment=ablate_cosine_decay", "iterations=null", "trainer.max_epochs=1"],
        "iterations=null: model.updates.scheduler_g decays over the iterations budget; set iterations=N, or model.updates.scheduler_g=null to train by epochs",
    ),
    "callback_without_target": (
        ["+callbacks.extra={every: 3}"],
        "callbacks.extra={every: 3}: has no _target_, so nothing builds it; give it a _target_ or set callbacks.extra=null to switch it off",
    ),
    "target_not_importable": (
        ["model.generator._target_=gan.nets.mlp.MLPGenerater"],
        "model.generator._target_=gan.nets.mlp.MLPGenerater: cannot be imported (gan.nets.mlp has no 'MLPGenerater')",
    ),
}


@pytest.mark.parametrize("case", sorted(REJECTED))
def test_bad_setting_is_rejected_with_key_value_and_what_is_allowed(case):
    overrides, expected = REJECTED[case]
    assert rejection(*overrides) == expected


def test_unknown_top_level_key_lists_the_allowed_ones():
    message = rejection("+zzz=1")
    assert message.startswith("zzz=1: unknown key; the top level takes: ")
    for key in ("seed", "iterations", "checkpoint_every", "data", "model", "trainer"):
        assert key in message


def test_unknown_model_key_without_a_close_match_lists_the_model_arguments():
    message = rejection("+model.zzz=1")
    assert message.startswith("model.zzz=1: unknown key; model takes: ")
    assert "updates" in message and "terms" in message


def test_a_misspelt_key_without_plus_is_hydras_own_error():
    with pytest.raises(ConfigCompositionException, match="d_step"):
        compose_config(["model.d_step=2"])


def test_a_top_level_key_is_declared_once_in_the_root_config(monkeypatch, tmp_path):
    cfg = compose_config(["+new_feature_every=5"])
    with pytest.raises(ConfigError, match="new_feature_every=5: unknown key"):
        validate(cfg)
    root = tmp_path / "train.yaml"
    root.write_text(gan.runtime.config.ROOT_CONFIG.read_text() + "new_feature_every: 10\n")
    monkeypatch.setattr(gan.runtime.config, "ROOT_CONFIG", root)
    validate(cfg)


def test_run_level_keys_reach_the_model_by_interpolation():
    cfg = compose_config(["iterations=7", "log_every=3", "seed=11", "on_nonfinite=skip"])
    check(cfg)
    model = build_gan(cfg)
    assert (model.max_iterations, model.log_every, model.run.on_nonfinite) == (7, 3, "skip")
    assert model.loss.name == "rpgan"


def test_config_error_is_a_value_error():
    assert issubclass(ConfigError, ValueError)


def test_the_default_config_passes():
    check(compose_config())


def test_null_iterations_and_digits_and_plus_trainer_arguments_pass():
    # training by epochs: a model without a schedule over the iterations budget (the tutorials')
    check(compose_config(["model=dcgan", "iterations=null", "trainer.max_epochs=1", "data.digits=[0,9]",
                          "+trainer.enable_progress_bar=false"]))


@pytest.mark.parametrize("option", options("model"))
def test_every_model_option_passes(option):
    # the default loss (rpgan) penalises D in the alternating D phase: the simultaneous models take another
    loss = ["loss=nonsaturating"] if option in SIMULTANEOUS_MODELS else []
    check(compose_config([f"model={option}", *loss]))


def test_a_simultaneous_model_with_the_default_loss_gets_one_line():
    assert rejection("model=tf_simple") == "model.updates.schedule=simultaneous: loss=rpgan needs model.updates.schedule=alternating"


@pytest.mark.parametrize("group", ["loss", "experiment", "debug", "data", "trainer", "logger", "callbacks"])
def test_every_option_of_the_other_groups_passes(group):
    for option in options(group):
        check(compose_config([f"{group}={option}"]))


def test_train_validates_before_any_work(make_cfg, tmp_path):
    cfg = make_cfg(*QUICK, "data.batch_size=0")
    with pytest.raises(ConfigError, match=r"^data\.batch_size=0: must be a positive integer$"):
        train(cfg)
    assert not Path(cfg.paths.output_dir).exists()  # no run folder, no checkpoint


def test_main_guard_turns_our_errors_into_one_line(monkeypatch):
    monkeypatch.delenv("HYDRA_FULL_ERROR", raising=False)

    def fails(cfg):
        raise RunError("ckpt_path=x.ckpt: no such file")

    with pytest.raises(SystemExit) as caught:
        main_guard(fails)(None)
    assert caught.value.code == "error: ckpt_path=x.ckpt: no such file"  # printed on stderr, status 1

    def bug(cfg):
        raise KeyError("a bug")

    with pytest.raises(KeyError):  # not ours: the traceback is wanted
        main_guard(bug)(None)

    monkeypatch.setenv("HYDRA_FULL_ERROR", "1")
    with pytest.raises(RunError):  # HYDRA_FULL_ERROR=1: the full traceback
        main_guard(fails)(None)


def test_main_guard_keeps_the_wrapped_function_for_hydra():
    def main(cfg):
        return 1.0

    guarded = main_guard(main)
    assert guarded.__wrapped__ is main and guarded.__module__ == main.__module__
    assert guarded("cfg") == 1.0


def test_cli_bad_value_prints_one_error_line_and_exits_non_zero(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "HYDRA_FULL_ERROR"}
    cmd = [sys.executable, "-m", "gan.train", "data.batch_size=0", f"paths.log_dir={tmp_path}", f"data.root={data_root()}"]
    done = subprocess.run(cmd, cwd=PROJECT, capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode != 0
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert errors == ["error: data.batch_size=0: must be a positive integer"], done.stderr
    assert "Traceback" not in done.stderr + done.stdout
    assert not list(tmp_path.glob("**/*.ckpt"))
    assert list(tmp_path.glob("runs/**/train.log"))  # the Hydra job kept its name (the guard is transparent)
