"""Convolution and pooling of `dlbook.np.conv` and their twins in `dlbook.torch.conv` (chapter 3).

The naive and the im2col convolutions equal `torch.nn.functional.conv2d` in float64 for random
shapes, strides, paddings and dilations; every gradient of `conv2d_backward` equals torch autograd
and central differences; a backward with an unflipped kernel or a forgotten stride is caught
(negative controls); pooling equals torch forward and backward, overlapping windows and the tie rule
included; bad arguments raise errors that say what was wrong; `output_size` equals torch's shapes.
"""

from __future__ import annotations

import inspect

import numpy as np
import pytest
import torch
import torch.nn.functional as F  # noqa: N812 (torch's own spelling)
from hypothesis import given, settings
from hypothesis import strategies as st

import dlbook.np.conv as npc
import dlbook.torch.conv as tc
from conftest import assert_close
from dlbook.np.gradcheck import numerical_gradient, relative_error

# Both sides do the same float64 products and sums, in a different order: a few ulps times the
# size of the reduction (C*KH*KW <= a few dozen terms of size O(1)).
RTOL, ATOL = 1e-10, 1e-12
# float32: about 1e-7 per term, same reductions.
RTOL32, ATOL32 = 1e-5, 1e-5
# Central differences with h = 1e-6 on an O(1) bilinear function: rounding ~1e-16 / 1e-6 dominates.
FD_TOLERANCE = 1e-7

# (N, C, H, W, F, KH, KW, stride, padding, dilation): batch size 1, odd and non-square sizes,
# (h, w) pairs, kernels as large as the padded input, 1x1 kernels.
CONV_CASES = [
    (1, 1, 5, 5, 1, 3, 3, 1, 0, 1),
    (2, 3, 7, 6, 4, 3, 3, 1, 1, 1),
    (3, 2, 9, 8, 5, 3, 2, 2, 1, 1),
    (1, 4, 8, 11, 3, 2, 3, (2, 3), (0, 2), 1),
    (2, 3, 10, 9, 2, 3, 3, 1, 2, 2),
    (2, 2, 11, 7, 3, 3, 2, (3, 1), (1, 0), (2, 3)),
    (1, 5, 4, 4, 2, 1, 1, 1, 0, 1),
    (2, 3, 5, 5, 2, 5, 5, 1, 0, 1),
    (1, 2, 3, 3, 2, 5, 5, 2, 1, 1),
    (5, 1, 6, 6, 1, 2, 2, 3, 0, 1),
]


def case_id(case) -> str:
    n, c, h, w, f, kh, kw, s, p, d = case
    return f"x{n}x{c}x{h}x{w}-w{f}x{c}x{kh}x{kw}-s{s}-p{p}-d{d}"


def make_conv(case, rng: np.random.Generator, dtype=np.float64):
    n, c, h, w, f, kh, kw, stride, padding, dilation = case
    x = rng.normal(size=(n, c, h, w)).astype(dtype)
    weight = rng.normal(size=(f, c, kh, kw)).astype(dtype)
    bias = rng.normal(size=(f,)).astype(dtype)
    return x, weight, bias, {"stride": stride, "padding": padding, "dilation": dilation}


def torch_leaf(array: np.ndarray) -> torch.Tensor:
    return torch.tensor(array, requires_grad=True)


# ---- forward ------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", CONV_CASES, ids=case_id)
@pytest.mark.parametrize("with_bias", [True, False])
def test_naive_and_fast_forward_equal_torch(case, with_bias, rng):
    x, weight, bias, hyper = make_conv(case, rng)
    bias = bias if with_bias else None
    expected = F.conv2d(
        torch.from_numpy(x), torch.from_numpy(weight), None if bias is None else torch.from_numpy(bias), **hyper
    )
    out, _ = npc.conv2d(x, weight, bias, **hyper)
    assert_close(out, expected, rtol=RTOL, atol=ATOL)
    assert_close(npc.conv2d_naive(x, weight, bias, **hyper), expected, rtol=RTOL, atol=ATOL)


