"""2-D convolution and pooling in NumPy, as pure forward/backward pairs (chapter 3, "Convolutional networks").

Layout NCHW, as in PyTorch: x (N, C, H, W), weight (F, C, KH, KW), bias (F,), out (N, F, H_out, W_out),
float32 or float64. Like `torch.nn.functional.conv2d`, "convolution" here is cross-correlation:

    out[n, f, i, j] = bias[f] + sum_{c, a, b} weight[f, c, a, b] * xp[n, c, i*s + a*d, j*s + b*d]

with xp the input padded by p zeros on each side, s the stride and d the dilation. Along each
spatial axis H_out = floor((H + 2p - d(K - 1) - 1) / s) + 1 (`output_size`).

Three versions of the same computation:
- `conv2d_naive`: the formula above as explicit loops over (n, f, i, j); slow, for reading.
- `conv2d`: im2col. Every receptive field is cut out of xp at once (`sliding_window_view`) and
  laid out as one column of a matrix cols (C*KH*KW, N*H_out*W_out); the convolution becomes a
  single matrix product weight (F, C*KH*KW) @ cols.
- `conv2d_backward`: the gradients of that product. dweight = dout @ cols^T and dbias is a sum; the
  gradient of cols, dcols = weight^T @ dout, is added back to the pixels each column was cut from
  (col2im: KH*KW strided slice-adds; for stride 1, KH*KW long contiguous adds on the flattened
  image). This is the transposed convolution of dout with the weight, i.e. a convolution of the
  dilated, padded dout with the flipped kernel (checked in tests/test_conv.py).

Pooling (`max_pool2d`, `avg_pool2d`) cuts out the same windows and reduces each one; its backward
uses the same col2im. Conventions follow torch: stride defaults to kernel_size, padding is at most
half the kernel, max pooling pads with -inf, average pooling pads with zeros and counts them
(torch's count_include_pad=True, so every window is divided by KH*KW). Ties in max pooling: the
whole gradient of a window goes to its first maximum in row-major order (as torch does on the CPU).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from dlbook._validation import require_float_array, require_int

IntPair = int | tuple[int, int]


# ---- checks and sizes ---------------------------------------------------------------------------


def _pair(name: str, value: object, *, minimum: int) -> tuple[int, int]:
    """An int or an (h, w) pair of ints, each >= minimum, as an (h, w) tuple."""
    if isinstance(value, tuple | list):
        if len(value) != 2:
            raise ValueError(f"{name} must be an int or an (h, w) pair, got {value!r}")
        return tuple(require_int(f"{name}[{axis}]", value[axis], minimum=minimum) for axis in range(2))
    value = require_int(name, value, minimum=minimum)
    return value, value


def output_size(size: int, kernel: int, stride: int = 1, padding: int = 0, dilation: int = 1) -> int:
    """The output length along one spatial axis: floor((size + 2 padding - dilation (kernel - 1) - 1) / stride) + 1.

    Raises ValueError when the (dilated) kernel is larger than the padded input, so no window fits.
    """
    size, kernel = require_int("size", size, minimum=1), require_int("kernel", kernel, minimum=1)
    stride, dilation = require_int("stride", stride, minimum=1), require_int("dilation", dilation, minimum=1)
    padding = require_int("padding", padding, minimum=0)
    span = dilation * (kernel - 1) + 1  # the extent of the dilated kernel
    if span > size + 2 * padding:
        raise ValueError(
            f"the kernel (size {kernel}, dilation {dilation}: it spans {span} pixels) is larger than "
            f"the padded input ({size} + 2 * {padding} = {size + 2 * padding} pixels): no output is possible"
        )
    return (size + 2 * padding - span) // stride + 1


def _check_conv(x, weight, bias, stride, padding, dilation):
    x = require_float_array("x", x, ndim=4)
    weight = require_float_array("weight", weight, ndim=4)
    if x.dtype != weight.dtype:
        raise TypeError(f"x and weight must have the same dtype, got x {x.dtype} and weight {weight.dtype}")
    if x.shape[1] != weight.shape[1]:
        raise ValueError(
            f"x has {x.shape[1]} channels (shape {x.shape}, (N, C, H, W)) but weight expects {weight.shape[1]} "
            f"(shape {weight.shape}, (F, C, KH, KW)): the C of x and weight must match"
        )
    if bias is not None:
        bias = require_float_array("bias", bias, ndim=1)
        if bias.dtype != x.dtype:
            raise TypeError(f"bias must have the dtype of x, got bias {bias.dtype} and x {x.dtype}")
        if bias.shape[0] != weight.shape[0]:
            raise ValueError(f"bias must have one entry per filter: expected ({weight.shape[0]},), got {bias.shape}")
    stride = _pair("stride", stride, minimum=1)
    padding = _pair("padding", padding, minimum=0)
    dilation = _pair("dilation", dilation, minimum=1)
    out_hw = tuple(
        output_size(x.shape[2 + a], weight.shape[2 + a], stride[a], padding[a], dilation[a]) for a in range(2)
    )
    return x, weight, bias, stride, padding, dilation, out_hw


def _pad(x: np.ndarray, padding: tuple[int, int], value: float = 0.0) -> np.ndarray:
    ph, pw = padding
    if ph == pw == 0:
        return x
    return np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=value)  # (N, C, H + 2ph, W + 2pw)


def _windows(xp, kernel, stride, dilation, out_hw):
    """A read-only view (N, C, KH, KW, H_out, W_out) of every receptive field of the padded input xp:
    [n, c, a, b, i, j] = xp[n, c, i*s + a*d, j*s + b*d]."""
    (kh, kw), (sh, sw), (dh, dw), (ho, wo) = kernel, stride, dilation, out_hw
    span = (dh * (kh - 1) + 1, dw * (kw - 1) + 1)
    view = sliding_window_view(xp, span, axis=(2, 3))  # (N, C, Hp - span + 1, Wp - span + 1, spanH, spanW)
    view = view[:, :, : sh * (ho - 1) + 1 : sh, : sw * (wo - 1) + 1 : sw, ::dh, ::dw]  # (N, C, H_out, W_out, KH, KW)
    return view.transpose(0, 1, 4, 5, 2, 3)  # (N, C, KH, KW, H_out, W_out)


def _col2im(dwin, padded_shape, stride, dilation):
    """The adjoint of `_windows`: add each window's gradient (N, C, KH, KW, H_out, W_out) back to the
    pixels it was cut from, by KH*KW strided slice-adds. Returns the gradient of the padded input."""
    _, _, kh, kw, ho, wo = dwin.shape
    (sh, sw), (dh, dw) = stride, dilation
    dxp = np.zeros(padded_shape, dtype=dwin.dtype)
    for a in range(kh):
        for b in range(kw):
            rows = slice(a * dh, a * dh + sh * (ho - 1) + 1, sh)
            cols = slice(b * dw, b * dw + sw * (wo - 1) + 1, sw)
            dxp[:, :, rows, cols] += dwin[:, :, a, b]
    return dxp


def _unpad(dxp: np.ndarray, padding: tuple[int, int]) -> np.ndarray:
    ph, pw = padding
    return dxp[:, :, ph : dxp.shape[2] - ph, pw : dxp.shape[3] - pw]


# ---- convolution --------------------------------------------------------------------------------


def conv2d_naive(
    x: np.ndarray,
    weight: np.ndarray,
    bias: np.ndarray | None = None,
    stride: IntPair = 1,
    padding: IntPair = 0,
    dilation: IntPair = 1,
) -> np.ndarray:
    """The convolution formula as explicit loops, one output pixel at a time (slow; for teaching).

    x: (N, C, H, W), weight: (F, C, KH, KW), bias: (F,) or None, float32 or float64; stride, padding,
    dilation: an int or an (h, w) pair. Returns out: (N, F, H_out, W_out), equal to `conv2d(...)[0]`.
    """
    x, weight, bias, (sh, sw), padding, (dh, dw), (ho, wo) = _check_conv(x, weight, bias, stride, padding, dilation)
    n_batch, n_filters, kh, kw = x.shape[0], weight.shape[0], weight.shape[2], weight.shape[3]
    xp = _pad(x, padding)  # (N, C, H + 2ph, W + 2pw)
    out = np.zeros((n_batch, n_filters, ho, wo), dtype=x.dtype)
    for n in range(n_batch):
        for f in range(n_filters):
            for i in range(ho):
                for j in range(wo):
                    # the receptive field of out[n, f, i, j]: C x KH x KW pixels, d apart
                    field = xp[n, :, i * sh : i * sh + dh * (kh - 1) + 1 : dh, j * sw : j * sw + dw * (kw - 1) + 1 : dw]
                    out[n, f, i, j] = np.sum(field * weight[f])
            if bias is not None:
                out[n, f] += bias[f]
    return out


class Conv2dCache(NamedTuple):
    """What `conv2d_backward` needs from the forward pass."""

    cols: np.ndarray  # (C*KH*KW, N*H_out*W_out): every receptive field as a column
    weight: np.ndarray  # (F, C, KH, KW)
    has_bias: bool
    x_shape: tuple[int, int, int, int]
    stride: tuple[int, int]
    padding: tuple[int, int]
    dilation: tuple[int, int]
    out_shape: tuple[int, int, int, int]


def conv2d(
    x: np.ndarray,
    weight: np.ndarray,
    bias: np.ndarray | None = None,
    stride: IntPair = 1,
    padding: IntPair = 0,
    dilation: IntPair = 1,
) -> tuple[np.ndarray, Conv2dCache]:
    """2-D convolution (cross-correlation, as `torch.nn.functional.conv2d`) by im2col and one matrix product.

    x: (N, C, H, W), weight: (F, C, KH, KW), bias: (F,) or None, all float32 or all float64;
    stride, padding, dilation: an int or an (h, w) pair.
    Returns out: (N, F, H_out, W_out) and the cache for `conv2d_backward`.
    """
    x, weight, bias, stride, padding, dilation, (ho, wo) = _check_conv(x, weight, bias, stride, padding, dilation)
    n_batch, n_filters, kh, kw = x.shape[0], weight.shape[0], weight.shape[2], weight.shape[3]
    windows = _windows(_pad(x, padding), (kh, kw), stride, dilation, (ho, wo))  # (N, C, KH, KW, H_out, W_out)
    cols = windows.transpose(1, 2, 3, 0, 4, 5).reshape(-1, n_batch * ho * wo)  # (C*KH*KW, N*H_out*W_out), a copy
    out = weight.reshape(n_filters, -1) @ cols  # (F, C*KH*KW) @ (C*KH*KW, N*H_out*W_out) -> (F, N*H_out*W_out)
    if bias is not None:
        out += bias[:, None]
    out = np.ascontiguousarray(out.reshape(n_filters, n_batch, ho, wo).transpose(1, 0, 2, 3))  # (N, F, H_out, W_out)
    cache = Conv2dCache(cols, weight, bias is not None, x.shape, stride, padding, dilation, out.shape)
    return out, cache


def conv2d_backward(dout: np.ndarray, cache: Conv2dCache) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """The gradients of `conv2d`: dout (N, F, H_out, W_out) -> dx (N, C, H, W), dweight (F, C, KH, KW),
    dbias (F,) or None when the forward had no bias. dout is not modified."""
    dout = require_float_array("dout", dout, ndim=4)
    if dout.shape != cache.out_shape:
        raise ValueError(f"dout must have the shape of the forward output {cache.out_shape}, got {dout.shape}")
    weight = cache.weight
    n_batch, channels, height, width = cache.x_shape
    n_filters, _, kh, kw = weight.shape
    _, _, ho, wo = dout.shape
    dout_mat = dout.transpose(1, 0, 2, 3).reshape(n_filters, -1)  # (F, N*H_out*W_out), a copy
    dweight = (dout_mat @ cache.cols.T).reshape(weight.shape)  # (F, C*KH*KW) -> (F, C, KH, KW)
    dbias = dout_mat.sum(axis=1) if cache.has_bias else None  # (F,)
    ph, pw = cache.padding
    padded_shape = (n_batch, channels, height + 2 * ph, width + 2 * pw)
    if cache.stride == (1, 1):
        dxp = _input_grad_stride1(dout, weight, padded_shape, cache.dilation)
    else:
        dcols = weight.reshape(n_filters, -1).T @ dout_mat  # (C*KH*KW, N*H_out*W_out)
        dwin = dcols.reshape(channels, kh, kw, n_batch, ho, wo).transpose(
            3, 0, 1, 2, 4, 5
        )  # (N, C, KH, KW, H_out, W_out)
        dxp = _col2im(dwin, padded_shape, cache.stride, cache.dilation)
    return np.ascontiguousarray(_unpad(dxp, cache.padding)), dweight, dbias


def _input_grad_stride1(dout, weight, padded_shape, dilation):
    """The gradient of the padded input for stride 1: the sums of `_col2im(weight^T @ dout)`, in fewer, longer adds.

    With stride 1, the window shift (a*dh, b*dw) is a shift of a*dh*Wp + b*dw in the flattened padded
    image. Widen dout to Wp columns with zeros on the right, and each of the KH*KW slice-adds becomes
    one contiguous run of H_out*Wp numbers per (c, n) instead of H_out rows of W_out; the zero columns
    that spill past a row's end add nothing.
    """
    n_batch, channels, hp, wp = padded_shape
    n_filters, _, kh, kw = weight.shape
    _, _, ho, wo = dout.shape
    dh, dw = dilation
    wide = np.zeros((n_filters, n_batch, ho, wp), dtype=dout.dtype)  # (F, N, H_out, Wp)
    wide[..., :wo] = dout.transpose(1, 0, 2, 3)
    dcols = weight.reshape(n_filters, -1).T @ wide.reshape(n_filters, -1)  # (C*KH*KW, N*H_out*Wp)
    dcols = dcols.reshape(channels, kh, kw, n_batch, ho * wp)  # (C, KH, KW, N, H_out*Wp)
    flat = np.zeros((channels, n_batch, hp * wp + (kw - 1) * dw), dtype=dcols.dtype)  # room for the last spill
    for a in range(kh):
        for b in range(kw):
            start = a * dh * wp + b * dw
            flat[:, :, start : start + ho * wp] += dcols[:, a, b]
    return flat[:, :, : hp * wp].reshape(channels, n_batch, hp, wp).transpose(1, 0, 2, 3)  # (N, C, Hp, Wp)


# ---- pooling ------------------------------------------------------------------------------------


class Pool2dCache(NamedTuple):
    """What the pooling backward passes need from the forward pass."""

    argmax: np.ndarray | None  # (N, C, H_out, W_out): the winning position in each window (max pooling)
    x_shape: tuple[int, int, int, int]
    kernel: tuple[int, int]
    stride: tuple[int, int]
    padding: tuple[int, int]
    out_shape: tuple[int, int, int, int]


def _check_pool(x, kernel_size, stride, padding):
    x = require_float_array("x", x, ndim=4)
    kernel = _pair("kernel_size", kernel_size, minimum=1)
    stride = kernel if stride is None else _pair("stride", stride, minimum=1)
    padding = _pair("padding", padding, minimum=0)
    for axis in range(2):
        if 2 * padding[axis] > kernel[axis]:
            raise ValueError(f"padding must be at most half of kernel_size, got padding {padding} and kernel {kernel}")
    out_hw = tuple(output_size(x.shape[2 + a], kernel[a], stride[a], padding[a]) for a in range(2))
    return x, kernel, stride, padding, out_hw


def max_pool2d(
    x: np.ndarray, kernel_size: IntPair, stride: IntPair | None = None, padding: IntPair = 0
) -> tuple[np.ndarray, Pool2dCache]:
    """The maximum of every KH x KW window.  x: (N, C, H, W) float -> out: (N, C, H_out, W_out), cache.

    stride defaults to kernel_size; padding (at most half the kernel) adds -inf, which never wins.
    """
    x, kernel, stride, padding, out_hw = _check_pool(x, kernel_size, stride, padding)
    windows = _windows(_pad(x, padding, -np.inf), kernel, stride, (1, 1), out_hw)  # (N, C, KH, KW, H_out, W_out)
    flat = windows.reshape(x.shape[0], x.shape[1], -1, *out_hw)  # (N, C, KH*KW, H_out, W_out)
    argmax = flat.argmax(axis=2)  # (N, C, H_out, W_out): the first maximum in row-major order
    out = np.take_along_axis(flat, argmax[:, :, None], axis=2)[:, :, 0]  # (N, C, H_out, W_out)
    return out, Pool2dCache(argmax, x.shape, kernel, stride, padding, out.shape)


def max_pool2d_backward(dout: np.ndarray, cache: Pool2dCache) -> np.ndarray:
    """dout (N, C, H_out, W_out) -> dx (N, C, H, W): each window's gradient goes to its maximum."""
    dout = _check_pool_dout(dout, cache)
    kh, kw = cache.kernel
    one_hot = cache.argmax[:, :, None] == np.arange(kh * kw)[:, None, None]  # (N, C, KH*KW, H_out, W_out)
    dwin = (dout[:, :, None] * one_hot).reshape(
        *dout.shape[:2], kh, kw, *dout.shape[2:]
    )  # (N, C, KH, KW, H_out, W_out)
    return _pool_col2im(dwin, cache)


