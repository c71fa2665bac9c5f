"""Floating-point formats for training, and loss scaling, in NumPy (chapter "The challenges of scaling").

Three formats, each a sign bit, e exponent bits and m fraction bits:

    format     bits   e    m   largest        smallest normal   smallest subnormal   eps = 2^-m
    float32     32    8   23   3.40e38        1.18e-38          1.40e-45             1.19e-7
    float16     16    5   10   65504          6.10e-5           5.96e-8              9.77e-4
    bfloat16    16    8    7   3.39e38        1.18e-38          9.18e-41             7.81e-3

float16 (IEEE half precision) spends its bits on precision and has a narrow range; bfloat16 (Google's
"brain float") keeps float32's 8 exponent bits, so float32's range, and only 7 fraction bits. A
bfloat16 number is the upper half of a float32 bit pattern.

- `format_info(dtype)`: the table above, computed from e and m; equal to `torch.finfo`.
- `round_to(x, dtype)`, `to_bfloat16(x)`: the nearest representable number (ties to even), as float32
  values; equal bit for bit to torch's `x.to(dtype).float()`, subnormals, ties and overflow included.
  NumPy has float16 but no bfloat16: `to_bfloat16` rounds the float32 bit pattern to its upper 16 bits.
- `ulp(x, dtype)`: the gap between x (rounded) and the next larger number of the format.
- `running_sum(values, dtype)`: the partial sums of `values` with every addition rounded to dtype.
- `DynamicLossScaler`, `scale_history`: the dynamic loss scaling of mixed-precision training
  (Micikevicius et al. 2018), step for step `torch.amp.GradScaler`.

Float64 input is first rounded to float32, then to the format, as torch's conversions do. That rounds
twice, and twice is not always once: 1 + 2^-8 + 2^-30 becomes 1 + 2^-8 in float32, a tie in bfloat16,
which goes to the even 1.0, whereas rounding the float64 value once would give 1 + 2^-7.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from dlbook._validation import require_int, require_real

__all__ = [
    "FORMATS",
    "DynamicLossScaler",
    "FormatInfo",
    "LossScalerState",
    "format_info",
    "round_to",
    "running_sum",
    "scale_history",
    "to_bfloat16",
    "ulp",
]

# name -> (exponent bits, fraction bits)
FORMATS = {"float32": (8, 23), "float16": (5, 10), "bfloat16": (8, 7)}


def _require_format(dtype: object) -> str:
    if dtype not in FORMATS:
        raise ValueError(f"dtype must be one of {', '.join(map(repr, FORMATS))}, got {dtype!r}")
    return dtype


def _as_float32(name: str, x: object) -> np.ndarray:
    """x as a float32 array: Python and NumPy real numbers and float arrays (float64 rounds to float32)."""
    if isinstance(x, numbers.Real) and not isinstance(x, bool | np.bool_):
        x = np.asarray(float(x))
    if not isinstance(x, np.ndarray) or not np.issubdtype(x.dtype, np.floating):
        got = f"an array of dtype {x.dtype}" if isinstance(x, np.ndarray) else type(x).__name__
        raise TypeError(f"{name} must be a real number or a float array, got {got}")
    with np.errstate(over="ignore"):  # float64 beyond float32's range becomes inf, as in torch
        return x.astype(np.float32)


@dataclass(frozen=True)
class FormatInfo:
    """The numbers that describe a floating-point format (see the module's table).

    max: the largest finite number; smallest_normal: 2^(1 - bias), below which numbers lose precision;
    smallest_subnormal: 2^(1 - bias - m), below which they round to 0; eps: 2^-m, the gap between 1
    and the next number, and (about) twice the largest relative rounding error.
    """

    name: str
    bits: int
    exponent_bits: int
    fraction_bits: int
    max: float
    smallest_normal: float
    smallest_subnormal: float
    eps: float


def format_info(dtype: str) -> FormatInfo:
    """The largest, smallest normal and smallest subnormal numbers and eps of "float32", "float16" or
    "bfloat16", from its e exponent and m fraction bits: with bias = 2^(e - 1) - 1, the largest is
    (2 - 2^-m) 2^bias, the smallest normal 2^(1 - bias), the smallest subnormal 2^(1 - bias - m)."""
    e, m = FORMATS[_require_format(dtype)]
    bias = 2 ** (e - 1) - 1
    return FormatInfo(
        name=dtype,
        bits=1 + e + m,
        exponent_bits=e,
        fraction_bits=m,
        max=(2.0 - 2.0**-m) * 2.0**bias,
        smallest_normal=2.0 ** (1 - bias),
        smallest_subnormal=2.0 ** (1 - bias - m),
        eps=2.0**-m,
    )


def to_bfloat16(x: object) -> np.ndarray:
    """The bfloat16 number nearest to each value of x (ties to even), as a float32 array of x's shape.

    A bfloat16 is the upper 16 bits of a float32. Rounding the bit pattern u to its upper half:
    add 0x7FFF, plus 1 when the lowest kept bit is 1 (so that a tie, lower half exactly 0x8000, goes
    to the even neighbour), and clear the lower 16 bits. The carry propagates into the exponent when
    the fraction overflows, which makes subnormals round into normals and the largest numbers round
    to infinity, as they should. NaN stays NaN (a quiet NaN, 0x7FC0 in bfloat16); infinities stay.
    """
    x = _as_float32("x", x)
    bits = x.view(np.uint32).astype(np.uint64)  # room for the carry out of the top
    rounded = (bits + 0x7FFF + ((bits >> 16) & 1)) & 0xFFFF0000
    result = rounded.astype(np.uint32).view(np.float32)
    return np.where(np.isnan(x), np.float32(np.nan), result).astype(np.float32)


def round_to(x: object, dtype: str) -> np.ndarray:
    """x rounded to the nearest number of dtype ("float32", "float16" or "bfloat16"), ties to even,
    returned as float32 values of x's shape; equal to torch's x.to(dtype).float(). Numbers beyond the
    largest round to infinity once they reach the midpoint to the next power of two (65520 for float16);
    numbers below half the smallest subnormal round to 0."""
    dtype = _require_format(dtype)
    x = _as_float32("x", x)
    if dtype == "bfloat16":
        return to_bfloat16(x)
    with np.errstate(over="ignore"):
        return x.astype(np.float16).astype(np.float32) if dtype == "float16" else x


def _next_up(r: np.ndarray, dtype: str) -> np.ndarray:
    """The next number of dtype above each r >= 0 of dtype (r float32)."""
    if dtype == "bfloat16":
        upper = (r.view(np.uint32) >> 16) + 1  # the next bfloat16 bit pattern
        return (upper << 16).astype(np.uint32).view(np.float32)
    native = np.float16 if dtype == "float16" else np.float32
    with np.errstate(over="ignore"):  # above the largest number comes infinity
        return np.nextafter(r.astype(native), native(np.inf)).astype(np.float32)


def ulp(x: object, dtype: str) -> np.ndarray:
    """The gap between |x| rounded to dtype and the next larger number of dtype (a "unit in the last
    place"), float64, of x's shape. In the normal range it is eps times the power of two at or below
    |x|: the gap grows with the number and the relative gap stays between eps / 2 and eps. Below the
    smallest normal it is the smallest subnormal, the same everywhere. At the largest number it is inf
    (the next is infinity)."""
    dtype = _require_format(dtype)
    r = np.abs(round_to(x, dtype))
    with np.errstate(invalid="ignore"):  # inf - inf at infinity: nan, as in torch
        return _next_up(r, dtype).astype(np.float64) - r.astype(np.float64)


def running_sum(values: object, dtype: str) -> np.ndarray:
    """The partial sums s_k = round(s_(k-1) + round(v_k)) of a 1-D array of values, s_0 = 0, each
    addition rounded to dtype as 16-bit hardware (and torch on the CPU) does: computed exactly, then
    rounded once. Returns the (n,) float32 array s_1 .. s_n.

    Computing the sum of two float16 or bfloat16 numbers in float32 and rounding that is the same as
    rounding the exact sum: float32 has more than twice their precision plus two bits, so the first
    rounding never creates a false tie.
    """
    dtype = _require_format(dtype)
    values = round_to(_as_float32("values", values), dtype)
    if values.ndim != 1:
        raise ValueError(f"values must be a 1-D array, got shape {values.shape}")
    sums = np.empty_like(values)
    total = np.zeros((), np.float32)
    for k, value in enumerate(values):
        total = round_to(total + value, dtype)
        sums[k] = total
    return sums


# ---- loss scaling -------------------------------------------------------------------------------


@dataclass(frozen=True)
class LossScalerState:
    """scale: the current loss scale (a float32 value); growth_tracker: finite steps since the scale
    last changed or last met an overflow."""

    scale: float
    growth_tracker: int


@dataclass(frozen=True)
class DynamicLossScaler:
    """Dynamic loss scaling (Micikevicius et al. 2018), the algorithm of torch.amp.GradScaler.

    Multiply the loss by `scale` before the backward pass, so that small gradients do not underflow
    in float16; divide the gradients by it before the optimizer step. Then

    - if any gradient is inf or NaN (the scale was too large and something overflowed): skip the
      step, multiply the scale by backoff_factor and reset the count of good steps;
    - otherwise take the step and count it; after growth_interval good steps in a row, multiply the
      scale by growth_factor (unless that overflows float32) and start counting again.

    The scale is a float32 number, updated as torch does (the product computed in float64, rounded
    to float32). Usage, with a frozen scaler and its state as a value:

        state = scaler.init()
        grads = backward(loss * state.scale)             # the gradients of the scaled loss
        grads, found_inf = scaler.unscale(grads, state)
        if not found_inf: params = step(params, grads)
        state = scaler.update(state, found_inf)
    """

    init_scale: float = 2.0**16
    growth_factor: float = 2.0
    backoff_factor: float = 0.5
    growth_interval: int = 2000

    def __post_init__(self) -> None:
        for name in ("init_scale", "growth_factor", "backoff_factor"):
            object.__setattr__(self, name, require_real(name, getattr(self, name)))
        if not 0 < self.init_scale < np.finfo(np.float32).max:
            raise ValueError(f"init_scale must be a positive float32 number, got {self.init_scale}")
        if self.growth_factor <= 1:
            raise ValueError(f"growth_factor must be > 1, got {self.growth_factor}")
        if not 0 < self.backoff_factor < 1:
            raise ValueError(f"backoff_factor must lie in (0, 1), got {self.backoff_factor}")
        object.__setattr__(self, "growth_interval", require_int("growth_interval", self.growth_interval, minimum=1))

    def init(self) -> LossScalerState:
        return LossScalerState(scale=float(np.float32(self.init_scale)), growth_tracker=0)

    def unscale(self, grads: Sequence[np.ndarray], state: LossScalerState) -> tuple[list[np.ndarray], bool]:
        """(every gradient times 1 / scale, whether any entry of any gradient is inf or NaN). As in
        torch, 1 / scale is computed in float64 and rounded to float32 before the multiplication."""
        inverse = np.float32(1.0 / np.float64(state.scale))
        unscaled, found_inf = [], False
        for index, grad in enumerate(grads):
            if not isinstance(grad, np.ndarray) or not np.issubdtype(grad.dtype, np.floating):
                raise TypeError(f"grads[{index}] must be a float array, got {type(grad).__name__}")
            unscaled.append((grad * inverse).astype(grad.dtype))
            found_inf = found_inf or not bool(np.isfinite(grad).all())
        return unscaled, found_inf

    def update(self, state: LossScalerState, found_inf: bool) -> LossScalerState:
        """The state after a step whose gradients did (found_inf) or did not overflow."""
        if not isinstance(found_inf, bool | np.bool_):
            raise TypeError(f"found_inf must be True or False, got {type(found_inf).__name__}")
        if found_inf:
            return LossScalerState(scale=float(np.float32(state.scale * self.backoff_factor)), growth_tracker=0)
        if state.growth_tracker + 1 < self.growth_interval:
            return LossScalerState(scale=state.scale, growth_tracker=state.growth_tracker + 1)
        with np.errstate(over="ignore"):  # a product beyond float32's range rounds to inf: keep the scale
            grown = np.float32(state.scale * self.growth_factor)
        return LossScalerState(scale=float(grown) if np.isfinite(grown) else state.scale, growth_tracker=0)


def scale_history(
    found_inf: Sequence[bool],
    init_scale: float = 2.0**16,
    growth_factor: float = 2.0,
    backoff_factor: float = 0.5,
    growth_interval: int = 2000,
) -> list[float]:
    """The loss scale in force at each step of a run whose steps overflowed as `found_inf` says, and
    after the last: n + 1 values for n steps. The PyTorch twin runs a real GradScaler."""
    scaler = DynamicLossScaler(init_scale, growth_factor, backoff_factor, growth_interval)
    state = scaler.init()
    scales = [state.scale]
    for flag in found_inf:
        state = scaler.update(state, flag)
        scales.append(state.scale)
    return scales
