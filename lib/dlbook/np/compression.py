"""Model compression in NumPy: quantization, magnitude pruning and knowledge distillation (chapter
"The challenges of scaling").

Quantization (Jacob et al. 2018) maps floats to integers with a scale s and a zero point z:

    q = clip(round(x / s) + z, qmin, qmax),        x ~ (q - z) s   (dequantized)

- symmetric: z = 0 and s = max|x| / qmax, codes in the *restricted* range [-(2^(b-1) - 1), 2^(b-1) - 1]
  (-127..127 at 8 bits, -7..7 at 4 bits): the grid is symmetric about 0 and -max|x| and +max|x| are both
  on it; the code -2^(b-1) is never used.
- asymmetric (affine): codes in [0, 2^b - 1], s = (max - min) / (2^b - 1) over the range [min, max]
  widened to include 0, and z = round(-min / s), so that 0.0 is exactly representable (a zero weight or a
  zero padding stays exactly zero).
- per tensor (axis=None): one (s, z) for the whole array; per channel (axis=k): one (s, z) for every
  index along axis k, computed over all the other axes (axis=0 is the output channel of a torch Linear
  or Conv weight).

Rounding is to the nearest integer, ties to even (np.rint), and the division is a multiplication by the
reciprocal 1/s computed in the dtype of x, as in PyTorch's kernels: in float32, `quantize` then
`dequantize` equal torch.fake_quantize_per_tensor_affine / fake_quantize_per_channel_affine bit for bit
given the same (s, z), at any number of bits, and the codes equal torch.quantize_per_tensor /
quantize_per_channel (qint8) for symmetric quantization. (torch.quantize_per_tensor to quint8 adds z
*before* rounding, which differs from round(x / s) + z only where x / s lies within a rounding error of
a half-integer.) A channel whose values are all 0 gets s = 1 instead of 0: no division by zero, and its
codes are all z.

Codes are stored in the smallest integer type that holds them: int8 (symmetric) or uint8
(asymmetric) up to 8 bits, int16 or int32 above. Fewer than 8 bits still take a byte each here; real
4-bit formats pack two codes per byte.

Pruning (Han et al. 2015) keeps the weights of largest magnitude: `magnitude_prune` returns a boolean
mask (True = kept), unstructured (the round(sparsity * n) entries of smallest |w| are removed, as
torch.nn.utils.prune.l1_unstructured) or structured (the round(sparsity * C) channels along `axis` of
smallest L2 norm are removed whole, as torch.nn.utils.prune.ln_structured with n=2; Li et al. 2017).
`global_magnitude_prune` ranks the entries of several arrays together (torch's global_unstructured).

Knowledge distillation (Hinton et al. 2015): the student matches the teacher's probabilities softened
by a temperature T, plus the ordinary loss on the labels,

    loss = alpha T^2 KL(softmax(teacher / T) || softmax(student / T)) + (1 - alpha) CE(student, targets),

averaged over the batch. The gradient of the first term with respect to the student's logits is
alpha T (softmax(student / T) - softmax(teacher / T)) per example: the factor T^2 keeps its size
comparable to the label term's as T changes.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from dlbook._validation import require_bool, require_float_array, require_in_unit_interval, require_int, require_real

__all__ = [
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

MIN_BITS, MAX_BITS = 2, 16


def _require_bits(bits: object) -> int:
    bits = require_int("bits", bits, minimum=0)
    if not MIN_BITS <= bits <= MAX_BITS:
        raise ValueError(f"bits must lie in [{MIN_BITS}, {MAX_BITS}], got {bits}")
    return bits


def _require_axis(axis: object, ndim: int) -> int:
    if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)):
        raise TypeError(f"axis must be an integer or None, got {type(axis).__name__} {axis!r}")
    if not -ndim <= axis < ndim:
        raise ValueError(f"axis must lie in [{-ndim}, {ndim}) for an array of {ndim} dimension(s), got {axis}")
    return int(axis) % ndim


def code_range(bits: int, symmetric: bool) -> tuple[int, int]:
    """(qmin, qmax): (-(2^(bits-1) - 1), 2^(bits-1) - 1) when symmetric, (0, 2^bits - 1) otherwise."""
    bits, symmetric = _require_bits(bits), require_bool("symmetric", symmetric)
    if symmetric:
        return -(2 ** (bits - 1) - 1), 2 ** (bits - 1) - 1
    return 0, 2**bits - 1


def code_dtype(bits: int, symmetric: bool) -> np.dtype:
    """The integer dtype of the codes: int8 / uint8 up to 8 bits, int16 / int32 above."""
    bits, symmetric = _require_bits(bits), require_bool("symmetric", symmetric)
    if bits <= 8:
        return np.dtype(np.int8 if symmetric else np.uint8)
    return np.dtype(np.int16 if symmetric else np.int32)


def _along(values: np.ndarray, axis: int | None, ndim: int) -> np.ndarray:
    """(C,) per-channel values reshaped to broadcast against an ndim array along axis (0-d: as they are)."""
    if axis is None:
        return values
    shape = [1] * ndim
    shape[axis] = -1
    return values.reshape(shape)


def quantize(
    x: np.ndarray, bits: int, symmetric: bool = True, axis: int | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(codes, scale, zero_point) of x: codes of x's shape in `code_dtype(bits, symmetric)`; scale (x's
    dtype) and zero_point (int64) 0-d for axis=None, else of shape (x.shape[axis],)."""
    x = require_float_array("x", x)
    bits, symmetric = _require_bits(bits), require_bool("symmetric", symmetric)
    if axis is not None:
        if x.ndim == 0:
            raise ValueError("per-channel quantization (axis given) needs an array of at least 1 dimension, got 0-d")
        axis = _require_axis(axis, x.ndim)
    if x.size == 0:
        raise ValueError(f"x must hold at least one number, got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise ValueError("x must be finite: NaN or infinity has no integer code")
    qmin, qmax = code_range(bits, symmetric)
    reduce = None if axis is None else tuple(a for a in range(x.ndim) if a != axis)
    if symmetric:
        span = np.abs(x).max(axis=reduce)
        scale = span / x.dtype.type(qmax)
    else:
        low = np.minimum(x.min(axis=reduce), 0)  # the range always contains 0, so 0 has an exact code
        high = np.maximum(x.max(axis=reduce), 0)
        span = high - low
        scale = span / x.dtype.type(qmax - qmin)
    scale = np.where(span > 0, scale, x.dtype.type(1)).astype(x.dtype)  # an all-zero channel: any scale works
    if symmetric:
        zero_point = np.zeros(scale.shape, dtype=np.int64)
    else:
        zero_point = np.clip(qmin - np.rint(low / scale), qmin, qmax).astype(np.int64)
    inverse = (x.dtype.type(1) / scale).astype(x.dtype)
    rounded = np.rint(x * _along(inverse, axis, x.ndim))
    codes = np.clip(rounded + _along(zero_point, axis, x.ndim), qmin, qmax)
    return codes.astype(code_dtype(bits, symmetric)), scale, zero_point


def dequantize(codes: np.ndarray, scale: np.ndarray, zero_point: np.ndarray, axis: int | None = None) -> np.ndarray:
    """(codes - zero_point) * scale, in scale's dtype; per channel along `axis` when scale is (C,)."""
    codes, scale, zero_point = np.asarray(codes), np.asarray(scale), np.asarray(zero_point)
    if not np.issubdtype(codes.dtype, np.integer):
        raise TypeError(f"codes must be integers, got dtype {codes.dtype}")
    scale = require_float_array("scale", scale)
    if axis is not None:
        axis = _require_axis(axis, codes.ndim)
    expected = () if axis is None else (codes.shape[axis],)
    if scale.shape != expected or zero_point.shape != expected:
        raise ValueError(
            f"scale and zero_point must have shape {expected} for codes of shape {codes.shape} and axis={axis}, "
            f"got {scale.shape} and {zero_point.shape}"
        )
    shifted = codes.astype(np.int64) - _along(zero_point.astype(np.int64), axis, codes.ndim)
    return shifted.astype(scale.dtype) * _along(scale, axis, codes.ndim)


def fake_quantize(x: np.ndarray, bits: int, symmetric: bool = True, axis: int | None = None) -> np.ndarray:
    """dequantize(quantize(x)): x rounded to its quantization grid, as floats of x's shape and dtype."""
    return dequantize(*quantize(x, bits, symmetric, axis), axis=axis)


def fake_quantize_weights(
    params: Mapping[str, np.ndarray], bits: int, symmetric: bool = True, per_channel: bool = True
) -> dict[str, np.ndarray]:
    """Post-training, weight-only quantization of a model: every array of 2 or more dimensions (the weight
    matrices and convolution kernels) replaced by its fake-quantized copy, per output channel (axis 0)
    or per tensor; 1-d arrays (biases, norms' scales) are kept in float, as is usual. Returns a new dict."""
    axis = 0 if require_bool("per_channel", per_channel) else None
    return {
        name: fake_quantize(value, bits, symmetric, axis) if np.ndim(value) >= 2 else np.array(value, copy=True)
        for name, value in params.items()
    }


# ---- pruning --------------------------------------------------------------------------------------------


def _smallest(values: np.ndarray, count: int) -> np.ndarray:
    """A boolean mask of values' shape, False at the `count` smallest entries (ties: the first ones)."""
    keep = np.ones(values.size, dtype=bool)
    keep[np.argsort(values, axis=None, kind="stable")[:count]] = False
    return keep.reshape(values.shape)


def magnitude_prune(weights: np.ndarray, sparsity: float, structured: bool = False, axis: int = 0) -> np.ndarray:
    """The mask (True = kept, weights' shape) that removes a fraction `sparsity` of the weights.

    Unstructured: the round(sparsity * weights.size) entries of smallest |w|. Structured: the
    round(sparsity * C) slices along `axis` (C = weights.shape[axis]; axis 0 = output channels) of smallest
    L2 norm, whole. round is Python's (halves to even), as in torch.nn.utils.prune.
    """
    weights = require_float_array("weights", weights)
    sparsity = require_in_unit_interval("sparsity", sparsity)
    if require_bool("structured", structured):
        if weights.ndim < 2:
            raise ValueError(
                "structured pruning removes whole slices: it needs at least 2 dimensions, "
                f"got shape {tuple(weights.shape)}"
            )
        axis = _require_axis(axis, weights.ndim)
        norms = np.sqrt(
            np.sum(weights.astype(np.float64) ** 2, axis=tuple(a for a in range(weights.ndim) if a != axis))
        )
        keep = _smallest(norms, round(sparsity * len(norms)))
        return np.broadcast_to(_along(keep, axis, weights.ndim), weights.shape).copy()
    _require_axis(axis, max(weights.ndim, 1))
    return _smallest(np.abs(weights), round(sparsity * weights.size))


def global_magnitude_prune(weights: Mapping[str, np.ndarray], sparsity: float) -> dict[str, np.ndarray]:
    """Masks (True = kept) that remove the round(sparsity * n) entries of smallest |w| among all the arrays
    together (n entries in all), as torch.nn.utils.prune.global_unstructured with L1Unstructured: a layer
    of small weights loses more than a layer of large ones."""
    if not isinstance(weights, Mapping) or len(weights) == 0:
        raise TypeError(f"weights must be a non-empty dict of arrays, got {type(weights).__name__}")
    arrays = {name: require_float_array(f"weights[{name!r}]", value) for name, value in weights.items()}
    sparsity = require_in_unit_interval("sparsity", sparsity)
    flat = np.concatenate([np.abs(value).ravel().astype(np.float64) for value in arrays.values()])
    keep = _smallest(flat, round(sparsity * flat.size))
    masks, start = {}, 0
    for name, value in arrays.items():
        masks[name] = keep[start : start + value.size].reshape(value.shape)
        start += value.size
    return masks


# ---- distillation ---------------------------------------------------------------------------------------


def _log_softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=1, keepdims=True)  # exp never overflows
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


