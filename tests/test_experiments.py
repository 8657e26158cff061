"""Every tutorial recipe composes to what its tutorial states and trains from the command line."""

import subprocess
import sys
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from gan.runtime.build import build_gan
from gan.train import train
from tests.conftest import CONF_DIR, PROJECT, data_root

EXPERIMENTS = sorted(p.stem for p in (CONF_DIR / "experiment").glob("*.yaml"))
TINY = ["iterations=2", "checkpoint_every=2", "sample_every=2", "log_every=1", "callbacks.progress_bar=null",
        "callbacks.evaluation=null"]


def test_every_tutorial_has_an_experiment():
    assert set(EXPERIMENTS) >= {
        "cs231n_gan", "cs231n_lsgan", "cs231n_dcgan", "paddle_dcgan", "tf_simple_gan",
        "keras_dcgan", "renom_maxout_gan", "wgan", "wgan_gp",
    }


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_every_experiment_trains_two_iterations(make_cfg, name):
    metrics = train(make_cfg(f"experiment={name}", *TINY))
    assert metrics["train/iteration"] == 2


def recipe(make_cfg, name):
    cfg = make_cfg(f"experiment={name}")
    return cfg, build_gan(cfg)


def test_recipes_state_their_tutorials_settings(make_cfg):
    cfg, gan = recipe(make_cfg, "cs231n_gan")
    assert (cfg.data.batch_size, cfg.trainer.max_epochs, cfg.iterations, gan.noise.dim) == (128, 10, None, 96)
    assert (gan.noise.low, gan.noise.high) == (-1.0, 1.0) and gan.loss.name == "nonsaturating"
    assert recipe(make_cfg, "cs231n_lsgan")[1].loss.name == "least_squares"
    assert recipe(make_cfg, "cs231n_dcgan")[0].trainer.max_epochs == 5

    cfg, gan = recipe(make_cfg, "paddle_dcgan")
    assert (gan.updates.d_steps, gan.updates.g_steps, cfg.trainer.max_epochs, cfg.data.batch_size, gan.noise.dim) == (1, 2, 20, 128, 100)
    assert cfg.model.optimizer_g.lr == cfg.model.optimizer_d.lr == 2e-4

    cfg, gan = recipe(make_cfg, "tf_simple_gan")
    assert (gan.updates.schedule, cfg.iterations, cfg.data.batch_size, list(cfg.data.digits)) == ("simultaneous", 500, 10, [7])
    assert (gan.noise.low, gan.noise.high, cfg.model.optimizer_g.lr) == (0.0, 1.0, 0.05)
    assert gan.value_range == (0.0, 1.0) and cfg.data.scale_to == "sigmoid"

    cfg, gan = recipe(make_cfg, "keras_dcgan")
    assert (cfg.iterations, cfg.data.batch_size) == (10000, 256)
    assert (cfg.model.optimizer_d.lr, cfg.model.optimizer_g.lr) == (8e-4, 4e-4)
    assert (cfg.model.updates.scheduler_d.decay, cfg.model.updates.scheduler_g.decay) == (6e-8, 3e-8)
    assert gan.updates.clip_d == gan.updates.clip_g == {"val": 1.0, "algorithm": "value"}

    cfg, gan = recipe(make_cfg, "renom_maxout_gan")
    assert (cfg.trainer.max_epochs, cfg.data.batch_size, gan.noise.low, gan.noise.high) == (30, 256, 0.0, 1.0)

    cfg, gan = recipe(make_cfg, "wgan")
    assert (gan.updates.d_steps, gan.loss.weight_clip, cfg.data.batch_size, cfg.model.optimizer_d.lr) == (5, 0.01, 64, 5e-5)
    assert cfg.model.optimizer_d._target_ == "torch.optim.RMSprop"

    cfg, gan = recipe(make_cfg, "wgan_gp")
    assert (gan.updates.d_steps, gan.loss.weight_clip, gan.loss.terms["gradient_penalty"].weight) == (5, None, 10.0)
    assert list(cfg.model.optimizer_d.betas) == [0.0, 0.9] and cfg.model.optimizer_d.lr == 1e-4


def test_renom_recipe_switches_to_the_saturating_loss(make_cfg):
    assert recipe(make_cfg, "renom_maxout_gan")[1].loss.name == "nonsaturating"
    cfg = make_cfg("experiment=renom_maxout_gan", "loss=minimax")
    assert build_gan(cfg).loss.name == "minimax"


@pytest.mark.slow
def test_sweep_over_every_experiment(tmp_path):
    cmd = [sys.executable, "-m", "gan.train", "-m", "experiment=glob(*)", *TINY,
           f"paths.log_dir={tmp_path}", f"data.root={data_root()}"]
    done = subprocess.run(cmd, cwd=PROJECT, capture_output=True, text=True, timeout=1800)
    assert done.returncode == 0, done.stderr[-3000:]
    assert len(list(Path(tmp_path).glob("multiruns/**/checkpoints/last.ckpt"))) == len(EXPERIMENTS)


def test_ablations_change_only_what_they_name(make_cfg):
    """Each ablate_* overlay is the default recipe with one component taken away (README, "The
    default recipe")."""
    default = OmegaConf.to_container(make_cfg().model, resolve=True)

    def changed(name: str) -> set[str]:
        model = OmegaConf.to_container(make_cfg(f"experiment=ablate_{name}").model, resolve=True)
        return {k for k in default.keys() | model.keys() if default.get(k) != model.get(k)}

    assert changed("no_ema") == {"ema"}
    assert changed("cosine_decay") == {"updates"}
    cosine = OmegaConf.to_container(make_cfg("experiment=ablate_cosine_decay").model.updates, resolve=True)
    assert {k for k in cosine if cosine[k] != default["updates"][k]} == {"scheduler_g", "scheduler_d"}
    assert changed("strided_d") == {"generator", "discriminator"}
    strided = make_cfg("experiment=ablate_strided_d").model
    assert strided.discriminator._target_.endswith("StridedDiscriminator") and strided.discriminator.hidden is None
    generator = OmegaConf.to_container(strided.generator, resolve=True)
    assert {k for k in generator if generator[k] != default["generator"][k]} == {"init"}  # G: only its init
    assert (changed("no_penalty"), make_cfg("experiment=ablate_no_penalty").loss.terms.r1_r2) == ({"loss"}, None)
    nonsaturating = make_cfg("experiment=ablate_nonsaturating").loss
    rpgan = make_cfg().loss
    assert nonsaturating.name == "nonsaturating" and nonsaturating.terms == rpgan.terms
