"""The tutorial networks (Paddle, TF simple, Keras, ReNom maxout), their init schemes and model configs."""

from functools import cache

import pytest
import torch
from torch import nn

from gan.runtime.build import build_gan
from gan.nets.init import initialize
from gan.nets.keras_dcgan import KerasDiscriminator, KerasGenerator
from gan.nets.paddle_dcgan import PaddleDiscriminator, PaddleGenerator
from gan.nets.renom_maxout import BatchNormMLPGenerator, Maxout, MaxoutDiscriminator
from gan.nets.tf_simple import TFSimpleDiscriminator, TFSimpleGenerator
from tests.conftest import compose_config


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """These forward passes are tiny: on a busy machine, OpenMP threads waiting on each other cost
    far more than they save (0.6 s against 0.01 s for a small generator), so run on one thread."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def n_params(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


def weighted_layers(net: nn.Module) -> list[nn.Module]:
    return [m for m in net.modules() if isinstance(m, (nn.Linear, nn.Conv2d, nn.ConvTranspose2d))]


def spatial_sizes(features: nn.Sequential, x: torch.Tensor, kinds: tuple[type, ...]) -> list[int]:
    """The height after each layer of ``features`` that is one of ``kinds``."""
    sizes = []
    for layer in features:
        x = layer(x)
        if isinstance(layer, kinds):
            sizes.append(x.shape[-1])
    return sizes


@cache
def full_size(net_class: type) -> nn.Module:
    """``net_class`` at the tutorial's sizes, built once (seeded) and shared by the read-only tests."""
    torch.manual_seed(0)
    return net_class()


# The forward-pass tests run the same layer lists at small widths (the sizes are constructor
# arguments, and the spatial sizes do not depend on them), which keeps them fast on a CPU.
SMALL_GENERATORS = {
    "paddle": lambda **kw: PaddleGenerator(hidden=32, channels=8, **kw),
    "tf_simple": lambda **kw: TFSimpleGenerator(hidden=(32, 32), **kw),
    "keras": lambda **kw: KerasGenerator(channels=(16, 8, 8, 4), **kw),
    "maxout": lambda **kw: BatchNormMLPGenerator(hidden=(32, 32), **kw),
}
SMALL_DISCRIMINATORS = {
    "paddle": lambda: PaddleDiscriminator(channels=(4, 8), hidden=16),
    "tf_simple": lambda: TFSimpleDiscriminator(channels=(4, 8), hidden=16),
    "keras": lambda: KerasDiscriminator(channels=(4, 8, 8, 8)),
    "maxout": lambda: MaxoutDiscriminator(hidden=(16, 16), pieces=3),
}


# ---------------------------------------------------------------- parameter counts
def test_paddle_parameter_counts_match_the_layer_list():
    g = (
        (100 * 2048 + 2048) + 2 * 2048  # FC noise -> 2048 + BN
        + (2048 * 6272 + 6272) + 2 * 6272  # FC to 128x7x7 + BN
        + (128 * 128 * 25 + 128)  # ConvT 128 -> 128, 5x5
        + (128 * 1 * 25 + 1)  # ConvT 128 -> 1, 5x5
    )
    assert n_params(full_size(PaddleGenerator)) == g == 13_487_745
    d = (
        (1 * 64 * 25 + 64)  # conv 5x5, 64 filters
        + (64 * 128 * 25 + 128) + 2 * 128  # conv 5x5, 128 filters + BN
        + (128 * 4 * 4 * 1024 + 1024) + 2 * 1024  # FC 2048 -> 1024 + BN
        + (1024 + 1)  # FC -> 1
    )
    assert n_params(full_size(PaddleDiscriminator)) == d == 2_308_097


def test_tf_simple_parameter_counts_match_the_layer_list():
    g = (100 * 256 + 256) + (256 * 512 + 512) + (512 * 784 + 784)
    assert n_params(full_size(TFSimpleGenerator)) == g == 559_632
    d = (
        (1 * 16 * 25 + 16)  # conv 5x5, 16 filters
        + (16 * 32 * 9 + 32)  # conv 3x3, 32 filters
        + (7 * 7 * 32 * 128 + 128)  # FC 1568 -> 128
        + (128 + 1)  # FC -> 1
    )
    assert n_params(full_size(TFSimpleDiscriminator)) == d == 206_017


