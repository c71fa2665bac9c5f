"""Helpers shared by the test files: a seeded generator, a twin comparison, a numerical gradient."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
import torch
from hypothesis import settings

SEED = 20240601

# Property tests draw the same examples on every run (a failure in CI reproduces on a laptop) and
# keep no example database in the working tree.
settings.register_profile("dlbook", derandomize=True, database=None)
settings.load_profile("dlbook")


@pytest.fixture
def rng() -> np.random.Generator:
    """A fresh, seeded NumPy generator for each test: tests never touch a global random state."""
    return np.random.default_rng(SEED)


def to_numpy(value: object) -> np.ndarray:
    """A NumPy array from a tensor (detached, on the CPU), an array or a Python number."""
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().numpy()
    return np.asarray(value)


def assert_close(np_value: object, torch_value: object, *, rtol: float, atol: float) -> None:
    """Assert a NumPy result equals its PyTorch twin's: same shape, values within rtol and atol."""
    actual, expected = to_numpy(np_value), to_numpy(torch_value)
    assert actual.shape == expected.shape, f"shape {actual.shape} != {expected.shape}"
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol)


def numerical_gradient(f: Callable[[np.ndarray], float], x: np.ndarray, h: float = 1e-6) -> np.ndarray:
    """Central differences (f(x + h e_i) - f(x - h e_i)) / 2h for every entry of x, of any shape (0-d too).

    The error is O(h^2) from truncation plus about eps * |f| / h from rounding.
    """
    x = np.array(x, dtype=np.float64)
    gradient = np.zeros_like(x)
    for index in np.ndindex(x.shape):
        x_plus, x_minus = x.copy(), x.copy()
        x_plus[index] += h
        x_minus[index] -= h
        gradient[index] = (float(f(x_plus)) - float(f(x_minus))) / (2 * h)
    return gradient
