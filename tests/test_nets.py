import math

import pytest
import torch
from torch import nn

from gan.nets.dcgan import InfoGANDiscriminator, InfoGANGenerator
from gan.nets.mlp import MLPDiscriminator, MLPGenerator
from gan.nets.modern_dcgan import StridedDiscriminator
from gan.nets.one_channel_conv import OneChannelConv2d


def n_params(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


GENERATORS = [
    lambda act: MLPGenerator(noise_dim=96, output_activation=act),
    lambda act: InfoGANGenerator(noise_dim=96, output_activation=act),
]


@pytest.mark.parametrize("make", GENERATORS)
@pytest.mark.parametrize("activation,low,high", [("tanh", -1.0, 1.0), ("sigmoid", 0.0, 1.0)])
def test_generator_shape_and_range(make, activation, low, high):
    g = make(activation).eval()
    x = g(torch.rand(5, 96) * 2 - 1)
    assert x.shape == (5, 1, 28, 28)
    assert x.min() >= low and x.max() <= high
    assert x.std() > 0  # not a constant image


@pytest.mark.parametrize("net", [MLPDiscriminator(), InfoGANDiscriminator(), StridedDiscriminator((64, 128, 256)),
                                 StridedDiscriminator((32, 64), hidden=128)])
def test_discriminator_returns_one_logit_per_image(net):
    logits = net(torch.rand(7, 1, 28, 28) * 2 - 1)
    assert logits.shape == (7, 1)
    assert torch.isfinite(logits).all()


def test_mlp_parameter_counts_match_the_layer_list():
    # G: 96->1024, 1024->1024, 1024->784 (weights + biases)
    assert n_params(MLPGenerator(96)) == (96 * 1024 + 1024) + (1024 * 1024 + 1024) + (1024 * 784 + 784)
    # D: 784->256, 256->256, 256->1
    assert n_params(MLPDiscriminator()) == (784 * 256 + 256) + (256 * 256 + 256) + (256 + 1)


def test_dcgan_parameter_counts_match_the_layer_list():
    g = (
        (96 * 1024 + 1024) + 2 * 1024  # FC + BN
        + (1024 * 6272 + 6272) + 2 * 6272  # FC to 7x7x128 + BN
        + (128 * 64 * 16 + 64) + 2 * 64  # ConvT 128->64 4x4 + BN
        + (64 * 1 * 16 + 1)  # ConvT 64->1 4x4
    )
    assert n_params(InfoGANGenerator(96)) == g
    d = (1 * 32 * 25 + 32) + (32 * 64 * 25 + 64) + (1024 * 1024 + 1024) + (1024 + 1)
    assert n_params(InfoGANDiscriminator()) == d


def test_infogan_discriminator_pools_before_its_activation_with_the_tutorials_numbers():
    torch.manual_seed(0)
    d = InfoGANDiscriminator()
    conv1, _, act1, conv2, _, act2, flatten = d.features
    tutorial_order = nn.Sequential(conv1, act1, nn.MaxPool2d(2), conv2, act2, nn.MaxPool2d(2), flatten)  # the same weights
    x = (torch.rand(16, 1, 28, 28) * 2 - 1).requires_grad_()
    ours, theirs = d(x), d.classify(tutorial_order(x))
    assert torch.equal(ours, theirs)
    params = [x, *d.parameters()]
    assert all(torch.equal(a, b) for a, b in zip(torch.autograd.grad(ours.square().sum(), params),
                                                 torch.autograd.grad(theirs.square().sum(), params)))
    assert [type(m) for m in d.features[:3]] == [OneChannelConv2d, nn.MaxPool2d, nn.LeakyReLU]  # the activation on 12x12, not 24x24


def test_strided_parameter_counts_match_the_layer_list():
    # conv 4x4/2 (padding 1): 28 -> 14 -> 7 -> 3, then the flattened 256 x 3 x 3 to one logit
    body = (1 * 64 * 16 + 64) + (64 * 128 * 16 + 128) + (128 * 256 * 16 + 256)
    assert n_params(StridedDiscriminator((64, 128, 256))) == body + (256 * 9 + 1)
    # a hidden layer of 32 units before the logit
    assert n_params(StridedDiscriminator((64, 128, 256), hidden=32)) == body + (256 * 9 * 32 + 32) + (32 + 1)


def test_xavier_init_touches_linear_and_transposed_conv_weights_only():
    torch.manual_seed(0)
    g = InfoGANGenerator(96)
    fc = g.project[0]
    bound = math.sqrt(6.0 / (96 + 1024))
    assert fc.weight.abs().max() <= bound
    assert fc.weight.abs().max() > 0.95 * bound  # uniform over the full Xavier interval
    convt = g.upsample[0]
    fan_in, fan_out = 64 * 16, 128 * 16  # ConvTranspose2d weight is (in, out, k, k)
    assert convt.weight.abs().max() <= math.sqrt(6.0 / (fan_in + fan_out))
    torch.manual_seed(0)
    plain = InfoGANGenerator(96, init=None)
    assert not torch.equal(plain.project[0].weight, fc.weight)


def test_init_rejects_an_unknown_scheme():
    with pytest.raises(ValueError, match="unknown init scheme 'kaiming'"):
        MLPGenerator(96, init="kaiming")


def test_unknown_output_activation_is_rejected():
    with pytest.raises(ValueError, match="unknown output activation 'relu'"):
        MLPGenerator(96, output_activation="relu")
