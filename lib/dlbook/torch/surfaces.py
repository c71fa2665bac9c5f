"""PyTorch twins of `dlbook.np.surfaces`: the same functions on tensors, gradients by autograd."""

from __future__ import annotations

import torch


def quadratic(p: torch.Tensor, curvatures: tuple[float, float] = (1.0, 10.0)) -> torch.Tensor:
    """f(x, y) = (a x^2 + b y^2) / 2 for p: (..., 2)."""
    return 0.5 * (p**2 * p.new_tensor(curvatures)).sum(dim=-1)


def rosenbrock(p: torch.Tensor, a: float = 1.0, b: float = 100.0) -> torch.Tensor:
    """f(x, y) = (a - x)^2 + b (y - x^2)^2 for p: (..., 2)."""
    x, y = p[..., 0], p[..., 1]
    return (a - x) ** 2 + b * (y - x**2) ** 2


def double_well(p: torch.Tensor) -> torch.Tensor:
    """f(x, y) = x^2 / 2 + y^4 / 4 - y^2 / 2 for p: (..., 2)."""
    x, y = p[..., 0], p[..., 1]
    return x**2 / 2 + y**4 / 4 - y**2 / 2