def avg_pool2d(
    x: np.ndarray, kernel_size: IntPair, stride: IntPair | None = None, padding: IntPair = 0
) -> tuple[np.ndarray, Pool2dCache]:
    """The mean of every KH x KW window.  x: (N, C, H, W) float -> out: (N, C, H_out, W_out), cache.

    stride defaults to kernel_size; padding (at most half the kernel) adds zeros that count in the
    mean (torch's count_include_pad=True): every window is divided by KH*KW.
    """
    x, kernel, stride, padding, out_hw = _check_pool(x, kernel_size, stride, padding)
    windows = _windows(_pad(x, padding), kernel, stride, (1, 1), out_hw)  # (N, C, KH, KW, H_out, W_out)
    out = windows.mean(axis=(2, 3))  # (N, C, H_out, W_out)
    return out, Pool2dCache(None, x.shape, kernel, stride, padding, out.shape)


def avg_pool2d_backward(dout: np.ndarray, cache: Pool2dCache) -> np.ndarray:
    """dout (N, C, H_out, W_out) -> dx (N, C, H, W): each window's gradient is shared equally by its KH*KW pixels."""
    dout = _check_pool_dout(dout, cache)
    kh, kw = cache.kernel
    share = (dout / (kh * kw))[:, :, None, None]  # (N, C, 1, 1, H_out, W_out)
    dwin = np.broadcast_to(share, (*dout.shape[:2], kh, kw, *dout.shape[2:]))  # (N, C, KH, KW, H_out, W_out)
    return _pool_col2im(dwin, cache)


def _check_pool_dout(dout: np.ndarray, cache: Pool2dCache) -> np.ndarray:
    dout = require_float_array("dout", dout, ndim=4)
    if dout.shape != cache.out_shape:
        raise ValueError(f"dout must have the shape of the forward output {cache.out_shape}, got {dout.shape}")
    return dout


def _pool_col2im(dwin: np.ndarray, cache: Pool2dCache) -> np.ndarray:
    n_batch, channels, height, width = cache.x_shape
    ph, pw = cache.padding
    dxp = _col2im(dwin, (n_batch, channels, height + 2 * ph, width + 2 * pw), cache.stride, (1, 1))
    return _unpad(dxp, cache.padding)
