"""Two-dimensional loss surfaces with hand-derived gradients (chapter 1).

Every function takes points `p: (..., 2)` float, so one call evaluates a single point (2,) or a
whole grid (H, W, 2) for a contour plot; values come back with shape (...,) and gradients with the
shape of `p`. The PyTorch twins in `dlbook.torch.surfaces` compute the same values, and autograd
checks these gradients in `tests/test_surfaces.py`.
"""

from __future__ import annotations

import numpy as np

from dlbook._validation import require_float_array, require_last_axis, require_positive


def _points(p: np.ndarray) -> np.ndarray:
    p = require_float_array("p", p)
    require_last_axis("p", p, 2)
    return p


def _curvatures(curvatures: tuple[float, float]) -> np.ndarray:
    if len(curvatures) != 2:
        raise ValueError(f"curvatures must be a pair (a, b), got {curvatures!r}")
    return np.array([require_positive(f"curvatures[{i}]", c) for i, c in enumerate(curvatures)])


def quadratic(p: np.ndarray, curvatures: tuple[float, float] = (1.0, 10.0)) -> np.ndarray:
    """f(x, y) = (a x^2 + b y^2) / 2: a bowl whose condition number is max(a, b) / min(a, b)."""
    return 0.5 * np.sum(_curvatures(curvatures) * _points(p) ** 2, axis=-1)


def quadratic_grad(p: np.ndarray, curvatures: tuple[float, float] = (1.0, 10.0)) -> np.ndarray:
    """grad f = (a x, b y)."""
    return _curvatures(curvatures) * _points(p)


def rosenbrock(p: np.ndarray, a: float = 1.0, b: float = 100.0) -> np.ndarray:
    """f(x, y) = (a - x)^2 + b (y - x^2)^2 (Rosenbrock, 1960): a curved valley, minimum at (a, a^2)."""
    p = _points(p)
    x, y = p[..., 0], p[..., 1]
    return (a - x) ** 2 + b * (y - x**2) ** 2


def rosenbrock_grad(p: np.ndarray, a: float = 1.0, b: float = 100.0) -> np.ndarray:
    """grad f = (-2 (a - x) - 4 b x (y - x^2),  2 b (y - x^2))."""
    p = _points(p)
    x, y = p[..., 0], p[..., 1]
    return np.stack([-2 * (a - x) - 4 * b * x * (y - x**2), 2 * b * (y - x**2)], axis=-1)


def double_well(p: np.ndarray) -> np.ndarray:
    """f(x, y) = x^2 / 2 + y^4 / 4 - y^2 / 2: a saddle at the origin between minima at (0, +-1)."""
    p = _points(p)
    x, y = p[..., 0], p[..., 1]
    return x**2 / 2 + y**4 / 4 - y**2 / 2


def double_well_grad(p: np.ndarray) -> np.ndarray:
    """grad f = (x, y^3 - y)."""
    p = _points(p)
    x, y = p[..., 0], p[..., 1]
    return np.stack([x, y**3 - y], axis=-1)
