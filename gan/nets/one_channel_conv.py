"""A convolution over one-channel images whose input gradient is a matrix product and a fold.

oneDNN computes the gradient of a convolution's input as another convolution, which for one
output channel (the grey image) runs at a few percent of the CPU's arithmetic rate: for the
tutorial D's first layer (1 -> 32 channels, 5x5, batch 128) it took about 11 ms against 4.6 ms
for the same numbers as ``(positions x C) @ (C x k*k)`` followed by ``F.fold`` (AVX-512 BF16 kind
without AMX). A GAN needs that gradient in every G update (G's images are D's input) and in every
R1/R2 penalty, so the layer computes it the second way. The forward pass and the weight gradient
stay oneDNN's; every part of the backward is made of differentiable ops, so the penalties' double
backward goes through it.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def input_gradient(grad: Tensor, weight: Tensor, size: tuple[int, int]) -> Tensor:
    """The gradient at a ``(n, 1, *size)`` input of a stride-1, unpadded convolution with
    ``weight`` ``(C, 1, k, k)``, given the gradient ``grad`` ``(n, C, h, w)`` at its output."""
    n, channels, h, w = grad.shape
    k = weight.shape[-1]
    per_position = grad.permute(0, 2, 3, 1).reshape(n, h * w, channels) @ weight.reshape(channels, k * k).to(grad.dtype)
    return F.fold(per_position.transpose(1, 2), size, k)


class _OneChannelConv(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
        ctx.save_for_backward(x, weight)
        ctx.has_bias = bias is not None
        return F.conv2d(x, weight, bias)

    @staticmethod
    def backward(ctx, grad: Tensor):
        x, weight = ctx.saved_tensors
        grad_x = grad_w = grad_b = None
        if ctx.needs_input_grad[0]:
            grad_x = input_gradient(grad, weight, x.shape[-2:])
        if ctx.needs_input_grad[1] or ctx.needs_input_grad[2]:
            mask = [False, ctx.needs_input_grad[1], ctx.has_bias and ctx.needs_input_grad[2]]
            _, grad_w, grad_b = torch.ops.aten.convolution_backward(
                grad, x.to(grad.dtype), weight.to(grad.dtype), [weight.shape[0]] if ctx.has_bias else None,
                [1, 1], [0, 0], [1, 1], False, [0, 0], 1, mask)
        return grad_x, grad_w, grad_b


class OneChannelConv2d(nn.Conv2d):
    """``nn.Conv2d(1, out_channels, kernel_size)`` (stride 1, no padding): the same parameters,
    state-dict keys and outputs, with the faster input gradient of :func:`input_gradient`."""

    def __init__(self, out_channels: int, kernel_size: int, bias: bool = True) -> None:
        super().__init__(1, out_channels, kernel_size, bias=bias)

    def forward(self, x: Tensor) -> Tensor:
        return _OneChannelConv.apply(x, self.weight, self.bias)
