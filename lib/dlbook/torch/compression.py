"""PyTorch twin of `dlbook.np.compression`: the same names, signatures and numbers, in torch operations.

Quantization and pruning are written out in torch operations (torch.round rounds halves to even, like
np.rint), so that the tests can hold both twins against PyTorch's own kernels
(torch.fake_quantize_per_tensor_affine, torch.quantize_per_channel, torch.nn.utils.prune). The
distillation loss is built from torch.nn.functional.kl_div and cross_entropy, and autograd gives its
gradient; the NumPy twin returns (loss, gradient) instead of a tensor to call .backward() on.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn.functional as F  # noqa: N812 (torch's own spelling)

from dlbook._validation import require_bool, require_in_unit_interval, require_real
from dlbook.np.compression import MAX_BITS, MIN_BITS, _require_axis, _require_bits, code_range

__all__ = [
    "MAX_BITS",
    "MIN_BITS",
    "code_dtype",
    "code_range",
    "dequantize",
    "distillation_loss",
    "fake_quantize",
    "fake_quantize_weights",
    "global_magnitude_prune",
    "magnitude_prune",
    "quantize",
]


def _require_float_tensor(name: str, value: object) -> torch.Tensor:
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(value).__name__}")
    if not value.is_floating_point():
        raise TypeError(f"{name} must have a floating dtype (float32 or float64), got dtype {value.dtype}")
    return value


def code_dtype(bits: int, symmetric: bool) -> torch.dtype:
    """The integer dtype of the codes: int8 / uint8 up to 8 bits, int16 / int32 above."""
    bits, symmetric = _require_bits(bits), require_bool("symmetric", symmetric)
    if bits <= 8:
        return torch.int8 if symmetric else torch.uint8
    return torch.int16 if symmetric else torch.int32


def _along(values: torch.Tensor, axis: int | None, ndim: int) -> torch.Tensor:
    if axis is None:
        return values
    shape = [1] * ndim
    shape[axis] = -1
    return values.reshape(shape)


def quantize(
    x: torch.Tensor, bits: int, symmetric: bool = True, axis: int | None = None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(codes, scale, zero_point) of x: codes of x's shape in `code_dtype(bits, symmetric)`; scale (x's
    dtype) and zero_point (int64) 0-d for axis=None, else of shape (x.shape[axis],)."""
    x = _require_float_tensor("x", x).detach()
    bits, symmetric = _require_bits(bits), require_bool("symmetric", symmetric)
    if axis is not None:
        if x.ndim == 0:
            raise ValueError("per-channel quantization (axis given) needs an array of at least 1 dimension, got 0-d")
        axis = _require_axis(axis, x.ndim)
    if x.numel() == 0:
        raise ValueError(f"x must hold at least one number, got shape {tuple(x.shape)}")
    if not torch.isfinite(x).all():
        raise ValueError("x must be finite: NaN or infinity has no integer code")
    qmin, qmax = code_range(bits, symmetric)
    reduce = list(range(x.ndim)) if axis is None else [a for a in range(x.ndim) if a != axis]
    if symmetric:
        span = x.abs().amax(dim=reduce) if x.ndim else x.abs()
        scale = span / qmax
    else:
        low = torch.clamp(x.amin(dim=reduce) if x.ndim else x, max=0)  # the range always contains 0
        high = torch.clamp(x.amax(dim=reduce) if x.ndim else x, min=0)
        span = high - low
        scale = span / (qmax - qmin)
    scale = torch.where(span > 0, scale, torch.ones_like(scale))  # an all-zero channel: any scale works
    if symmetric:
        zero_point = torch.zeros(scale.shape, dtype=torch.int64)
    else:
        zero_point = torch.clamp(qmin - torch.round(low / scale), qmin, qmax).to(torch.int64)
    inverse = 1 / scale
    rounded = torch.round(x * _along(inverse, axis, x.ndim))
    codes = torch.clamp(rounded + _along(zero_point, axis, x.ndim), qmin, qmax)
    return codes.to(code_dtype(bits, symmetric)), scale, zero_point


def dequantize(
    codes: torch.Tensor, scale: torch.Tensor, zero_point: torch.Tensor, axis: int | None = None
) -> torch.Tensor:
    """(codes - zero_point) * scale, in scale's dtype; per channel along `axis` when scale is (C,)."""
    if not isinstance(codes, torch.Tensor) or codes.is_floating_point() or codes.is_complex():
        raise TypeError(f"codes must be an integer torch.Tensor, got {getattr(codes, 'dtype', type(codes).__name__)}")
    scale = _require_float_tensor("scale", scale)
    if axis is not None:
        axis = _require_axis(axis, codes.ndim)
    expected = () if axis is None else (codes.shape[axis],)
    if tuple(scale.shape) != expected or tuple(zero_point.shape) != expected:
        raise ValueError(
            f"scale and zero_point must have shape {expected} for codes of shape {tuple(codes.shape)} and "
            f"axis={axis}, got {tuple(scale.shape)} and {tuple(zero_point.shape)}"
        )
    shifted = codes.to(torch.int64) - _along(zero_point.to(torch.int64), axis, codes.ndim)
    return shifted.to(scale.dtype) * _along(scale, axis, codes.ndim)