def test_keras_parameter_counts_match_the_layer_list():
    g = (
        (100 * 12544 + 12544) + 2 * 12544  # FC noise -> 256x7x7 + BN
        + (256 * 128 * 25 + 128) + 2 * 128  # ConvT 256 -> 128 + BN
        + (128 * 64 * 25 + 64) + 2 * 64  # ConvT 128 -> 64 + BN
        + (64 * 32 * 25 + 32) + 2 * 32  # ConvT 64 -> 32 + BN
        + (32 * 1 * 25 + 1)  # ConvT 32 -> 1
    )
    assert n_params(full_size(KerasGenerator)) == g == 2_368_705
    d = (
        (1 * 64 * 25 + 64)
        + (64 * 128 * 25 + 128)
        + (128 * 256 * 25 + 256)
        + (256 * 512 * 25 + 512)
        + (512 * 4 * 4 + 1)  # FC 8192 -> 1
    )
    assert n_params(full_size(KerasDiscriminator)) == d == 4_311_553


def test_maxout_parameter_counts_match_the_layer_list():
    g = (
        2 * 100  # BN on the noise
        + (100 * 1200 + 1200) + 2 * 1200  # FC + BN
        + (1200 * 1200 + 1200) + 2 * 1200  # FC + BN
        + (1200 * 784 + 784)  # FC -> 784
    )
    assert n_params(full_size(BatchNormMLPGenerator)) == g == 2_508_984
    d = (
        (784 * 240 * 5 + 240 * 5)  # maxout 784 -> 240 x 5 pieces
        + (240 * 240 * 5 + 240 * 5)  # maxout 240 -> 240 x 5 pieces
        + (240 + 1)  # FC -> 1
    )
    assert n_params(full_size(MaxoutDiscriminator)) == d == 1_231_441


# ---------------------------------------------------------------- shapes and ranges
@pytest.mark.parametrize("name", sorted(SMALL_GENERATORS))
@pytest.mark.parametrize("activation,low,high", [("tanh", -1.0, 1.0), ("sigmoid", 0.0, 1.0)])
def test_generator_shape_and_range(name, activation, low, high):
    torch.manual_seed(0)
    g = SMALL_GENERATORS[name](noise_dim=100, output_activation=activation)
    assert g.noise_dim == 100 and g.output_activation == activation
    z = torch.rand(6, 100) * 2 - 1
    for mode in (g.train, g.eval):
        mode()
        x = g(z)
        assert x.shape == (6, 1, 28, 28)
        assert x.min() >= low and x.max() <= high
        assert x.std() > 0


@pytest.mark.parametrize("name", sorted(SMALL_DISCRIMINATORS))
def test_discriminator_returns_one_logit_per_image(name):
    for net in (SMALL_DISCRIMINATORS[name](), full_size(type(SMALL_DISCRIMINATORS[name]()))):
        last = list(net.modules())[-1]
        assert isinstance(last, nn.Linear) and last.out_features == 1  # a logit: no final sigmoid
    d = SMALL_DISCRIMINATORS[name]()
    for mode in (d.train, d.eval):
        mode()
        logits = d(torch.rand(5, 1, 28, 28))
        assert logits.shape == (5, 1)
        assert torch.isfinite(logits).all()


def test_the_tutorial_defaults():
    assert full_size(PaddleGenerator).output_activation == "tanh"
    for g in (TFSimpleGenerator, KerasGenerator, BatchNormMLPGenerator):
        assert full_size(g).output_activation == "sigmoid"
    for g in (PaddleGenerator, TFSimpleGenerator, KerasGenerator, BatchNormMLPGenerator):
        assert full_size(g).noise_dim == 100


def test_conv_discriminators_reach_the_worked_out_sizes():
    x = torch.rand(2, 1, 28, 28)
    # Paddle: conv 24, pool 12, conv 8, pool 4
    d = SMALL_DISCRIMINATORS["paddle"]()
    assert spatial_sizes(d.features, x, (nn.Conv2d, nn.MaxPool2d)) == [24, 12, 8, 4]
    assert full_size(PaddleDiscriminator).classify[0].in_features == 128 * 4 * 4
    # TF 'same' stride 2: 14, 7
    assert spatial_sizes(SMALL_DISCRIMINATORS["tf_simple"]().features, x, (nn.Conv2d,)) == [14, 7]
    assert full_size(TFSimpleDiscriminator).classify[0].in_features == 32 * 7 * 7
    # Keras 'same' strides 2, 2, 2, 1: 14, 7, 4 (= ceil(7 / 2)), 4
    assert spatial_sizes(SMALL_DISCRIMINATORS["keras"]().features, x, (nn.Conv2d,)) == [14, 7, 4, 4]
    assert full_size(KerasDiscriminator).classify.in_features == 512 * 4 * 4


def test_conv_generators_reach_the_worked_out_sizes():
    # Paddle: 7 -> 14 -> 28 by the two stride-2 transposed convs
    g = SMALL_GENERATORS["paddle"]().eval()
    h = g.project(torch.rand(2, 100)).view(2, 8, 7, 7)
    assert spatial_sizes(g.upsample, h, (nn.ConvTranspose2d,)) == [14, 28]
    # Keras: upsample 14, ConvT keeps 14, upsample 28, then every ConvT keeps 28
    g = SMALL_GENERATORS["keras"]().eval()
    h = g.project(torch.rand(2, 100)).view(2, 16, 7, 7)
    assert spatial_sizes(g.upsample, h, (nn.Upsample, nn.ConvTranspose2d)) == [14, 14, 28, 28, 28, 28]


