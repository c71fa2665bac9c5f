"""Gradient checking: compare a backward pass with finite differences (chapter 2).

A backward rule with a wrong sign, a missing sum or a transposed matrix still runs; only a check
against an independent estimate of the gradient catches it. The estimate here is the central
difference

    df/dx_i ~ (f(x + h e_i) - f(x - h e_i)) / 2h,

whose error is O(h^2) from truncation plus about eps * |f| / h from rounding (eps ~ 1e-16 in
float64), so h ~ 1e-6 leaves roughly 1e-10 relative error on a well-scaled function.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from dlbook._validation import require_float_array, require_positive


def _scalar(value: object) -> float:
    array = np.asarray(value, dtype=np.float64)
    if array.size != 1:
        raise ValueError(f"f must return a single number, got a value of shape {array.shape}")
    return array.item()


def numerical_gradient(f: Callable[[np.ndarray], float], x: np.ndarray, h: float = 1e-6) -> np.ndarray:
    """The central-difference estimate of the gradient of f at x.

    f: maps an array of x's shape to a number (a float, a 0-d array or a one-element Tensor).
    x: float array of any shape (0-d too), e.g. a weight matrix (D, M); it is not modified: f
        is evaluated at a float64 copy, moved by +-h along one coordinate at a time.
    h: the step, > 0.
    Returns a float64 array of x's shape: entry i is (f(x + h e_i) - f(x - h e_i)) / 2h.
    Costs 2 evaluations of f per entry of x, so keep x small.
    """
    x = require_float_array("x", x)
    h = require_positive("h", h)
    point = x.astype(np.float64)  # a copy: moved one coordinate at a time, then put back
    gradient = np.zeros_like(point)
    for index in np.ndindex(point.shape):
        original = point[index]
        point[index] = original + h
        f_plus = _scalar(f(point))
        point[index] = original - h
        f_minus = _scalar(f(point))
        point[index] = original
        gradient[index] = (f_plus - f_minus) / (2 * h)
    return gradient


def relative_error(a: np.ndarray, b: np.ndarray) -> float:
    """max |a - b| / max(|a|, |b|): one number for how far two gradients of the same shape disagree.

    Scale-free, so one threshold serves large and small gradients: about 1e-10 or less means the
    two agree to finite-difference accuracy, 1e-2 or more means one of them is wrong. The
    denominator is floored at the smallest positive float64, so two zero arrays give 0.
    """
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"a and b must have the same shape, got {a.shape} and {b.shape}")
    if a.size == 0:
        return 0.0
    scale = max(np.abs(a).max(), np.abs(b).max(), np.finfo(np.float64).tiny)
    return float(np.abs(a - b).max() / scale)