@settings(max_examples=15, deadline=None)
@given(
    n=st.integers(1, 3),
    c=st.integers(1, 3),
    f=st.integers(1, 3),
    kernel=st.tuples(st.integers(1, 4), st.integers(1, 4)),
    stride=st.tuples(st.integers(1, 3), st.integers(1, 3)),
    padding=st.tuples(st.integers(0, 2), st.integers(0, 2)),
    dilation=st.tuples(st.integers(1, 3), st.integers(1, 3)),
    extra=st.tuples(st.integers(0, 5), st.integers(0, 5)),
    seed=st.integers(0, 2**32 - 1),
)
def test_forward_and_gradients_equal_torch_for_any_hyperparameters(
    n, c, f, kernel, stride, padding, dilation, extra, seed
):
    # the smallest input a (dilated) kernel fits in, once padded, plus a few pixels
    h, w = (max(1, dilation[a] * (kernel[a] - 1) + 1 - 2 * padding[a]) + extra[a] for a in range(2))
    case = (n, c, h, w, f, *kernel, stride, padding, dilation)
    assert_conv_matches_torch(*make_conv(case, np.random.default_rng(seed)), np.random.default_rng(seed + 1))


def test_float32_forward_equals_torch_and_stays_float32(rng):
    x, weight, bias, hyper = make_conv(CONV_CASES[2], rng, np.float32)
    out, cache = npc.conv2d(x, weight, bias, **hyper)
    assert out.dtype == np.float32
    expected = F.conv2d(torch.from_numpy(x), torch.from_numpy(weight), torch.from_numpy(bias), **hyper)
    assert_close(out, expected, rtol=RTOL32, atol=ATOL32)
    dx, dweight, dbias = npc.conv2d_backward(np.ones_like(out), cache)
    assert dx.dtype == dweight.dtype == dbias.dtype == np.float32


@pytest.mark.parametrize("case", CONV_CASES[:6], ids=case_id)
def test_naive_equals_fast(case, rng):
    x, weight, bias, hyper = make_conv(case, rng)
    np.testing.assert_allclose(
        npc.conv2d_naive(x, weight, bias, **hyper), npc.conv2d(x, weight, bias, **hyper)[0], rtol=RTOL, atol=ATOL
    )


# ---- backward -----------------------------------------------------------------------------------


def assert_conv_matches_torch(x, weight, bias, hyper, rng, with_bias=True):
    """Forward, and for a random upstream gradient dL/d(out), dL/dx, dL/dweight and dL/dbias equal torch autograd."""
    bias = bias if with_bias else None
    out, cache = npc.conv2d(x, weight, bias, **hyper)
    tx, tw = torch_leaf(x), torch_leaf(weight)
    tb = None if bias is None else torch_leaf(bias)
    expected = F.conv2d(tx, tw, tb, **hyper)
    assert_close(out, expected, rtol=RTOL, atol=ATOL)
    dout = rng.normal(size=out.shape)
    dout_before = dout.copy()
    dx, dweight, dbias = npc.conv2d_backward(dout, cache)
    expected.backward(torch.from_numpy(dout))
    assert_close(dx, tx.grad, rtol=RTOL, atol=ATOL)
    assert_close(dweight, tw.grad, rtol=RTOL, atol=ATOL)
    if bias is None:
        assert dbias is None
    else:
        assert_close(dbias, tb.grad, rtol=RTOL, atol=ATOL)
    np.testing.assert_array_equal(dout, dout_before)  # the incoming gradient is not overwritten


@pytest.mark.parametrize("case", CONV_CASES, ids=case_id)
@pytest.mark.parametrize("with_bias", [True, False])
def test_all_gradients_equal_torch_autograd(case, with_bias, rng):
    assert_conv_matches_torch(*make_conv(case, rng), rng, with_bias=with_bias)


def test_gradients_equal_central_differences(rng):
    x, weight, bias, hyper = make_conv((2, 2, 5, 4, 2, 3, 2, 2, 1, (1, 2)), rng)
    out, cache = npc.conv2d(x, weight, bias, **hyper)
    upstream = rng.normal(size=out.shape)  # L = sum(upstream * out), so dL/d(out) = upstream
    dx, dweight, dbias = npc.conv2d_backward(upstream, cache)

    def loss(x, weight, bias):
        return float(np.sum(upstream * npc.conv2d(x, weight, bias, **hyper)[0]))

    numeric = [
        numerical_gradient(lambda v: loss(v, weight, bias), x),
        numerical_gradient(lambda v: loss(x, v, bias), weight),
        numerical_gradient(lambda v: loss(x, weight, v), bias),
    ]
    for analytic, estimate in zip([dx, dweight, dbias], numeric, strict=True):
        assert relative_error(analytic, estimate) < FD_TOLERANCE


