"""PyTorch twins of `dlbook.np.precision`: the same numbers read off torch's own formats.

`format_info` reads `torch.finfo` (and `torch.nextafter` for the smallest subnormal, which finfo
does not give); `round_to` is `x.to(dtype).float()`; `ulp` is torch.nextafter in the format;
`running_sum` adds in 16-bit tensors; `scale_history` drives a real `torch.amp.GradScaler`.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence

import numpy as np
import torch

from dlbook.np.precision import FORMATS, DynamicLossScaler, FormatInfo

__all__ = ["FORMATS", "FormatInfo", "format_info", "round_to", "running_sum", "scale_history", "to_bfloat16", "ulp"]

TORCH_DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


def _require_format(dtype: object) -> torch.dtype:
    if dtype not in TORCH_DTYPES:
        raise ValueError(f"dtype must be one of {', '.join(map(repr, TORCH_DTYPES))}, got {dtype!r}")
    return TORCH_DTYPES[dtype]


def _as_float32(name: str, x: object) -> torch.Tensor:
    if isinstance(x, numbers.Real) and not isinstance(x, bool):
        x = torch.tensor(float(x), dtype=torch.float64)
    if not isinstance(x, torch.Tensor) or not x.is_floating_point():
        got = f"a tensor of dtype {x.dtype}" if isinstance(x, torch.Tensor) else type(x).__name__
        raise TypeError(f"{name} must be a real number or a floating-point tensor, got {got}")
    return x.float()


def format_info(dtype: str) -> FormatInfo:
    """The largest, smallest normal and smallest subnormal numbers and eps of dtype, from torch.finfo."""
    torch_dtype = _require_format(dtype)
    finfo = torch.finfo(torch_dtype)
    zero = torch.zeros((), dtype=torch_dtype)
    fraction_bits = round(-math.log2(finfo.eps))
    return FormatInfo(
        name=dtype,
        bits=finfo.bits,
        exponent_bits=finfo.bits - 1 - fraction_bits,
        fraction_bits=fraction_bits,
        max=finfo.max,
        smallest_normal=finfo.smallest_normal,
        smallest_subnormal=torch.nextafter(zero, torch.ones_like(zero)).item(),
        eps=finfo.eps,
    )


def round_to(x: torch.Tensor | float, dtype: str) -> torch.Tensor:
    """x.to(dtype).float(): x rounded to dtype, as float32 values (float64 x goes through float32)."""
    return _as_float32("x", x).to(_require_format(dtype)).float()


def to_bfloat16(x: torch.Tensor | float) -> torch.Tensor:
    """x.to(torch.bfloat16).float()."""
    return round_to(x, "bfloat16")


def ulp(x: torch.Tensor | float, dtype: str) -> torch.Tensor:
    """nextafter(|x| rounded, inf) - |x| rounded, in dtype, as float64."""
    r = _as_float32("x", x).to(_require_format(dtype)).abs()
    return torch.nextafter(r, torch.full_like(r, math.inf)).double() - r.double()


def running_sum(values: torch.Tensor, dtype: str) -> torch.Tensor:
    """The partial sums of a 1-D tensor, accumulated in a tensor of dtype, one addition at a time;
    (n,) float32."""
    torch_dtype = _require_format(dtype)
    values = _as_float32("values", values).to(torch_dtype)
    if values.dim() != 1:
        raise ValueError(f"values must be a 1-D tensor, got shape {tuple(values.shape)}")
    total, sums = torch.zeros((), dtype=torch_dtype), []
    for value in values:
        total = total + value
        sums.append(total)
    return torch.stack(sums).float() if sums else torch.zeros(0)


def scale_history(
    found_inf: Sequence[bool],
    init_scale: float = 2.0**16,
    growth_factor: float = 2.0,
    backoff_factor: float = 0.5,
    growth_interval: int = 2000,
) -> list[float]:
    """The scale of a torch.amp.GradScaler before each of len(found_inf) steps, and after the last.

    Each step backpropagates the loss w * c for one weight w, with c = inf where found_inf says the
    step overflows and c = 1 elsewhere, then calls scaler.step and scaler.update as in training.
    The settings and flags are checked as in the NumPy twin (GradScaler itself does not check them).
    """
    DynamicLossScaler(init_scale, growth_factor, backoff_factor, growth_interval)  # raises on bad settings
    found_inf = list(found_inf)
    for index, flag in enumerate(found_inf):
        if not isinstance(flag, bool | np.bool_):
            raise TypeError(f"found_inf[{index}] must be True or False, got {type(flag).__name__}")
    weight = torch.nn.Parameter(torch.ones(()))
    optimizer = torch.optim.SGD([weight], lr=0.0)
    scaler = torch.amp.GradScaler(
        "cpu",
        init_scale=init_scale,
        growth_factor=growth_factor,
        backoff_factor=backoff_factor,
        growth_interval=growth_interval,
    )
    scales = [torch.tensor(init_scale, dtype=torch.float32).item()]  # what the scaler stores
    for flag in found_inf:
        optimizer.zero_grad()
        scaler.scale(weight * (math.inf if flag else 1.0)).backward()
        scaler.step(optimizer)
        scaler.update()
        scales.append(scaler.get_scale())
    return scales
