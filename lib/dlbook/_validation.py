"""Checks at the library's public boundary.

Every public function validates what a learner passes in and raises an error that names what was
expected and what came, instead of failing deep inside NumPy or returning a silently wrong result.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence

import numpy as np


def _describe(value: object) -> str:
    if isinstance(value, np.ndarray):
        return f"an array of shape {value.shape} and dtype {value.dtype}"
    return f"{type(value).__name__} {value!r}"


def require_real(name: str, value: object) -> float:
    """Return `value` as a float, or raise TypeError if it is not a real number."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {_describe(value)}")
    value = float(value)
    if not np.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    return value


def require_nonnegative(name: str, value: object) -> float:
    value = require_real(name, value)
    if value < 0:
        raise ValueError(f"{name} must be >= 0, got {value}")
    return value


def require_positive(name: str, value: object) -> float:
    value = require_real(name, value)
    if value <= 0:
        raise ValueError(f"{name} must be > 0, got {value}")
    return value


def require_in_unit_interval(name: str, value: object, *, include_one: bool = False) -> float:
    """Require 0 <= value < 1 (or <= 1 when `include_one`)."""
    value = require_real(name, value)
    upper_ok = value <= 1 if include_one else value < 1
    if not (value >= 0 and upper_ok):
        interval = "[0, 1]" if include_one else "[0, 1)"
        raise ValueError(f"{name} must lie in {interval}, got {value}")
    return value


def require_int(name: str, value: object, *, minimum: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {_describe(value)}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


def require_bool(name: str, value: object) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {_describe(value)}")
    return bool(value)


def require_float_array(name: str, value: object, *, ndim: int | None = None) -> np.ndarray:
    """Require a NumPy array of floating dtype (optionally of a given number of dimensions)."""
    if isinstance(value, np.floating):  # a 0-d result of NumPy arithmetic, e.g. residual.mean()
        value = np.asarray(value)
    if not isinstance(value, np.ndarray):
        raise TypeError(f"{name} must be a NumPy array, got {_describe(value)}")
    if not np.issubdtype(value.dtype, np.floating):
        raise TypeError(
            f"{name} must have a floating dtype (float32 or float64), got dtype {value.dtype}; "
            f"convert it with {name}.astype(np.float64)"
        )
    if ndim is not None and value.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} dimension(s), got shape {value.shape}")
    return value


def require_last_axis(name: str, value: np.ndarray, size: int) -> None:
    if value.ndim == 0 or value.shape[-1] != size:
        raise ValueError(
            f"{name} must have shape (..., {size}) with {size} coordinates on the last axis, "
            f"got shape {value.shape}"
        )


def require_state_matches(params: Sequence[np.ndarray], buffers: Sequence[np.ndarray | None], name: str) -> None:
    """Require an optimizer state built for these parameters: one buffer per parameter, same shapes."""
    if len(buffers) != len(params):
        raise ValueError(
            f"the optimizer state was built for {len(buffers)} parameters, but {len(params)} came; "
            f"call optimizer.init(params) for these parameters"
        )
    for index, (param, buffer) in enumerate(zip(params, buffers, strict=True)):
        if buffer is not None and np.shape(buffer) != param.shape:
            raise ValueError(
                f"state.{name}[{index}] has shape {np.shape(buffer)} but params[{index}] has shape {param.shape}: "
                f"the state belongs to other parameters; call optimizer.init(params)"
            )


def require_matching(params: Sequence[np.ndarray], grads: Sequence[np.ndarray]) -> None:
    """Require one gradient per parameter, each of the same shape as its parameter."""
    if len(params) != len(grads):
        raise ValueError(f"expected one gradient per parameter: {len(params)} parameters, {len(grads)} gradients")
    for index, (param, grad) in enumerate(zip(params, grads, strict=True)):
        require_float_array(f"params[{index}]", param)
        require_float_array(f"grads[{index}]", grad)
        if param.shape != grad.shape:
            raise ValueError(
                f"grads[{index}] must have the shape of params[{index}], "
                f"expected {param.shape}, got {grad.shape}"
            )
