import pytest
import torch
from torch import nn

from gan.nets.one_channel_conv import OneChannelConv2d, _OneChannelConv


def twins(out_channels=8, k=5):
    torch.manual_seed(0)
    reference = nn.Conv2d(1, out_channels, k)
    ours = OneChannelConv2d(out_channels, k)
    ours.load_state_dict(reference.state_dict())  # the same keys: checkpoints of either load into the other
    return reference, ours


@pytest.mark.parametrize("channels_last", [False, True])
def test_outputs_are_nn_conv2ds_and_gradients_match_it(channels_last):
    reference, ours = twins()
    x = torch.randn(6, 1, 28, 28)
    if channels_last:
        reference, ours = (m.to(memory_format=torch.channels_last) for m in (reference, ours))
        x = x.contiguous(memory_format=torch.channels_last)
    x = x.requires_grad_()
    out_ref, out = reference(x), ours(x)
    assert torch.equal(out, out_ref)
    g = torch.randn_like(out)
    grads_ref = torch.autograd.grad(out_ref, [x, *reference.parameters()], g)
    grads = torch.autograd.grad(out, [x, *ours.parameters()], g)
    for a, b in zip(grads, grads_ref):
        assert torch.allclose(a, b, rtol=1e-5, atol=1e-5)


def test_first_and_second_derivatives_are_exact_in_float64():
    torch.manual_seed(0)
    conv = OneChannelConv2d(3, 3).double()
    x = torch.randn(2, 1, 6, 6, dtype=torch.double, requires_grad=True)
    assert torch.autograd.gradcheck(_OneChannelConv.apply, (x, conv.weight, conv.bias))
    assert torch.autograd.gradgradcheck(_OneChannelConv.apply, (x, conv.weight, conv.bias))


def test_an_r1_penalty_gives_nn_conv2ds_weight_gradients():
    reference, ours = twins()
    head = nn.Sequential(nn.LeakyReLU(0.2), nn.Flatten(), nn.Linear(8 * 24 * 24, 1))
    results = []
    for conv in (reference, ours):
        x = torch.randn(4, 1, 28, 28, generator=torch.Generator().manual_seed(1)).requires_grad_()
        grad_x, = torch.autograd.grad(head(conv(x)).sum(), x, create_graph=True)
        results.append(torch.autograd.grad(grad_x.square().sum(), conv.weight))
    assert torch.allclose(results[0][0], results[1][0], rtol=1e-4, atol=1e-6)


def test_only_the_asked_gradients_are_computed():
    _, ours = twins()
    ours.requires_grad_(False)  # D frozen in the G phase: the input gradient alone
    x = torch.randn(2, 1, 28, 28, requires_grad=True)
    ours(x).sum().backward()
    assert x.grad is not None and ours.weight.grad is None


def test_bf16_autocast_runs_and_returns_an_fp32_input_gradient():
    _, ours = twins()
    x = torch.randn(2, 1, 28, 28, requires_grad=True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = ours(x)
    out.float().sum().backward()
    assert x.grad.dtype == torch.float32 and ours.weight.grad.dtype == torch.float32
    assert torch.isfinite(x.grad).all()
