"""PyTorch twins of `dlbook.np.conv`: the same names and signatures, on `torch.nn.functional`.

One difference in what comes back: the NumPy forward functions return `(out, cache)` and have a
`*_backward` partner, while these return the output tensor alone, and autograd computes the
gradients (`out.backward(dout)` fills `x.grad`, `weight.grad`, `bias.grad`). There are no
`*_backward` functions here. `conv2d_naive` is the same call as `conv2d`: torch has one convolution,
and the loops of the NumPy twin exist only to be read. `output_size` and `receptive_field` are the
NumPy twin's functions.
"""

from __future__ import annotations

import torch

from dlbook.np.conv import IntPair, output_size, receptive_field

__all__ = ["avg_pool2d", "conv2d", "conv2d_naive", "max_pool2d", "output_size", "receptive_field"]


def conv2d(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    stride: IntPair = 1,
    padding: IntPair = 0,
    dilation: IntPair = 1,
) -> torch.Tensor:
    """x: (N, C, H, W), weight: (F, C, KH, KW), bias: (F,) or None -> out: (N, F, H_out, W_out)."""
    return torch.nn.functional.conv2d(x, weight, bias, stride=stride, padding=padding, dilation=dilation)


def conv2d_naive(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    stride: IntPair = 1,
    padding: IntPair = 0,
    dilation: IntPair = 1,
) -> torch.Tensor:
    """The same as `conv2d` (torch has a single implementation); kept so that the twins share names."""
    return conv2d(x, weight, bias, stride, padding, dilation)


def max_pool2d(
    x: torch.Tensor, kernel_size: IntPair, stride: IntPair | None = None, padding: IntPair = 0
) -> torch.Tensor:
    """The maximum of every KH x KW window.  x: (N, C, H, W) -> out: (N, C, H_out, W_out)."""
    return torch.nn.functional.max_pool2d(x, kernel_size, stride=stride, padding=padding)


def avg_pool2d(
    x: torch.Tensor, kernel_size: IntPair, stride: IntPair | None = None, padding: IntPair = 0
) -> torch.Tensor:
    """The mean of every KH x KW window, padded zeros counted.  x: (N, C, H, W) -> out: (N, C, H_out, W_out)."""
    return torch.nn.functional.avg_pool2d(x, kernel_size, stride=stride, padding=padding, count_include_pad=True)
