import pytest
import torch

from gan.runtime.build import build_gan
from gan.runtime.errors import ConfigError
from gan.nets.dcgan import InfoGANDiscriminator
from gan.nets.minibatch_std import MinibatchStd, group_size_for
from gan.nets.modern_dcgan import StridedDiscriminator


def test_the_appended_channel_is_each_groups_mean_standard_deviation():
    x = torch.randn(8, 3, 2, 2)
    out = MinibatchStd(4)(x)
    assert out.shape == (8, 4, 2, 2)
    assert torch.equal(out[:, :3], x)
    for group in (slice(0, 4), slice(4, 8)):  # consecutive images form a group
        expected = x[group].std(dim=0, unbiased=False).mean()
        assert torch.allclose(out[group, 3], expected.expand(4, 2, 2), atol=1e-6)


def test_identical_images_score_zero_spread_and_varied_ones_do_not():
    same = torch.randn(1, 2, 4, 4).expand(4, 2, 4, 4)
    assert MinibatchStd(4)(same)[:, 2].abs().max() < 1e-3
    assert MinibatchStd(4)(torch.randn(4, 2, 4, 4))[:, 2].min() > 0.5


def test_groups_are_consecutive_images():
    spread, alike = torch.randn(8, 2, 3, 3), torch.zeros(8, 2, 3, 3)  # a collapsed G: every image the same
    out = MinibatchStd(4)(torch.cat([spread, alike]))
    assert out[8:, 2].abs().max() < 1e-3 and out[:8, 2].min() > 0.3


def test_a_joint_d_pass_is_refused_with_it(make_cfg):
    with pytest.raises(ConfigError, match="joint_d_pass=true needs a discriminator that scores each image on its own.*MinibatchStd"):
        build_gan(make_cfg("model.discriminator.minibatch_std=4", "model.speed.joint_d_pass=true"))


@pytest.mark.parametrize("batch,asked,got", [(128, 4, 4), (6, 4, 3), (7, 4, 1), (2, 4, 2), (1, 4, 1)])
def test_a_batch_the_group_does_not_divide_takes_the_largest_group_that_does(batch, asked, got):
    assert group_size_for(batch, asked) == got
    assert MinibatchStd(asked)(torch.randn(batch, 2, 2, 2)).shape == (batch, 3, 2, 2)


def test_the_gradient_penalty_double_backward_goes_through_it():
    d = InfoGANDiscriminator(hidden=32, minibatch_std=4)
    x = torch.randn(8, 1, 28, 28, requires_grad=True)
    grad, = torch.autograd.grad(d(x).sum(), x, create_graph=True)
    grad.square().sum().backward()
    weights = [p for name, p in d.named_parameters() if name.endswith("weight")]  # biases do not move D's input gradient
    assert all(w.grad is not None and torch.isfinite(w.grad).all() and w.grad.abs().sum() > 0 for w in weights)


def test_the_tutorial_d_gets_one_more_input_channel_to_its_fc_layer():
    plain, spread = InfoGANDiscriminator(), InfoGANDiscriminator(minibatch_std=4)
    assert spread.classify[0].in_features == plain.classify[0].in_features + 4 * 4
    assert spread(torch.randn(8, 1, 28, 28)).shape == (8, 1)


def test_the_strided_d_takes_it_too():
    plain, spread = StridedDiscriminator((8, 16)), StridedDiscriminator((8, 16), minibatch_std=2)
    assert spread.classify.in_features == plain.classify.in_features + 7 * 7  # 28 -> 14 -> 7
    assert spread(torch.randn(6, 1, 28, 28)).shape == (6, 1)


@pytest.mark.parametrize("bad", [1, -2, 2.5, True])
def test_a_group_of_fewer_than_two_images_is_refused(bad):
    with pytest.raises(ConfigError, match="minibatch_std"):
        MinibatchStd(bad)
