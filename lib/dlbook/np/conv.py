"""2-D convolution and pooling in NumPy, as pure forward/backward pairs (chapter 3, "Convolutional networks").

Layout NCHW, as in PyTorch: x (N, C, H, W), weight (F, C, KH, KW), bias (F,), out (N, F, H_out, W_out),
float32 or float64. Like `torch.nn.functional.conv2d`, "convolution" here is cross-correlation:

    out[n, f, i, j] = bias[f] + sum_{c, a, b} weight[f, c, a, b] * xp[n, c, i*s + a*d, j*s + b*d]

with xp the input padded by p zeros on each side, s the stride and d the dilation. Along each
spatial axis H_out = floor((H + 2p - d(K - 1) - 1) / s) + 1 (`output_size`).

Three versions of the same computation:
- `conv2d_naive`: the formula above as explicit loops over (n, f, i, j); slow, for reading.
- `conv2d`: im2col. Every receptive field is cut out of xp at once (`sliding_window_view`) and laid
  out as one row of a matrix cols (N*H_out*W_out, KH*KW*C); the convolution becomes a single matrix
  product cols @ weight_matrix, with weight_matrix (KH*KW*C, F). The image is made channels-last
  first, so that this copy and the product's result are both in memory order.
- `conv2d_backward`: the gradients of that product. dweight = cols^T @ dout and dbias is a sum. For
  stride 1, dx is itself a convolution: dout, padded, convolved with the spatially flipped kernel
  whose two channel axes are swapped. For larger strides, the gradient of each receptive field,
  dout @ weight_matrix^T, is added back to the pixels it was cut from (col2im: KH*KW strided
  slice-adds). Both routes are the transposed convolution, checked against torch in tests/test_conv.py.

Pooling (`max_pool2d`, `avg_pool2d`) cuts out the same windows and reduces each one; its backward
uses the same col2im. Conventions follow torch: stride defaults to kernel_size, padding is at most
half the kernel, max pooling pads with -inf, average pooling pads with zeros and counts them
(torch's count_include_pad=True, so every window is divided by KH*KW). Ties in max pooling: the
whole gradient of a window goes to its first maximum in row-major order (as torch does on the CPU).
"""

from __future__ import annotations

from collections.abc import Sequence
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