# ---------------------------------------------------------------- init schemes
def test_tf_simple_init_is_normal_01_with_biases_02():
    for net in (full_size(TFSimpleGenerator), full_size(TFSimpleDiscriminator)):
        layers = weighted_layers(net)
        assert len(layers) in (3, 4)  # G: 3 FC; D: 2 conv + 2 FC
        for layer in layers:
            assert torch.all(layer.bias == 0.2)
        weights = torch.cat([layer.weight.flatten() for layer in layers])
        assert abs(weights.std().item() - 0.1) < 0.002
        assert abs(weights.mean().item()) < 0.002
    big = full_size(TFSimpleGenerator).net[4].weight  # 512 x 784
    assert abs(big.std().item() - 0.1) < 0.002


def test_maxout_gan_init_is_uniform_with_zero_biases():
    for net, bound in ((full_size(MaxoutDiscriminator), 0.005), (full_size(BatchNormMLPGenerator), 0.05)):
        layers = weighted_layers(net)
        assert len(layers) == 3
        for layer in layers:
            assert layer.weight.abs().max() <= bound
            assert layer.weight.abs().max() > 0.95 * bound  # fills the whole interval
            assert torch.all(layer.bias == 0)
    bn = full_size(BatchNormMLPGenerator).net[0]
    assert isinstance(bn, nn.BatchNorm1d) and torch.all(bn.weight == 1)  # BN keeps its default


def test_keras_nets_start_glorot_uniform_with_zero_biases():
    fc = full_size(KerasGenerator).project[0]
    bound = (6.0 / (100 + 12544)) ** 0.5
    assert bound * 0.95 < fc.weight.abs().max() <= bound
    conv = full_size(KerasDiscriminator).features[3]  # 64 -> 128, 5x5
    assert conv.weight.abs().max() <= (6.0 / (64 * 25 + 128 * 25)) ** 0.5
    for net in (full_size(KerasGenerator), full_size(KerasDiscriminator)):
        for layer in weighted_layers(net):
            assert torch.all(layer.bias == 0)


def test_paddle_nets_keep_pytorch_default_init():
    torch.manual_seed(0)
    a = PaddleDiscriminator(channels=(64, 8), hidden=16)
    torch.manual_seed(0)
    b = nn.Conv2d(1, 64, 5)
    assert torch.equal(a.features[0].weight, b.weight) and torch.equal(a.features[0].bias, b.bias)


def test_initialize_takes_options_as_keywords_or_a_mapping():
    net = nn.Sequential(nn.Linear(50, 400), nn.BatchNorm1d(400), nn.Conv2d(3, 8, 3))
    initialize(net, "normal", std=0.3, bias=-1.0)
    assert torch.all(net[0].bias == -1.0) and torch.all(net[2].bias == -1.0)
    assert abs(net[0].weight.std().item() - 0.3) < 0.02
    assert torch.all(net[1].weight == 1) and torch.all(net[1].bias == 0)  # BN untouched
    initialize(net, {"scheme": "uniform", "bound": 0.01})
    assert net[0].weight.abs().max() <= 0.01 and torch.all(net[0].bias == 0)
    assert initialize(net, None) is net and initialize(net, "default") is net


def test_initialize_rejects_bad_options():
    net = nn.Linear(3, 3)
    with pytest.raises(ValueError, match="init scheme 'uniform' takes the options"):
        initialize(net, "uniform", std=0.1)
    with pytest.raises(ValueError, match="takes the options"):
        initialize(net, "xavier_uniform", bias=0.0)
    with pytest.raises(ValueError, match="bound > 0"):
        initialize(net, {"scheme": "uniform", "bound": -1})
    with pytest.raises(ValueError, match="without an init scheme"):
        initialize(net, None, std=0.1)
    with pytest.raises(ValueError, match="unknown init scheme 'orthogonal'"):
        initialize(net, {"scheme": "orthogonal"})


# ---------------------------------------------------------------- Maxout and Keras BN
def test_maxout_takes_the_max_over_each_units_pieces():
    layer = Maxout(2, units=2, pieces=3)
    with torch.no_grad():
        # rows 0-2 are unit 0's pieces, rows 3-5 unit 1's
        layer.linear.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, -1.0], [2.0, 0.0], [0.0, -3.0], [0.5, 0.5]]))
        layer.linear.bias.copy_(torch.tensor([0.0, 0.0, 0.0, 0.0, 1.0, 0.0]))
    x = torch.tensor([[1.0, 2.0], [-1.0, -2.0]])
    # sample 0: unit 0 pieces (1, 2, -3) -> 2; unit 1 pieces (2, -5, 1.5) -> 2
    # sample 1: unit 0 pieces (-1, -2, 3) -> 3; unit 1 pieces (-2, 7, -1.5) -> 7
    assert torch.equal(layer(x), torch.tensor([[2.0, 2.0], [3.0, 7.0]]))
    assert layer(torch.rand(4, 2)).shape == (4, 2)


