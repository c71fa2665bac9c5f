"""Tensor parallelism in the style of Megatron-LM (Shoeybi et al. 2019): one layer's weight matrices
split over the ranks of a process group, each rank computing its share of every product.

A linear layer y = x W^T + b (torch's layout: W is (out, in)) splits two ways:

- `ColumnParallelLinear`: rank r holds the rows r of W (a block of *output* features, the columns
  of the math convention's x A) and computes its block of y from the whole x. No communication
  forward; backward, the gradient of x is a sum over the ranks' blocks: an all-reduce.
- `RowParallelLinear`: rank r holds the columns r of W (a block of *input* features) and gets only
  the matching block of x; its product is a partial sum of y, completed by an all-reduce, and the
  bias is added once, after it. Backward needs no communication.

Chained, column then row, as in a transformer's MLP, down(gelu(up(x))): each rank applies the
GELU to its own block of hidden units (an elementwise function needs nothing from other blocks), so
the whole MLP costs one all-reduce forward and one backward. `ParallelMLP.from_mlp` builds it from
a `dlbook.torch.gpt.MLP`; the same plan splits attention by heads (qkv by columns, proj by rows).

The two communication points are Megatron's operators f and g: `copy_to_parallel` is the identity
forward and an all-reduce backward; `reduce_from_parallel` is an all-reduce forward and the
identity backward.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
import torch.nn.functional as F  # noqa: N812 (torch's own spelling)
from torch import nn

from dlbook.distributed.ring import ring_chunks

__all__ = [
    "ColumnParallelLinear",
    "ParallelMLP",
    "RowParallelLinear",
    "copy_to_parallel",
    "reduce_from_parallel",
    "shard_slice",
]


def _rank_and_size(group: dist.ProcessGroup | None) -> tuple[int, int]:
    if not dist.is_initialized():
        raise RuntimeError("tensor parallelism needs a process group: call torch.distributed.init_process_group first")
    return dist.get_rank(group), dist.get_world_size(group)


def shard_slice(n: int, rank: int, world_size: int) -> slice:
    """The block of n features that `rank` of world_size holds: as equal as possible, the first
    n mod world_size blocks one longer."""
    if not 0 <= rank < world_size:
        raise ValueError(f"rank must lie in [0, {world_size}), got {rank}")
    return ring_chunks(n, world_size)[rank]


class _CopyToParallel(torch.autograd.Function):
    """Megatron's f: identity forward; backward, the sum of every rank's gradient (all-reduce)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, group: dist.ProcessGroup | None) -> torch.Tensor:
        ctx.group = group
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        grad = grad.contiguous().clone()
        dist.all_reduce(grad, group=ctx.group)
        return grad, None


class _ReduceFromParallel(torch.autograd.Function):
    """Megatron's g: forward, the sum of every rank's partial result (all-reduce); identity backward."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, group: dist.ProcessGroup | None) -> torch.Tensor:
        x = x.contiguous().clone()
        dist.all_reduce(x, group=group)
        return x

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        return grad, None


def copy_to_parallel(x: torch.Tensor, group: dist.ProcessGroup | None = None) -> torch.Tensor:
    """x unchanged; its gradient is all-reduced over the group (the input of column-parallel layers)."""
    return _CopyToParallel.apply(x, group)


def reduce_from_parallel(x: torch.Tensor, group: dist.ProcessGroup | None = None) -> torch.Tensor:
    """The sum of x over the group's ranks (all-reduce); the gradient passes unchanged."""
    return _ReduceFromParallel.apply(x, group)


class ColumnParallelLinear(nn.Module):
    """This rank's block of output features of a linear layer: x (..., in) -> (..., out_r), where
    rank r holds rows `shard_slice(out, r, p)` of the full weight (out, in) and of the bias."""

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None, group: dist.ProcessGroup | None = None):
        super().__init__()
        self.group = group
        self.weight = nn.Parameter(weight)
        self.bias = None if bias is None else nn.Parameter(bias)

    @classmethod
    def from_linear(cls, linear: nn.Linear, group: dist.ProcessGroup | None = None) -> ColumnParallelLinear:
        """This rank's share of an existing layer (every rank passes the same full layer)."""
        rank, size = _rank_and_size(group)
        rows = shard_slice(linear.out_features, rank, size)
        bias = None if linear.bias is None else linear.bias.detach()[rows].clone()
        return cls(linear.weight.detach()[rows].clone(), bias, group)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(copy_to_parallel(x, self.group), self.weight, self.bias)


class RowParallelLinear(nn.Module):
    """A linear layer whose input features are split over the ranks: x_r (..., in_r) -> the full
    output (..., out) on every rank. Rank r holds columns `shard_slice(in, r, p)` of the weight
    (out, in); the partial products are summed by an all-reduce, then the (whole) bias is added."""

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None, group: dist.ProcessGroup | None = None):
        super().__init__()
        self.group = group
        self.weight = nn.Parameter(weight)
        self.bias = None if bias is None else nn.Parameter(bias)

    @classmethod
    def from_linear(cls, linear: nn.Linear, group: dist.ProcessGroup | None = None) -> RowParallelLinear:
        rank, size = _rank_and_size(group)
        columns = shard_slice(linear.in_features, rank, size)
        bias = None if linear.bias is None else linear.bias.detach().clone()
        return cls(linear.weight.detach()[:, columns].clone(), bias, group)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = reduce_from_parallel(F.linear(x, self.weight), self.group)
        return out if self.bias is None else out + self.bias


class ParallelMLP(nn.Module):
    """A transformer MLP split over the ranks: up (and gate) column-parallel, down row-parallel.
    x (N, T, d_model), the same on every rank -> (N, T, d_model), the full output on every rank."""

    def __init__(self, up: ColumnParallelLinear, down: RowParallelLinear, gate: ColumnParallelLinear | None = None):
        super().__init__()
        self.up, self.down, self.gate = up, down, gate

    @classmethod
    def from_mlp(cls, mlp: nn.Module, group: dist.ProcessGroup | None = None) -> ParallelMLP:
        """This rank's share of a `dlbook.torch.gpt.MLP` (GELU or SwiGLU)."""
        for name in ("up", "down"):
            if not isinstance(getattr(mlp, name, None), nn.Linear):
                raise TypeError(f"mlp must be a dlbook.torch.gpt.MLP with linear layers up and down, got {mlp!r}")
        gate = getattr(mlp, "gate", None)
        return cls(
            ColumnParallelLinear.from_linear(mlp.up, group),
            RowParallelLinear.from_linear(mlp.down, group),
            None if gate is None else ColumnParallelLinear.from_linear(gate, group),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.gate is not None:
            return self.down(F.silu(self.gate(x)) * self.up(x))
        return self.down(F.gelu(self.up(x), approximate="tanh"))
