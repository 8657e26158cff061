"""DiffAugment (gan/terms/diffaugment.py): what it does to images, that it is differentiable and
seeded, and that with augment=diffaugment every image D sees passes through it."""

from __future__ import annotations

import pytest
import pytorch_lightning as pl
import torch

from gan.runtime.build import build_gan
from gan.runtime.config import ConfigError
from gan.data import MNISTDataModule
from gan.terms.diffaugment import DiffAugment, cutout, translate
from tests.conftest import QUICK


def images(n=6) -> torch.Tensor:
    return torch.rand(n, 1, 28, 28) * 2 - 1


def test_shapes_and_range_are_kept():
    x = images()
    out = DiffAugment().d_input(x)
    assert out.shape == x.shape and out.dtype == x.dtype
    assert out.min() >= -1 and out.max() <= 1
    channels_last = DiffAugment().d_input(x.contiguous(memory_format=torch.channels_last))
    assert channels_last.shape == x.shape


def test_translation_by_zero_and_cutout_of_size_zero_are_the_identity():
    x = images()
    assert torch.equal(translate(x, 0.0, -1.0), x)
    assert torch.equal(cutout(x, 0.0, -1.0), x)
    assert torch.equal(DiffAugment(translation=0.0, cutout=0.0).d_input(x), x)


def test_translation_moves_each_image_by_whole_pixels_within_the_ratio():
    x = torch.full((32, 1, 28, 28), -1.0)
    x[:, :, 14, 14] = 1.0  # one white pixel in the middle of a black image
    out = translate(x, 0.125, -1.0)  # shifts of at most int(28 / 8 + 0.5) = 4 pixels
    for image in out:
        (ys, xs) = (image[0] == 1.0).nonzero(as_tuple=True)
        assert len(ys) == 1 and abs(int(ys) - 14) <= 4 and abs(int(xs) - 14) <= 4
        assert (image == -1.0).sum() == 28 * 28 - 1  # the uncovered border is filled with black
    assert len({tuple((img[0] == 1.0).nonzero()[0].tolist()) for img in out}) > 1  # each image its own shift


def test_cutout_fills_one_square_of_half_the_size_clipped_at_the_border():
    x = torch.ones(64, 1, 28, 28)
    out = cutout(x, 0.5, -1.0)  # a 14 x 14 square
    filled = (out == -1.0).flatten(1).sum(1)
    assert (filled <= 14 * 14).all() and (filled > 0).all()
    assert (filled == 14 * 14).any()  # one fully inside
    for image in out[:8]:
        ys, xs = (image[0] == -1.0).nonzero(as_tuple=True)
        assert (ys.max() - ys.min() + 1) * (xs.max() - xs.min() + 1) == len(ys)  # a rectangle, no holes


def test_gradients_flow_to_the_generator_through_it():
    g = torch.nn.Sequential(torch.nn.Linear(8, 28 * 28), torch.nn.Tanh(), torch.nn.Unflatten(1, (1, 28, 28)))
    out = DiffAugment().d_input(g(torch.randn(5, 8)))
    out.sum().backward()
    assert g[0].weight.grad is not None and g[0].weight.grad.abs().sum() > 0


def test_the_same_seed_gives_the_same_augmentation():
    x = images()
    torch.manual_seed(7)
    a = DiffAugment().d_input(x)
    torch.manual_seed(7)
    b = DiffAugment().d_input(x)
    assert torch.equal(a, b)
    assert not torch.equal(a, DiffAugment().d_input(x))  # the next draw differs


def test_bad_settings_are_refused_in_one_line():
    with pytest.raises(ConfigError, match="augment.policy=\\[color\\]: must be a non-empty list of translation, cutout"):
        DiffAugment(policy=["color"])
    with pytest.raises(ConfigError, match="augment.cutout=1.5: must be a fraction"):
        DiffAugment(cutout=1.5)


def test_the_fill_is_the_generators_black(make_cfg):
    assert build_gan(make_cfg("augment=diffaugment")).terms[-1].fill == -1.0  # tanh G
    assert build_gan(make_cfg("experiment=tf_simple_gan", "augment=diffaugment", run="s")).terms[-1].fill == 0.0  # sigmoid G


def test_every_image_d_sees_is_augmented_in_both_phases(make_cfg, mnist_root):
    cfg = make_cfg(*QUICK, "model=modern_dcgan", "loss=rpgan", "iterations=1", "augment=diffaugment")
    gan = build_gan(cfg)
    augment = gan.terms[-1]
    produced, seen = [], []
    original = augment.d_input
    augment.d_input = lambda x: produced.append(original(x)) or produced[-1]
    gan.discriminator.register_forward_pre_hook(lambda _, args: seen.append(args[0]))
    trainer = pl.Trainer(accelerator="cpu", max_epochs=-1, logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, use_distributed_sampler=False)
    trainer.fit(gan, datamodule=MNISTDataModule(str(mnist_root), batch_size=16, download=False))
    # D phase: real and generated; G phase: generated and (relativistic loss) real
    assert len(seen) == 4 and all(any(x is y for y in produced) for x in seen)