def test_keras_generator_batch_norm_is_keras_momentum_09_and_eps_1e3():
    bns = [m for m in full_size(KerasGenerator).modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    assert len(bns) == 4
    for bn in bns:
        assert bn.momentum == pytest.approx(0.1) and bn.eps == pytest.approx(1e-3)
    g = SMALL_GENERATORS["keras"]()
    # one training batch moves the running mean a tenth of the way to the batch mean
    bn = g.project[1]
    g.train()
    with torch.no_grad():
        pre = g.project[0](torch.rand(8, 100))
        g(torch.rand(8, 100))  # the real forward pass, with its own noise
    assert not torch.equal(bn.running_mean, torch.zeros_like(bn.running_mean))
    bn.reset_running_stats()
    bn(pre)
    assert torch.allclose(bn.running_mean, 0.1 * pre.mean(0), atol=1e-6)


# ---------------------------------------------------------------- model configs
ZOO_MODELS = {
    # name: (G class, noise (low, high), optimizer class, (lr G, lr D), g_steps, schedule, clip)
    "paddle_dcgan": (PaddleGenerator, (-1.0, 1.0), torch.optim.Adam, (2e-4, 2e-4), 2, "alternating", None),
    "tf_simple": (TFSimpleGenerator, (0.0, 1.0), torch.optim.SGD, (0.05, 0.05), 1, "simultaneous", None),
    "keras_dcgan": (
        KerasGenerator, (-1.0, 1.0), torch.optim.RMSprop, (4e-4, 8e-4), 1, "alternating",
        {"val": 1.0, "algorithm": "value"},
    ),
    "renom_maxout": (BatchNormMLPGenerator, (0.0, 1.0), torch.optim.Adam, (1e-3, 1e-3), 1, "simultaneous", None),
}


@pytest.mark.parametrize("name", sorted(ZOO_MODELS))
def test_zoo_model_config_composes_builds_and_runs(name, tmp_path):
    g_class, (low, high), opt_class, (lr_g, lr_d), g_steps, schedule, clip = ZOO_MODELS[name]
    cfg = compose_config([f"model={name}", "loss=nonsaturating"], tmp_path)
    assert cfg.model.generator.noise_dim == cfg.model.noise.dim == 100
    assert cfg.data.scale_to == cfg.model.generator.output_activation
    gan_module = build_gan(cfg)
    assert isinstance(gan_module.generator, g_class)
    noise = gan_module.noise
    assert (noise.dim, noise.distribution, noise.low, noise.high) == (100, "uniform", low, high)
    updates = gan_module.updates
    assert (updates.d_steps, updates.g_steps, updates.schedule) == (1, g_steps, schedule)
    assert updates.clip_d == clip and updates.clip_g == clip
    opt_g, opt_d = gan_module.configure_optimizers()
    assert type(opt_g) is opt_class and type(opt_d) is opt_class
    assert opt_g.param_groups[0]["lr"] == pytest.approx(lr_g)
    assert opt_d.param_groups[0]["lr"] == pytest.approx(lr_d)

    z = gan_module.noise.sample(4)
    assert z.min() >= low and z.max() <= high
    x = gan_module.generator(z)
    assert x.shape == (4, 1, 28, 28)
    lo, hi = gan_module.value_range
    assert x.min() >= lo and x.max() <= hi
    assert gan_module.discriminator(x).shape == (4, 1)

    # the init and optimizer settings of the file reach the objects
    if name == "tf_simple":
        for net in (gan_module.generator, gan_module.discriminator):
            assert all(torch.all(layer.bias == 0.2) for layer in weighted_layers(net))
    if name == "renom_maxout":
        assert all(layer.weight.abs().max() <= 0.005 for layer in weighted_layers(gan_module.discriminator))
        assert all(layer.weight.abs().max() <= 0.05 for layer in weighted_layers(gan_module.generator))
    if name == "keras_dcgan":
        assert opt_d.defaults["alpha"] == opt_g.defaults["alpha"] == 0.9
        assert opt_d.defaults["eps"] == opt_g.defaults["eps"] == 1e-8
    if name in ("paddle_dcgan", "renom_maxout"):
        assert opt_d.defaults["betas"] == opt_g.defaults["betas"] == (0.5, 0.999)
