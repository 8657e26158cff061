"""Class-conditional GANs: labels from the data to D, the three conditionings, digits= selection,
label accuracy and intra-FID, and an exact resume."""

import math
from pathlib import Path

import pytest
import torch
from torch import nn

from gan.runtime.build import build_gan
from gan.data import MNISTDataModule, load_split
from gan.runtime.errors import ConfigError
from gan.metrics.generate import balanced_labels, load_generator, sample_images
from gan.metrics.conditional import conditional_metrics
from gan.metrics.evaluator import Evaluator
from gan.metrics.scores import frechet_distance
from gan.nets.conditional import (
    ClassConditionalBatchNorm,
    ConditionalDiscriminator,
    ConditionalGenerator,
    cycling_labels,
)
from gan.nets.dcgan import InfoGANGenerator
from gan.nets.mlp import MLPDiscriminator, MLPGenerator
from gan.sample import main as sample_main
from gan.train import train
from tests.conftest import QUICK, compose_config, data_root
from tests.test_sample import run_cli
from tests.test_train import StopAt, events

CONDITIONAL = ["experiment=conditional_mlp", "data.batch_size=16", "iterations=6", "checkpoint_every=3", "sample_every=3",
               "log_every=2", "callbacks.evaluation=null"]


@pytest.fixture(scope="module")
def conditional_ckpt(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("conditional")
    train(compose_config(CONDITIONAL, tmp))
    return tmp / "outputs" / "run" / "checkpoints" / "last.ckpt"


@pytest.fixture(scope="module")
def unconditional_ckpt(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("unconditional")
    train(compose_config(QUICK, tmp))
    return tmp / "outputs" / "run" / "checkpoints" / "last.ckpt"


# ---------------------------------------------------------------------------------- labels
@pytest.mark.parametrize("dataset", ["MNIST", "FashionMNIST"])
def test_batch_labels_are_the_labels_of_the_batch_images(dataset):
    dm = MNISTDataModule(str(data_root()), batch_size=64, dataset=dataset, download=False, scale_to="sigmoid")
    dm.setup()
    loader = dm.train_dataloader()
    index = next(iter(dm.sampler))  # the first batch's indices (the sampler's order is fixed by the seed)
    x, y = next(iter(loader))
    images, labels = load_split(data_root(), "train", dataset)
    assert torch.equal(y, labels[index])
    assert torch.equal((x.squeeze(1) * 255).round().to(torch.uint8), images[index])


class Flat(nn.Module):
    """A D whose features are its input: phi(x) = x for (n, 3) "images"."""

    def __init__(self):
        super().__init__()
        self.features = nn.Identity()
        self.classify = nn.Linear(3, 1)


def test_projection_logit_is_psi_of_phi_plus_the_label_embedding_dotted_with_phi():
    d = ConditionalDiscriminator(Flat(), num_classes=2, conditioning="projection")
    with torch.no_grad():
        d.classify.weight.copy_(torch.tensor([[1.0, 2.0, 3.0]]))
        d.classify.bias.fill_(0.5)
        d.embed.weight.copy_(torch.tensor([[1.0, 0.0, 0.0], [0.0, -1.0, 2.0]]))
    x = torch.tensor([[1.0, 1.0, 1.0], [2.0, 0.0, -1.0]])
    # psi: 1+2+3+0.5 = 6.5 and 2-3+0.5 = -0.5; <embed(y), phi>: label 1 gives -1+2 = 1, label 0 gives 2
    assert d(x, torch.tensor([1, 0])).flatten().tolist() == [7.5, 1.5]
    assert d(x, torch.tensor([0, 1])).flatten().tolist() == [7.5, -2.5]


def test_concat_and_acgan_discriminators_give_their_outputs():
    x, y = torch.rand(5, 1, 28, 28), torch.tensor([0, 1, 2, 3, 4])
    concat = ConditionalDiscriminator(MLPDiscriminator(hidden=[16]), num_classes=5, conditioning="concat", label_dim=4)
    assert concat(x, y).shape == (5, 1)
    assert not torch.equal(concat(x, y), concat(x, (y + 1) % 5))  # the label changes the logit
    acgan = ConditionalDiscriminator(MLPDiscriminator(hidden=[16]), num_classes=5, conditioning="acgan")
    assert acgan(x, y).shape == (5, 6) and acgan.auxiliary_classes == 5
    with pytest.raises(ConfigError, match="model.conditional.kind=film"):
        ConditionalDiscriminator(MLPDiscriminator(hidden=[16]), conditioning="film")


def test_a_stacked_readout_gives_its_hidden_layers_to_phi():
    from gan.nets.dcgan import InfoGANDiscriminator

    d = InfoGANDiscriminator(hidden=64)
    x, y = torch.rand(3, 1, 28, 28), torch.tensor([0, 1, 2])
    projection = ConditionalDiscriminator(d, num_classes=3, conditioning="projection")
    assert projection.embed.weight.shape == (3, 64) and projection.classify is d.classify[-1]
    phi = d.classify[:-1](d.features(x))
    expected = d.classify(d.features(x)) + (projection.embed(y) * phi).sum(1, keepdim=True)
    assert torch.allclose(projection(x, y), expected)
    with pytest.raises(ConfigError, match="ending in a linear one"):
        ConditionalDiscriminator(nn.Sequential(nn.Linear(3, 1)), conditioning="projection")


def test_generator_joins_the_label_embedding_to_z():
    def build(noise_dim):
        return MLPGenerator(noise_dim=noise_dim, hidden=[8])

    g = ConditionalGenerator(build, noise_dim=6, num_classes=10, label_dim=4).eval()
    assert g.net.net[0].in_features == 10 and g.output_activation == "tanh"
    z = torch.randn(3, 6)
    assert not torch.equal(g(z, torch.tensor([0, 0, 0])), g(z, torch.tensor([1, 1, 1])))
    assert torch.equal(g(z), g(z, cycling_labels(3, 10)))  # no labels: every class in turn


def test_label_std_sets_the_label_embeddings_initial_scale():
    def build(noise_dim):
        return MLPGenerator(noise_dim=noise_dim, hidden=[8])

    torch.manual_seed(0)
    wide = ConditionalGenerator(build, noise_dim=6, num_classes=10, label_dim=64).embed.weight.std()
    narrow = ConditionalGenerator(build, noise_dim=6, num_classes=10, label_dim=64, label_std=0.1).embed.weight.std()
    assert 0.9 < wide < 1.1 and 0.09 < narrow < 0.11
    zero = ConditionalGenerator(build, noise_dim=6, num_classes=10, label_dim=64, label_std=0.0)
    assert torch.count_nonzero(zero.embed.weight) == 0
    with pytest.raises(ConfigError, match="model.conditional.label_std=-1"):
        ConditionalGenerator(build, noise_dim=6, label_std=-1)


def test_class_norm_swaps_every_batch_norm_and_starts_as_plain_batch_norm():
    def build(noise_dim):
        return InfoGANGenerator(noise_dim=noise_dim, hidden=32, base_channels=4)

    torch.manual_seed(0)
    plain = ConditionalGenerator(build, noise_dim=6, label_dim=4)
    torch.manual_seed(0)
    conditional = ConditionalGenerator(build, noise_dim=6, label_dim=4, class_norm=True)
    assert len(conditional.class_norms) == 3  # FC 32, FC 8x7x7, ConvT 4 channels
    assert [m for m in conditional.net.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.affine] == []
    z, labels = torch.randn(8, 6), torch.arange(8) % 3
    assert torch.allclose(plain(z, labels), conditional(z, labels), atol=1e-6)  # gain 1, bias 0: the same network
    assert all(norm.labels is None for norm in conditional.class_norms)  # no labels left behind


def test_class_norm_applies_each_samples_own_gain_and_bias():
    norm = ClassConditionalBatchNorm(nn.BatchNorm2d(2), num_classes=3)
    with torch.no_grad():
        norm.gain.weight.copy_(torch.tensor([[1.0, 1.0], [2.0, 3.0], [1.0, 1.0]]))
        norm.bias.weight.copy_(torch.tensor([[0.0, 0.0], [0.5, -1.0], [0.0, 0.0]]))
    x = torch.randn(4, 2, 3, 3)
    norm.labels = torch.tensor([0, 1, 2, 1])
    normalised = nn.BatchNorm2d(2, affine=False)(x)
    expected = normalised.clone()
    expected[[1, 3], 0] = normalised[[1, 3], 0] * 2 + 0.5
    expected[[1, 3], 1] = normalised[[1, 3], 1] * 3 - 1
    assert torch.allclose(norm(x), expected, atol=1e-6)
    norm.labels = None
    with pytest.raises(RuntimeError, match="without labels"):
        norm(x)


def test_class_norm_needs_a_generator_with_batch_norm():
    with pytest.raises(ConfigError, match="model.conditional.class_norm=true: the generator MLPGenerator has no BatchNorm"):
        ConditionalGenerator(lambda noise_dim: MLPGenerator(noise_dim=noise_dim, hidden=[8]), noise_dim=6, class_norm=True)


def test_fake_labels_are_uniform_or_the_real_batchs(make_cfg):
    real = torch.tensor([3, 3, 7, 1, 0, 9])
    uniform = build_gan(make_cfg("experiment=conditional"))
    torch.manual_seed(0)
    drawn = uniform.sample_labels(6000, real)
    counts = torch.bincount(drawn, minlength=10)
    assert len(drawn) == 6000 and counts.min() > 500 and counts.max() < 700  # about 600 each, not the batch's
    paired = build_gan(make_cfg("experiment=conditional", "model.conditional.fake_labels=real", run="paired"))
    assert torch.equal(paired.sample_labels(6, real), real)
    with pytest.raises(ConfigError, match="model.conditional.fake_labels"):
        build_gan(make_cfg("experiment=conditional", "model.conditional.fake_labels=shuffled", run="bad"))


def test_conditioning_needs_a_generator_partial_and_a_known_name(make_cfg):
    with pytest.raises(ConfigError, match="model.conditional.kind=projection: the generator must be given as a partial"):
        train(make_cfg(*QUICK, "model.conditional={_target_: gan.settings.Conditioning, kind: projection}"))
    with pytest.raises(ConfigError, match="model.conditional.kind=film"):
        train(make_cfg(*CONDITIONAL, "model.conditional.kind=film"))


# ---------------------------------------------------------------------------------- training
@pytest.mark.parametrize("conditioning", ["concat", "acgan"])
def test_each_conditioning_trains(make_cfg, conditioning):
    cfg = make_cfg(*CONDITIONAL, "iterations=2", f"model.conditional.kind={conditioning}")
    metrics = train(cfg)
    assert math.isfinite(metrics["train/d_loss"]) and (Path(cfg.paths.output_dir) / "samples" / "by_class.png").is_file()


def test_conditional_default_recipe_trains_and_logs_label_accuracy(make_cfg, cache):
    cfg = make_cfg("experiment=conditional", "data.batch_size=16", "iterations=2", "eval_every=2", "eval_samples=100",
                   "callbacks.evaluation.recipe=quick", "trainer.precision=32-true")
    metrics = train(cfg)
    assert 0.0 <= float(metrics["val/label_accuracy"]) <= 1.0 and float(metrics["val/intra_fid"]) > 0
    tensorboard = events(Path(cfg.paths.output_dir))
    assert "samples/by_class" in tensorboard.Tags()["images"]
    assert [e.step for e in tensorboard.Scalars("val/label_accuracy")] == [2]
    assert 0 <= float(metrics["val/worst_class"]) <= 9
    assert float(metrics["val/worst_class_accuracy"]) <= float(metrics["val/label_accuracy"])


@pytest.mark.parametrize("ema", [True, False])
def test_a_class_norm_checkpoint_loads_and_draws_what_its_gan_drew(make_cfg, ema):
    cfg = make_cfg("experiment=conditional", "model.conditional.class_norm=true", "data.batch_size=16", "iterations=2",
                   "callbacks.evaluation=null", "trainer.precision=32-true", run=f"class_norm_{ema}")
    train(cfg)
    ckpt = Path(cfg.paths.output_dir) / "checkpoints" / "last.ckpt"
    generator, noise = load_generator(ckpt, ema=ema)
    assert len(generator.class_norms) == 3 and generator.embed.weight.abs().max() < 1.0  # label_std 0.1
    prefix = "generator_ema.average." if ema else "generator."
    state = torch.load(ckpt, weights_only=True)["state_dict"]
    assert any(k.startswith(prefix) and k.endswith("gain.weight") for k in state)
    threes = sample_images(generator, noise, 6, labels=torch.full((6,), 3))
    fives = sample_images(generator, noise, 6, labels=torch.full((6,), 5))
    assert threes.shape == (6, 1, 28, 28) and not torch.equal(threes, fives)


def test_resume_of_a_conditional_run_is_exact(make_cfg):
    common = ["experiment=conditional", "loss.terms.r1_r2.every=2", "trainer.precision=32-true", "data.batch_size=16",
              "checkpoint_every=100", "callbacks.evaluation=null", "model.ema.half_life_images=100"]
    straight = make_cfg(*common, "iterations=7", run="straight")
    train(straight)
    first = make_cfg(*common, "iterations=7", run="interrupted")
    train(first, callbacks=[StopAt(4)])  # the same budget (the LR schedules follow it), stopped at 4
    ckpt = Path(first.paths.output_dir) / "checkpoints" / "last.ckpt"
    assert torch.load(ckpt, weights_only=True)["gan"]["iteration"] == 4
    train(make_cfg(*common, "iterations=7", f"ckpt_path={ckpt}", run="unused"))
    a = torch.load(Path(straight.paths.output_dir) / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
    b = torch.load(ckpt, weights_only=True)["state_dict"]
    assert any(k.startswith("discriminator.embed") for k in a)
    for key in a:
        assert torch.equal(a[key], b[key]), key


# ---------------------------------------------------------------------------------- digits=
def test_balanced_labels_split_n_evenly():
    assert balanced_labels(5, [0, 5]).tolist() == [0, 0, 0, 5, 5]
    assert torch.bincount(balanced_labels(1000, range(10))).tolist() == [100] * 10


def test_digits_draw_only_those_classes(conditional_ckpt, tmp_path):
    out = tmp_path / "threes.pt"
    assert sample_main([f"ckpt={conditional_ckpt}", "n=12", "digits=[3]", f"out={out}", "seed=2"]) == 0
    generator, noise = load_generator(conditional_ckpt)
    threes = sample_images(generator, noise, 12, seed=2, labels=torch.full((12,), 3))
    assert torch.equal(torch.load(out), threes)
    assert sample_main([f"ckpt={conditional_ckpt}", "n=12", "digits=[0,5]", f"out={out}", "seed=2"]) == 0
    halves = sample_images(generator, noise, 12, seed=2, labels=torch.tensor([0] * 6 + [5] * 6))
    assert torch.equal(torch.load(out), halves)


def test_by_class_rows_are_drawn_for_their_label(conditional_ckpt, tmp_path):
    out = tmp_path / "rows.png"
    assert sample_main([f"ckpt={conditional_ckpt}", "mode=by_class", "per_class=4", f"out={out}"]) == 0
    assert out.is_file()


def test_digits_errors_are_one_line(conditional_ckpt, unconditional_ckpt, tmp_path):
    done = run_cli(f"ckpt={unconditional_ckpt}", "digits=[3]", f"out={tmp_path / 'x.pt'}")
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines() == [done.stderr.strip()]
    assert "digits=[3]: this checkpoint's generator is unconditional" in done.stderr
    done = run_cli(f"ckpt={conditional_ckpt}", "digits=[10]", f"out={tmp_path / 'x.pt'}")
    assert done.returncode == 1 and "digits=[10]: must be a non-empty list of class indices 0-9" in done.stderr


# ---------------------------------------------------------------------------------- metrics
@pytest.fixture(scope="module")
def evaluator(cache):
    return Evaluator.from_recipe(data_root(), "quick")


def test_label_accuracy_of_real_test_images_and_of_shuffled_labels(evaluator):
    images, labels = load_split(data_root(), "test")
    real = conditional_metrics(evaluator, images, labels)
    assert real["label_accuracy"] >= 0.98
    assert real["intra_fid"] == pytest.approx(0.0, abs=1e-3)  # each class against its own test images
    assert set(real["per_class"]) == set(range(10))
    worst = min(real["per_class"].values(), key=lambda row: row["label_accuracy"])
    assert real["worst_class_accuracy"] == worst["label_accuracy"] >= 0.95
    assert real["per_class"][real["worst_class"]] is worst
    assert worst["label_accuracy"] <= real["label_accuracy"] <= real["other_classes_accuracy"]
    shuffled = labels[torch.randperm(len(labels), generator=torch.Generator().manual_seed(0))]
    assert 0.07 <= conditional_metrics(evaluator, images, shuffled)["label_accuracy"] <= 0.13


def test_frechet_distance_of_shifted_gaussians():
    a = torch.randn(20000, 3, generator=torch.Generator().manual_seed(0))
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-6)
    # the same covariance, the mean moved by (1, 2, 0): distance |shift|^2 = 5
    assert frechet_distance(a, a + torch.tensor([1.0, 2.0, 0.0])) == pytest.approx(5.0, abs=1e-6)
    # identity vs 4 x identity covariance: tr(I + 4I - 2 * 2I) = 3 per... dims: 3
    assert frechet_distance(a, 2 * a) == pytest.approx(3.0, rel=0.02)


def test_mode_seeking_pairs_the_labels_of_the_batchs_halves_and_logs_its_term(make_cfg):
    gan = build_gan(make_cfg("experiment=conditional", "+terms=mode_seeking"))
    drawn = gan.sample_labels(7)
    assert len(drawn) == 7 and torch.equal(drawn[:3], drawn[3:6])  # the pairs of gan.terms.mode_seeking
    torch.manual_seed(0)
    counts = torch.bincount(gan.sample_labels(6000), minlength=10)
    assert counts.min() > 500 and counts.max() < 700  # still uniform over the classes
    cfg = make_cfg(*CONDITIONAL, "iterations=2", "+terms=mode_seeking", run="trained")
    metrics = train(cfg)
    assert math.isfinite(metrics["train/mode_seeking"]) and metrics["train/mode_seeking"] > 0
    for bad, message in [("model.terms.mode_seeking.weight=-1", "must be a number >= 0"),
                         ("model.conditional.fake_labels=real", "fake_labels=real")]:
        with pytest.raises(ConfigError, match=message):
            build_gan(make_cfg("experiment=conditional", "+terms=mode_seeking", bad, run="bad"))