def test_input_gradient_is_a_convolution_with_the_flipped_kernel_and_an_unflipped_one_fails(rng):
    """Stride 1: dx = conv2d(dout padded by K - 1 - p, weight flipped in space, channels swapped).
    The same convolution without the flip (negative control) gives a different, wrong dx."""
    x, weight, bias, hyper = make_conv((2, 3, 7, 6, 4, 3, 3, 1, 1, 1), rng)
    out, cache = npc.conv2d(x, weight, bias, **hyper)
    dout = rng.normal(size=out.shape)
    dx, _, _ = npc.conv2d_backward(dout, cache)
    swapped = weight.transpose(1, 0, 2, 3)  # (C, F, KH, KW)
    flipped, _ = npc.conv2d(dout, np.ascontiguousarray(swapped[:, :, ::-1, ::-1]), padding=3 - 1 - 1)
    unflipped, _ = npc.conv2d(dout, np.ascontiguousarray(swapped), padding=3 - 1 - 1)
    np.testing.assert_allclose(dx, flipped, rtol=RTOL, atol=ATOL)
    assert relative_error(unflipped, dx) > 1e-2


def test_a_backward_that_forgets_the_stride_is_caught(rng):
    """Negative control: the same check that passes above must fail when col2im steps by 1, not by the stride."""
    x, weight, bias, hyper = make_conv((2, 3, 9, 8, 4, 3, 3, 2, 1, 1), rng)
    out, cache = npc.conv2d(x, weight, bias, **hyper)
    tx = torch_leaf(x)
    dout = rng.normal(size=out.shape)
    F.conv2d(tx, torch.from_numpy(weight), torch.from_numpy(bias), **hyper).backward(torch.from_numpy(dout))
    right, _, _ = npc.conv2d_backward(dout, cache)
    dout_rows = dout.transpose(0, 2, 3, 1).reshape(-1, weight.shape[0])
    wrong = npc._input_gradient_by_col2im(dout_rows, cache._replace(stride=(1, 1)))
    assert relative_error(right, tx.grad.numpy()) < 1e-12
    assert relative_error(wrong, tx.grad.numpy()) > 1e-2


def test_inputs_are_not_modified(rng):
    x, weight, bias, hyper = make_conv(CONV_CASES[3], rng)
    copies = [a.copy() for a in (x, weight, bias)]
    out, cache = npc.conv2d(x, weight, bias, **hyper)
    npc.conv2d_backward(np.ones_like(out), cache)
    npc.conv2d_naive(x, weight, bias, **hyper)
    for array, copy in zip((x, weight, bias), copies, strict=True):
        np.testing.assert_array_equal(array, copy)


# ---- pooling ------------------------------------------------------------------------------------

# (N, C, H, W, kernel_size, stride, padding): stride None (= kernel), overlapping windows (stride <
# kernel), padding, (h, w) pairs, windows that do not tile the input, batch size 1.
POOL_CASES = [
    (2, 3, 8, 8, 2, None, 0),
    (1, 2, 7, 9, 3, 2, 1),
    (2, 2, 6, 7, 3, 1, 0),
    (3, 1, 9, 6, (3, 2), (2, 1), (1, 1)),
    (1, 4, 5, 5, 2, 1, 1),
    (2, 1, 11, 10, 4, 3, 2),
]
POOLS = {
    "max": (npc.max_pool2d, npc.max_pool2d_backward, F.max_pool2d),
    "avg": (npc.avg_pool2d, npc.avg_pool2d_backward, F.avg_pool2d),
}