def receptive_field(layers: Sequence[tuple[int, int, int]]) -> int:
    """The receptive field: the span of input pixels, along one axis, that can influence one output of
    a stack of layers (a stride larger than the kernel leaves gaps inside the span).

    layers: (kernel, stride, dilation) of each convolution or pooling layer, input side first.
    A layer widens the field by d(K - 1) steps of its input, and a step of layer l's input is the
    product of the strides before it in input pixels: r = 1 + sum_l d_l (K_l - 1) prod_{m<l} s_m.
    """
    field, jump = 1, 1  # jump: input pixels between neighbouring positions of the current layer
    for index, layer in enumerate(layers):
        if not isinstance(layer, tuple | list) or len(layer) != 3:
            raise ValueError(f"layers[{index}] must be a (kernel, stride, dilation) triple, got {layer!r}")
        kernel, stride, dilation = (require_int(f"layers[{index}][{k}]", layer[k], minimum=1) for k in range(3))
        field += dilation * (kernel - 1) * jump
        jump *= stride
    return field


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
    """A read-only view (N, C, KH, KW, H_out, W_out) of every pooling window of the padded input xp (N, C, Hp, Wp):
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


# ---- the fast convolution: channels-last im2col and one matrix product --------------------------
# Inside the fast path images are channels-last, (N, H, W, C): a receptive field is then KH*KW runs of
# C contiguous numbers, so cutting out all of them (im2col) is one cache-friendly copy, and the
# matrix product's result is already (pixels, filters).


def _padded_channels_last(x: np.ndarray, padding: tuple[int, int]) -> np.ndarray:
    """x (N, C, H, W) -> the zero-padded image channels-last, (N, H + 2ph, W + 2pw, C), in one copy."""
    (n_batch, channels, height, width), (ph, pw) = x.shape, padding
    xp = np.zeros((n_batch, height + 2 * ph, width + 2 * pw, channels), dtype=x.dtype)
    xp[:, ph : ph + height, pw : pw + width] = x.transpose(0, 2, 3, 1)
    return xp


def _im2col(xp: np.ndarray, kernel, stride, dilation, out_hw) -> np.ndarray:
    """Every receptive field of xp (N, Hp, Wp, C) as one row: cols (N*H_out*W_out, KH*KW*C), with
    cols[(n, i, j), (a, b, c)] = xp[n, i*s + a*d, j*s + b*d, c]."""
    (kh, kw), (sh, sw), (dh, dw), (ho, wo) = kernel, stride, dilation, out_hw
    span = (dh * (kh - 1) + 1, dw * (kw - 1) + 1)
    view = sliding_window_view(xp, span, axis=(1, 2))  # (N, Hp - spanH + 1, Wp - spanW + 1, C, spanH, spanW)
    view = view[:, : sh * (ho - 1) + 1 : sh, : sw * (wo - 1) + 1 : sw, :, ::dh, ::dw]  # (N, H_out, W_out, C, KH, KW)
    return view.transpose(0, 1, 2, 4, 5, 3).reshape(-1, kh * kw * xp.shape[3])  # the copy: (N*H_out*W_out, KH*KW*C)


def _weight_matrix(weight: np.ndarray) -> np.ndarray:
    """weight (F, C, KH, KW) -> (KH*KW*C, F), its rows in the order of the columns of `_im2col`."""
    return weight.transpose(2, 3, 1, 0).reshape(-1, weight.shape[0])


def _rows_to_nchw(rows: np.ndarray, n_batch: int, out_hw: tuple[int, int]) -> np.ndarray:
    """(N*H_out*W_out, F) -> (N, F, H_out, W_out), contiguous."""
    return np.ascontiguousarray(rows.reshape(n_batch, *out_hw, -1).transpose(0, 3, 1, 2))


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

    cols: np.ndarray  # (N*H_out*W_out, KH*KW*C): every receptive field as a row
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
    x, weight, bias, stride, padding, dilation, out_hw = _check_conv(x, weight, bias, stride, padding, dilation)
    cols = _im2col(_padded_channels_last(x, padding), weight.shape[2:], stride, dilation, out_hw)
    rows = cols @ _weight_matrix(weight)  # (N*H_out*W_out, KH*KW*C) @ (KH*KW*C, F) -> (N*H_out*W_out, F)
    if bias is not None:
        rows += bias
    out = _rows_to_nchw(rows, x.shape[0], out_hw)  # (N, F, H_out, W_out)
    cache = Conv2dCache(cols, weight, bias is not None, x.shape, stride, padding, dilation, out.shape)
    return out, cache


def conv2d_backward(dout: np.ndarray, cache: Conv2dCache) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """The gradients of `conv2d`: dout (N, F, H_out, W_out) -> dx (N, C, H, W), dweight (F, C, KH, KW),
    dbias (F,) or None when the forward had no bias. dout is not modified.

    dweight and dbias come from the im2col matrix product. dx, with stride 1, is itself a convolution:
    dout, padded, convolved with the kernel flipped in space and its two channel axes swapped
    (`_input_gradient_by_convolution`). With a larger stride, dx adds each row of dout @ weight back to
    the pixels that row's receptive field was cut from (`_input_gradient_by_col2im`).
    """
    dout = require_float_array("dout", dout, ndim=4)
    if dout.shape != cache.out_shape:
        raise ValueError(f"dout must have the shape of the forward output {cache.out_shape}, got {dout.shape}")
    weight = cache.weight
    dout_last = np.ascontiguousarray(dout.transpose(0, 2, 3, 1))  # (N, H_out, W_out, F)
    dout_rows = dout_last.reshape(-1, weight.shape[0])  # (N*H_out*W_out, F)
    kh, kw, channels = weight.shape[2], weight.shape[3], weight.shape[1]
    dweight_matrix = cache.cols.T @ dout_rows  # (KH*KW*C, F)
    dweight = np.ascontiguousarray(dweight_matrix.reshape(kh, kw, channels, -1).transpose(3, 2, 0, 1))
    dbias = dout_rows.sum(axis=0) if cache.has_bias else None  # (F,)
    if cache.stride == (1, 1):
        dx = _input_gradient_by_convolution(dout_last, weight, cache.padding, cache.dilation)
    else:
        dx = _input_gradient_by_col2im(dout_rows, cache)
    return dx, dweight, dbias


def _input_gradient_by_convolution(dout_last, weight, padding, dilation):
    """dx for stride 1. Input pixel (p, q) reached out[i, j] through kernel tap (a, b) when p = i + a*d - pad,
    so dx[c, p, q] = sum_{f, a, b} dout[f, p + pad - a*d, q + pad - b*d] * weight[f, c, a, b]: a convolution
    of dout, padded by d(K - 1) - pad, with the kernel flipped (a -> K - 1 - a) and its channel axes swapped.
    dout_last: (N, H_out, W_out, F) -> dx (N, C, H, W)."""
    n_batch, ho, wo, _ = dout_last.shape
    (kh, kw), (dh, dw) = weight.shape[2:], dilation
    reach = (dh * (kh - 1), dw * (kw - 1))  # how far a dilated kernel reaches
    # pad by reach - padding; where the forward padding was larger, pad by 0 and crop the result instead
    grow = tuple(max(reach[a] - padding[a], 0) for a in range(2))
    crop = tuple(max(padding[a] - reach[a], 0) for a in range(2))
    padded = np.zeros((n_batch, ho + 2 * grow[0], wo + 2 * grow[1], dout_last.shape[3]), dtype=dout_last.dtype)
    padded[:, grow[0] : grow[0] + ho, grow[1] : grow[1] + wo] = dout_last
    flipped = weight[:, :, ::-1, ::-1].transpose(1, 0, 2, 3)  # (C, F, KH, KW)
    grad_hw = (ho + 2 * grow[0] - reach[0], wo + 2 * grow[1] - reach[1])
    rows = _im2col(padded, (kh, kw), (1, 1), dilation, grad_hw) @ _weight_matrix(flipped)  # (N*H'*W', C)
    dx = rows.reshape(n_batch, *grad_hw, -1)[:, crop[0] : grad_hw[0] - crop[0], crop[1] : grad_hw[1] - crop[1]]
    return np.ascontiguousarray(dx.transpose(0, 3, 1, 2))


def _input_gradient_by_col2im(dout_rows, cache):
    """dx for any stride: the gradient of every receptive field, dout_rows @ weight_matrix^T, added back
    (col2im) to the pixels it was cut from. dout_rows: (N*H_out*W_out, F) -> dx (N, C, H, W)."""
    n_batch, channels, height, width = cache.x_shape
    _, _, kh, kw = cache.weight.shape
    (sh, sw), (ph, pw), (dh, dw) = cache.stride, cache.padding, cache.dilation
    _, _, ho, wo = cache.out_shape
    dfields = (dout_rows @ _weight_matrix(cache.weight).T).reshape(n_batch, ho, wo, kh, kw, channels)
    dxp = np.zeros((n_batch, height + 2 * ph, width + 2 * pw, channels), dtype=dfields.dtype)
    for a in range(kh):
        for b in range(kw):
            dxp[:, a * dh : a * dh + sh * (ho - 1) + 1 : sh, b * dw : b * dw + sw * (wo - 1) + 1 : sw] += dfields[
                :, :, :, a, b
            ]
    return np.ascontiguousarray(dxp[:, ph : ph + height, pw : pw + width].transpose(0, 3, 1, 2))


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