def fake_quantize(x: torch.Tensor, bits: int, symmetric: bool = True, axis: int | None = None) -> torch.Tensor:
    """dequantize(quantize(x)): x rounded to its quantization grid, as floats of x's shape and dtype."""
    return dequantize(*quantize(x, bits, symmetric, axis), axis=axis)


def fake_quantize_weights(
    params: Mapping[str, torch.Tensor], bits: int, symmetric: bool = True, per_channel: bool = True
) -> dict[str, torch.Tensor]:
    """Every tensor of 2 or more dimensions of params (a state_dict) fake-quantized, per output channel
    (axis 0) or per tensor; 1-d tensors (biases) copied unchanged. Load the result with
    model.load_state_dict."""
    axis = 0 if require_bool("per_channel", per_channel) else None
    return {
        name: fake_quantize(value, bits, symmetric, axis) if value.ndim >= 2 else value.detach().clone()
        for name, value in params.items()
    }


def _smallest(values: torch.Tensor, count: int) -> torch.Tensor:
    keep = torch.ones(values.numel(), dtype=torch.bool)
    keep[torch.argsort(values.reshape(-1), stable=True)[:count]] = False
    return keep.reshape(values.shape)


def magnitude_prune(weights: torch.Tensor, sparsity: float, structured: bool = False, axis: int = 0) -> torch.Tensor:
    """The boolean mask (True = kept, weights' shape) that removes a fraction `sparsity` of the weights:
    the entries of smallest |w|, or (structured) the slices along `axis` of smallest L2 norm."""
    weights = _require_float_tensor("weights", weights).detach()
    sparsity = require_in_unit_interval("sparsity", sparsity)
    if require_bool("structured", structured):
        if weights.ndim < 2:
            raise ValueError(
                "structured pruning removes whole slices: it needs at least 2 dimensions, "
                f"got shape {tuple(weights.shape)}"
            )
        axis = _require_axis(axis, weights.ndim)
        others = [a for a in range(weights.ndim) if a != axis]
        norms = weights.to(torch.float64).square().sum(dim=others).sqrt()
        keep = _smallest(norms, round(sparsity * len(norms)))
        return _along(keep, axis, weights.ndim).expand(weights.shape).clone()
    _require_axis(axis, max(weights.ndim, 1))
    return _smallest(weights.abs(), round(sparsity * weights.numel()))


def global_magnitude_prune(weights: Mapping[str, torch.Tensor], sparsity: float) -> dict[str, torch.Tensor]:
    """Masks (True = kept) removing the round(sparsity * n) entries of smallest |w| among all the tensors."""
    if not isinstance(weights, Mapping) or len(weights) == 0:
        raise TypeError(f"weights must be a non-empty dict of tensors, got {type(weights).__name__}")
    tensors = {name: _require_float_tensor(f"weights[{name!r}]", value).detach() for name, value in weights.items()}
    sparsity = require_in_unit_interval("sparsity", sparsity)
    flat = torch.cat([value.abs().reshape(-1).to(torch.float64) for value in tensors.values()])
    keep = _smallest(flat, round(sparsity * flat.numel()))
    masks, start = {}, 0
    for name, value in tensors.items():
        masks[name] = keep[start : start + value.numel()].reshape(value.shape)
        start += value.numel()
    return masks


def distillation_loss(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    targets: torch.Tensor,
    temperature: float,
    alpha: float,
) -> torch.Tensor:
    """alpha T^2 KL(softmax(t / T) || softmax(s / T)) + (1 - alpha) CE(s, targets), averaged over the batch;
    the teacher's logits are detached (no gradient flows into the teacher)."""
    student = _require_float_tensor("student_logits", student_logits)
    teacher = _require_float_tensor("teacher_logits", teacher_logits).detach()
    if student.ndim != 2 or teacher.shape != student.shape:
        raise ValueError(
            f"student_logits and teacher_logits must both have shape (N, K), got {tuple(student.shape)} and "
            f"{tuple(teacher.shape)}"
        )
    if student.shape[0] == 0:
        raise ValueError("the batch must hold at least one example, got N = 0")
    targets = torch.as_tensor(targets)
    if tuple(targets.shape) != (student.shape[0],) or targets.is_floating_point():
        raise ValueError(
            f"targets must be {student.shape[0]} integer classes, shape ({student.shape[0]},), "
            f"got shape {tuple(targets.shape)} of dtype {targets.dtype}"
        )
    if targets.min() < 0 or targets.max() >= student.shape[1]:
        raise ValueError(
            f"targets must lie in [0, {student.shape[1]}), got values from {targets.min()} to {targets.max()}"
        )
    temperature = require_real("temperature", temperature)
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    alpha = require_in_unit_interval("alpha", alpha, include_one=True)
    soft = F.kl_div(
        F.log_softmax(student / temperature, dim=1),
        F.log_softmax(teacher / temperature, dim=1),
        reduction="batchmean",
        log_target=True,
    )
    hard = F.cross_entropy(student, targets.long())
    return alpha * temperature**2 * soft + (1 - alpha) * hard