@pytest.mark.parametrize("case", POOL_CASES, ids=str)
@pytest.mark.parametrize("kind", POOLS)
def test_pooling_forward_and_backward_equal_torch(kind, case, rng):
    forward, backward, torch_forward = POOLS[kind]
    n, c, h, w, kernel, stride, padding = case
    x = rng.permutation(n * c * h * w).reshape(n, c, h, w) / 7.0 - 3.0  # distinct values: no ties
    out, cache = forward(x, kernel, stride, padding)
    tx = torch_leaf(x)
    expected = torch_forward(tx, kernel, stride, padding)
    assert_close(out, expected, rtol=RTOL, atol=ATOL)
    dout = rng.normal(size=out.shape)
    expected.backward(torch.from_numpy(dout))
    assert_close(backward(dout, cache), tx.grad, rtol=RTOL, atol=ATOL)


def test_max_pool_ties_send_the_gradient_to_the_first_maximum_in_row_major_order():
    """A window of equal values routes its whole gradient to its top-left-most maximum, as torch does
    on the CPU; with overlapping windows an element collects the gradient of every window it wins."""
    x = np.zeros((1, 1, 4, 4))
    x[0, 0, 1, 2] = x[0, 0, 2, 1] = 1.0  # two tied maxima inside the middle window
    out, cache = npc.max_pool2d(x, 3, stride=1)
    dx = npc.max_pool2d_backward(np.ones_like(out), cache)
    tx = torch_leaf(x)
    F.max_pool2d(tx, 3, stride=1).sum().backward()
    assert_close(dx, tx.grad, rtol=0, atol=0)
    # all four 3x3 windows hold both ones; (1, 2) comes first in row-major order and wins all four
    expected = np.zeros_like(x)
    expected[0, 0, 1, 2] = 4.0
    np.testing.assert_array_equal(dx, expected)


def test_avg_pool_counts_padded_zeros():
    out, _ = npc.avg_pool2d(np.ones((1, 1, 2, 2)), 2, stride=2, padding=1)
    np.testing.assert_array_equal(out[0, 0], np.full((2, 2), 0.25))  # each window: one 1 and three padded 0s


# ---- output sizes -------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [1, 2, 5, 8, 13])
@pytest.mark.parametrize(
    ("kernel", "stride", "padding", "dilation"),
    [(1, 1, 0, 1), (3, 1, 1, 1), (3, 2, 0, 1), (2, 3, 1, 2), (5, 2, 2, 1), (3, 3, 2, 3)],
)
def test_output_size_equals_torch_shapes(size, kernel, stride, padding, dilation):
    if dilation * (kernel - 1) + 1 > size + 2 * padding:
        with pytest.raises(ValueError, match="larger than the padded input"):
            npc.output_size(size, kernel, stride, padding, dilation)
        with pytest.raises(RuntimeError):
            F.conv2d(torch.zeros(1, 1, size, size), torch.zeros(1, 1, kernel, kernel), None, stride, padding, dilation)
        return
    expected = F.conv2d(
        torch.zeros(1, 1, size, size), torch.zeros(1, 1, kernel, kernel), None, stride, padding, dilation
    )
    assert npc.output_size(size, kernel, stride, padding, dilation) == expected.shape[-1]
    assert tc.output_size is npc.output_size


# ---- errors -------------------------------------------------------------------------------------


def test_clear_errors_for_bad_arguments(rng):
    x, weight = rng.normal(size=(2, 3, 6, 6)), rng.normal(size=(4, 3, 3, 3))
    for conv in (npc.conv2d, npc.conv2d_naive):
        with pytest.raises(ValueError, match=r"x has 3 channels .* weight expects 2"):
            conv(x, rng.normal(size=(4, 2, 3, 3)))
        with pytest.raises(ValueError, match="larger than the padded input"):
            conv(x, rng.normal(size=(4, 3, 7, 7)))
        with pytest.raises(ValueError, match="larger than the padded input"):
            conv(x, weight, dilation=3)
        with pytest.raises(ValueError, match=r"stride must be >= 1, got 0"):
            conv(x, weight, stride=0)
        with pytest.raises(ValueError, match=r"stride\[1\] must be >= 1, got -1"):
            conv(x, weight, stride=(1, -1))
        with pytest.raises(ValueError, match=r"dilation must be >= 1, got 0"):
            conv(x, weight, dilation=0)
        with pytest.raises(ValueError, match=r"padding must be >= 0, got -1"):
            conv(x, weight, padding=-1)
        with pytest.raises(TypeError, match="stride must be an integer"):
            conv(x, weight, stride=1.5)
        with pytest.raises(TypeError, match="x must have a floating dtype"):
            conv(x.astype(np.int64), weight)
        with pytest.raises(TypeError, match="x and weight must have the same dtype"):
            conv(x, weight.astype(np.float32))
        with pytest.raises(ValueError, match=r"x must have 4 dimension\(s\), got shape \(3, 6, 6\)"):
            conv(x[0], weight)
        with pytest.raises(ValueError, match=r"bias must have one entry per filter: expected \(4,\)"):
            conv(x, weight, np.zeros(3))
    out, cache = npc.conv2d(x, weight)
    with pytest.raises(ValueError, match="dout must have the shape of the forward output"):
        npc.conv2d_backward(out[:, :, 1:], cache)
    for pool in (npc.max_pool2d, npc.avg_pool2d):
        with pytest.raises(ValueError, match="padding must be at most half of kernel_size"):
            pool(x, 2, padding=2)
        with pytest.raises(ValueError, match="larger than the padded input"):
            pool(x, 7)
        with pytest.raises(ValueError, match=r"stride must be >= 1, got 0"):
            pool(x, 2, stride=0)
        with pytest.raises(TypeError, match="x must have a floating dtype"):
            pool(x.astype(np.int32), 2)