def distillation_loss(
    student_logits: np.ndarray,
    teacher_logits: np.ndarray,
    targets: np.ndarray,
    temperature: float,
    alpha: float,
) -> tuple[float, np.ndarray]:
    """Hinton et al.'s loss on (N, K) logits and (N,) integer targets, and its gradient (N, K) with respect
    to the student's logits (the teacher's are constants):

        alpha T^2 KL(softmax(t / T) || softmax(s / T)) + (1 - alpha) CE(s, targets), averaged over N;
        gradient: (alpha T (softmax(s / T) - softmax(t / T)) + (1 - alpha) (softmax(s) - one_hot)) / N.
    """
    student = require_float_array("student_logits", student_logits, ndim=2)
    teacher = require_float_array("teacher_logits", teacher_logits, ndim=2)
    if teacher.shape != student.shape:
        raise ValueError(f"teacher_logits must have the student's shape {student.shape}, got {teacher.shape}")
    if student.shape[0] == 0:
        raise ValueError("the batch must hold at least one example, got N = 0")
    targets = np.asarray(targets)
    if targets.shape != student.shape[:1] or not np.issubdtype(targets.dtype, np.integer):
        raise ValueError(
            f"targets must be {student.shape[0]} integer classes, shape ({student.shape[0]},), "
            f"got shape {targets.shape} of dtype {targets.dtype}"
        )
    if targets.min() < 0 or targets.max() >= student.shape[1]:
        raise ValueError(
            f"targets must lie in [0, {student.shape[1]}), got values from {targets.min()} to {targets.max()}"
        )
    temperature = require_real("temperature", temperature)
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    alpha = require_in_unit_interval("alpha", alpha, include_one=True)
    n, rows = student.shape[0], np.arange(student.shape[0])
    log_q = _log_softmax(student / temperature)  # the student's softened log-probabilities
    log_p = _log_softmax(teacher / temperature)  # the teacher's
    p = np.exp(log_p)
    soft = float(np.sum(p * (log_p - log_q)) / n) * temperature**2
    log_probs = _log_softmax(student)
    hard = -float(log_probs[rows, targets].mean())
    dhard = np.exp(log_probs)
    dhard[rows, targets] -= 1
    grad = (alpha * temperature * (np.exp(log_q) - p) + (1 - alpha) * dhard) / n
    return alpha * soft + (1 - alpha) * hard, grad.astype(student.dtype)