# ---- the torch twin -----------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["conv2d", "conv2d_naive", "max_pool2d", "avg_pool2d"])
def test_twins_share_names_and_signatures(name):
    np_params = inspect.signature(getattr(npc, name)).parameters
    torch_params = inspect.signature(getattr(tc, name)).parameters
    assert [(p.name, p.default) for p in np_params.values()] == [(p.name, p.default) for p in torch_params.values()]


def test_twins_give_the_same_outputs(rng):
    x, weight, bias, hyper = make_conv(CONV_CASES[5], rng)
    tx, tw, tb = (torch.from_numpy(a) for a in (x, weight, bias))
    for name in ("conv2d", "conv2d_naive"):
        np_out = getattr(npc, name)(x, weight, bias, **hyper)
        np_out = np_out[0] if isinstance(np_out, tuple) else np_out
        assert_close(np_out, getattr(tc, name)(tx, tw, tb, **hyper), rtol=RTOL, atol=ATOL)
    for name in ("max_pool2d", "avg_pool2d"):
        assert_close(getattr(npc, name)(x, 3, 2, 1)[0], getattr(tc, name)(tx, 3, 2, 1), rtol=RTOL, atol=ATOL)


# ---- receptive fields ---------------------------------------------------------------------------


def measured_receptive_field(layers, size=41):
    """Backpropagate from the centre output of a stack of all-ones convolutions and measure the span,
    along a row, from the first to the last input pixel that received any gradient."""
    x = torch.zeros(1, 1, size, size, dtype=torch.float64, requires_grad=True)
    h = x
    for kernel, stride, dilation in layers:
        h = F.conv2d(h, torch.ones(1, 1, kernel, kernel, dtype=torch.float64), stride=stride, dilation=dilation)
    centre = h.shape[-1] // 2
    h[0, 0, centre, centre].backward()
    reached = torch.nonzero(x.grad[0, 0].abs().sum(dim=0) > 0)
    return int(reached.max() - reached.min() + 1)


@pytest.mark.parametrize(
    "layers",
    [
        [(3, 1, 1)],
        [(3, 1, 1)] * 3,
        [(3, 2, 1), (3, 2, 1), (3, 1, 1)],
        [(3, 1, 1), (3, 1, 2), (3, 1, 4)],
        [(5, 1, 1), (2, 2, 1), (5, 1, 1), (2, 2, 1)],
        [(1, 3, 1), (2, 1, 1)],
    ],
)
def test_receptive_field_formula_equals_the_span_of_pixels_that_receive_gradient(layers):
    assert npc.receptive_field(layers) == measured_receptive_field(layers)


def test_receptive_field_rejects_malformed_layers():
    with pytest.raises(ValueError, match=r"layers\[1\] must be a \(kernel, stride, dilation\) triple, got \(3, 1\)"):
        npc.receptive_field([(3, 1, 1), (3, 1)])
    with pytest.raises(ValueError, match=r"layers\[0\]\[1\] must be >= 1, got 0"):
        npc.receptive_field([(3, 0, 1)])
