"""Attention of `dlbook.np.attention` and its twins in `dlbook.torch.attention` (chapter "Attention and transformers").

Scaled dot-product attention equals `torch.nn.functional.scaled_dot_product_attention`, forward and every
gradient, in float64, without a mask and with boolean, float and causal masks, for Lq != Lk and batch axes of
rank 0 to 3 (broadcast ones too); masked keys get exactly zero weight and zero gradient; a fully masked
query gets zeros, as in torch; forgetting the 1/sqrt(d) scale is caught. Multi-head attention equals
torch.nn.MultiheadAttention after its weights are copied over (both ways). Layer and RMS norm equal torch.
Sinusoidal positions have their known values; rotary embeddings preserve norms and make scores depend on
relative positions only. Blockwise (online-softmax) attention equals the naive one for block sizes that do
and do not divide L, never allocates an (Lq, Lk) array, and without the rescaling of its running sums is
caught by the same comparison. Every backward also equals central differences; bad arguments raise errors
that say what was expected and what came.
"""

from __future__ import annotations

import inspect
import math
import tracemalloc

import numpy as np
import pytest
import torch
import torch.nn.functional as F  # noqa: N812 (torch's own spelling)
from hypothesis import given, settings
from hypothesis import strategies as st

import dlbook.np.attention as npa
import dlbook.torch.attention as ta
from conftest import assert_close
from dlbook.np.gradcheck import numerical_gradient, relative_error

# float64, both sides: the same products and sums in another order; reductions over at most a few dozen
# O(1) terms (d, Lk, E), so a few ulps times that, ~1e-14, well inside these.
RTOL, ATOL = 1e-10, 1e-12
# float32: about 1e-7 per operation over the same reductions, exp and the softmax normalisation included.
RTOL32, ATOL32 = 1e-5, 1e-5
# Central differences with h = 1e-6 on smooth O(1) functions: rounding ~1e-16 / 1e-6 dominates.
FD_TOLERANCE = 1e-7


def leaf(array: np.ndarray) -> torch.Tensor:
    return torch.tensor(array, requires_grad=True)


def make_qkv(rng, batch, lq, lk, d, dv, dtype=np.float64, kv_batch=None):
    kv_batch = batch if kv_batch is None else kv_batch
    q = rng.normal(size=(*batch, lq, d)).astype(dtype)
    k = rng.normal(size=(*kv_batch, lk, d)).astype(dtype)
    v = rng.normal(size=(*kv_batch, lk, dv)).astype(dtype)
    return q, k, v


MASK_KINDS = ("none", "bool", "float", "float_inf", "key_padding", "causal")


def make_mask(kind: str, rng: np.random.Generator, shape: tuple[int, ...], dtype=np.float64):
    """(mask, is_causal) for a mask kind and the weights' shape (..., Lq, Lk); masks broadcast when smaller."""
    if kind == "none":
        return None, False
    if kind == "causal":
        return None, True
    if kind == "bool":
        return rng.random(shape) > 0.3, False
    if kind == "float":
        return rng.normal(size=shape).astype(dtype), False
    if kind == "float_inf":  # an additive mask that blocks with -inf, as in many codebases
        return np.where(rng.random(shape) > 0.3, 0.0, -np.inf).astype(dtype), False
    if kind == "key_padding":  # (..., 1, Lk): the same keys masked for every query
        keep = np.ones((*shape[:-2], 1, shape[-1]), dtype=bool)
        keep[..., shape[-1] // 2 + 1 :] = False
        return keep, False
    raise ValueError(kind)


def torch_mask(mask):
    return None if mask is None else torch.from_numpy(mask)


def assert_sdpa_matches_torch(q, k, v, rng, mask=None, is_causal=False, scale=None, rtol=RTOL, atol=ATOL):
    """Forward, and for a random upstream gradient dL/d(out), dL/dq, dL/dk and dL/dv equal torch autograd."""
    out, cache = npa.scaled_dot_product_attention(q, k, v, mask, is_causal, scale)
    tq, tk, tv = leaf(q), leaf(k), leaf(v)
    expected = F.scaled_dot_product_attention(tq, tk, tv, attn_mask=torch_mask(mask), is_causal=is_causal, scale=scale)
    assert_close(out, expected, rtol=rtol, atol=atol)
    dout = rng.normal(size=out.shape).astype(q.dtype)
    dout_before = dout.copy()
    grads = npa.scaled_dot_product_attention_backward(dout, cache)
    expected.backward(torch.from_numpy(dout))
    for grad, tensor in zip(grads, (tq, tk, tv), strict=True):
        assert grad.dtype == q.dtype
        assert_close(grad, tensor.grad, rtol=rtol, atol=atol)
    np.testing.assert_array_equal(dout, dout_before)  # the incoming gradient is not overwritten
    return out, cache, grads


# ---- scaled dot-product attention ---------------------------------------------------------------

# (batch of q, batch of k and v, Lq, Lk, d, dv, mask kind, mask shape): batch ranks 0 to 3, Lq < Lk and
# Lq > Lk (causal too), a key/value batch broadcast over heads (multi-query), single tokens, masks of the
# full shape and masks that broadcast.
SDPA_CASES = [
    ((), (), 5, 7, 4, 3, "none", "2d"),
    ((3,), (3,), 6, 6, 8, 8, "bool", "2d"),
    ((2, 3), (2, 3), 5, 9, 8, 5, "float", "full"),
    ((2, 3), (2, 3), 7, 4, 6, 2, "causal", "-"),
    ((2, 4), (2, 4), 4, 7, 6, 2, "causal", "-"),
    ((2, 2, 3), (2, 2, 3), 3, 5, 4, 4, "key_padding", "full"),
    ((2, 4), (2, 1), 6, 5, 8, 3, "bool", "full"),
    ((2, 3), (2, 3), 5, 6, 4, 4, "float_inf", "full"),
    ((1,), (1,), 1, 1, 1, 1, "none", "-"),
]


def sdpa_id(case) -> str:
    qb, kb, lq, lk, d, dv, kind, mask_shape = case
    return f"q{qb}-kv{kb}-Lq{lq}-Lk{lk}-d{d}-dv{dv}-{kind}-{mask_shape}"


@pytest.mark.parametrize("case", SDPA_CASES, ids=sdpa_id)
def test_sdpa_forward_and_all_gradients_equal_torch(case, rng):
    q_batch, kv_batch, lq, lk, d, dv, kind, mask_shape = case
    q, k, v = make_qkv(rng, q_batch, lq, lk, d, dv, kv_batch=kv_batch)
    batch = np.broadcast_shapes(q_batch, kv_batch)
    mask, is_causal = make_mask(kind, rng, (lq, lk) if mask_shape == "2d" else (*batch, lq, lk))
    assert_sdpa_matches_torch(q, k, v, rng, mask, is_causal)


@settings(max_examples=25, deadline=None)
@given(
    batch=st.lists(st.integers(1, 3), max_size=3).map(tuple),
    sizes=st.tuples(st.integers(1, 7), st.integers(1, 7), st.integers(1, 6), st.integers(1, 6)),
    kind=st.sampled_from(MASK_KINDS),
    scale=st.none() | st.floats(0.1, 2.0),
    seed=st.integers(0, 2**32 - 1),
)
def test_sdpa_equals_torch_for_any_shape_mask_and_scale(batch, sizes, kind, scale, seed):
    rng = np.random.default_rng(seed)
    lq, lk, d, dv = sizes
    q, k, v = make_qkv(rng, batch, lq, lk, d, dv)
    mask, is_causal = make_mask(kind, rng, (*batch, lq, lk))
    assert_sdpa_matches_torch(q, k, v, rng, mask, is_causal, scale)


def test_sdpa_in_float32_equals_torch_and_stays_float32(rng):
    q, k, v = make_qkv(rng, (2, 3), 6, 9, 8, 5, np.float32)
    mask, _ = make_mask("float", rng, (6, 9), np.float32)
    out, cache, grads = assert_sdpa_matches_torch(q, k, v, rng, mask, rtol=RTOL32, atol=ATOL32)
    assert out.dtype == cache.weights.dtype == np.float32
    assert all(grad.dtype == np.float32 for grad in grads)


def test_sdpa_gradients_equal_central_differences(rng):
    q, k, v = make_qkv(rng, (2,), 3, 4, 3, 2)
    mask = np.array([[True, True, False, True], [True, False, True, True], [True, True, True, False]])
    out, cache = npa.scaled_dot_product_attention(q, k, v, mask)
    upstream = rng.normal(size=out.shape)  # L = sum(upstream * out), so dL/d(out) = upstream
    analytic = npa.scaled_dot_product_attention_backward(upstream, cache)

    def loss(q, k, v):
        return float(np.sum(upstream * npa.scaled_dot_product_attention(q, k, v, mask)[0]))

    numeric = [
        numerical_gradient(lambda x: loss(x, k, v), q),
        numerical_gradient(lambda x: loss(q, x, v), k),
        numerical_gradient(lambda x: loss(q, k, x), v),
    ]
    for grad, estimate in zip(analytic, numeric, strict=True):
        assert relative_error(grad, estimate) < FD_TOLERANCE


def test_weights_are_a_softmax_over_the_keys_and_are_returned_for_drawing(rng):
    q, k, v = make_qkv(rng, (2,), 4, 6, 5, 3)
    out, cache = npa.scaled_dot_product_attention(q, k, v)
    scores = q @ k.swapaxes(-1, -2) / math.sqrt(5)
    expected = np.exp(scores) / np.exp(scores).sum(axis=-1, keepdims=True)
    np.testing.assert_allclose(cache.weights, expected, rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(cache.weights.sum(axis=-1), 1.0, rtol=RTOL)
    np.testing.assert_allclose(out, cache.weights @ v, rtol=RTOL, atol=ATOL)


def test_large_scores_do_not_overflow(rng):
    """The softmax subtracts each row's max first: scores of 1e4 would overflow exp, yet the result is finite."""
    q, k, v = make_qkv(rng, (), 3, 4, 2, 2)
    out, cache = npa.scaled_dot_product_attention(q * 1e4, k * 1e4, v)
    assert np.all(np.isfinite(out)) and np.all(np.isfinite(cache.weights))
    assert_close(
        out, F.scaled_dot_product_attention(*(torch.from_numpy(a) for a in (q * 1e4, k * 1e4, v))), rtol=RTOL, atol=ATOL
    )


@pytest.mark.parametrize("kind", ["bool", "float_inf", "causal"])
def test_masked_keys_get_exactly_zero_weight_and_exactly_zero_gradient(kind, rng):
    q, k, v = make_qkv(rng, (2, 3), 5, 7, 4, 3)
    lq, lk = 5, 7
    mask, is_causal = make_mask(kind, rng, (lq, lk))
    if kind == "causal":
        blocked = ~npa.causal_mask(lq, lk)
    else:
        blocked = ~mask if mask.dtype == bool else np.isneginf(mask)
        blocked[:, 5:] = True  # keys 5 and 6 are masked for every query: padding
        mask = ~blocked if mask.dtype == bool else np.where(blocked, -np.inf, 0.0)
    out, cache = npa.scaled_dot_product_attention(q, k, v, mask, is_causal)
    assert np.all(cache.weights[..., blocked] == 0.0)
    assert np.all(cache.weights[..., ~blocked] > 0.0)
    _, dk, dv = npa.scaled_dot_product_attention_backward(rng.normal(size=out.shape), cache)
    # a key that no query attends to neither moves the output nor receives any gradient, exactly
    unused = blocked.all(axis=0)
    assert unused.any()
    assert np.all(dk[..., unused, :] == 0.0)
    assert np.all(dv[..., unused, :] == 0.0)
    # and changing a masked value changes nothing
    v_changed = v.copy()
    v_changed[..., unused, :] += 100.0
    np.testing.assert_array_equal(npa.scaled_dot_product_attention(q, k, v_changed, mask, is_causal)[0], out)


@pytest.mark.parametrize("kind", ["bool", "float_inf"])
def test_a_query_with_every_key_masked_gets_zero_weights_output_and_gradients_like_torch(kind, rng):
    """torch (since 2.5) returns zeros, not NaN, for a fully masked row; so does the NumPy twin."""
    q, k, v = make_qkv(rng, (2,), 4, 5, 3, 3)
    blocked = rng.random((4, 5)) > 0.7
    blocked[2] = True  # query 2 may attend to nothing
    mask = ~blocked if kind == "bool" else np.where(blocked, -np.inf, 0.0)
    out, cache, (dq, _, _) = assert_sdpa_matches_torch(q, k, v, rng, mask)
    assert np.all(cache.weights[:, 2] == 0.0)
    assert np.all(out[:, 2] == 0.0)
    assert np.all(dq[:, 2] == 0.0)
    assert np.all(np.isfinite(cache.weights))


def test_causal_attention_is_the_top_left_lower_triangle_also_when_lq_differs_from_lk(rng):
    for lq, lk in [(3, 5), (5, 3), (4, 4)]:
        q, k, v = make_qkv(rng, (), lq, lk, 2, 2)
        _, cache = npa.scaled_dot_product_attention(q, k, v, is_causal=True)
        np.testing.assert_array_equal(cache.weights > 0, np.tril(np.ones((lq, lk), dtype=bool)))
        _, with_mask = npa.scaled_dot_product_attention(q, k, v, npa.causal_mask(lq, lk))
        np.testing.assert_array_equal(cache.weights, with_mask.weights)


def test_forgetting_the_scale_is_caught_by_the_comparison_with_torch(rng):
    """Negative control: attention without the 1/sqrt(d) factor runs and looks plausible (rows sum to 1), but
    the comparison that the default passes fails. An explicit scale equals torch's scale argument."""
    q, k, v = make_qkv(rng, (2, 4), 6, 6, 16, 8)
    expected = F.scaled_dot_product_attention(*(torch.from_numpy(a) for a in (q, k, v))).numpy()
    right, _ = npa.scaled_dot_product_attention(q, k, v)
    unscaled, cache = npa.scaled_dot_product_attention(q, k, v, scale=1.0)
    np.testing.assert_allclose(cache.weights.sum(axis=-1), 1.0, rtol=RTOL)
    assert relative_error(right, expected) < 1e-12
    assert relative_error(unscaled, expected) > 1e-2
    explicit = F.scaled_dot_product_attention(*(torch.from_numpy(a) for a in (q, k, v)), scale=0.3).numpy()
    assert relative_error(npa.scaled_dot_product_attention(q, k, v, scale=0.3)[0], explicit) < 1e-12


def test_inputs_are_not_modified(rng):
    q, k, v = make_qkv(rng, (2,), 4, 5, 3, 3)
    mask, _ = make_mask("float", rng, (4, 5))
    arrays = (q, k, v, mask)
    copies = [a.copy() for a in arrays]
    out, cache = npa.scaled_dot_product_attention(q, k, v, mask)
    npa.scaled_dot_product_attention_backward(np.ones_like(out), cache)
    out, cache = npa.blockwise_attention(q, k, v, 2)
    npa.blockwise_attention_backward(np.ones_like(out), cache)
    for array, copy in zip(arrays, copies, strict=True):
        np.testing.assert_array_equal(array, copy)


# ---- additive attention -------------------------------------------------------------------------


def make_additive(rng, batch, lq, lk, dq, dk, dv, hidden):
    q, k, v = rng.normal(size=(*batch, lq, dq)), rng.normal(size=(*batch, lk, dk)), rng.normal(size=(*batch, lk, dv))
    weights = rng.normal(size=(hidden, dq)), rng.normal(size=(hidden, dk)), rng.normal(size=hidden)
    return (q, k, v, *weights)


@pytest.mark.parametrize("kind", ["none", "bool", "causal"])
@pytest.mark.parametrize(("batch", "lq", "lk"), [((), 4, 6), ((2, 3), 5, 5), ((2,), 6, 3)])
def test_additive_attention_and_its_gradients_equal_torch_autograd(batch, lq, lk, kind, rng):
    inputs = make_additive(rng, batch, lq, lk, 3, 5, 2, 4)  # q and k of different sizes: additive allows it
    mask, is_causal = make_mask(kind, rng, (lq, lk))
    out, cache = npa.additive_attention(*inputs, mask, is_causal)
    tensors = [leaf(a) for a in inputs]
    expected = ta.additive_attention(*tensors, torch_mask(mask), is_causal)
    assert_close(out, expected, rtol=RTOL, atol=ATOL)
    dout = rng.normal(size=out.shape)
    expected.backward(torch.from_numpy(dout))
    for grad, tensor in zip(npa.additive_attention_backward(dout, cache), tensors, strict=True):
        assert_close(grad, tensor.grad, rtol=RTOL, atol=ATOL)


def test_additive_attention_gradients_equal_central_differences(rng):
    inputs = make_additive(rng, (2,), 3, 4, 2, 3, 2, 3)
    mask = np.array([[True, False, True, True], [True, True, True, False], [False, True, True, True]])
    out, cache = npa.additive_attention(*inputs, mask)
    upstream = rng.normal(size=out.shape)
    analytic = npa.additive_attention_backward(upstream, cache)
    for index, grad in enumerate(analytic):

        def loss(x, index=index):
            args = list(inputs)
            args[index] = x
            return float(np.sum(upstream * npa.additive_attention(*args, mask)[0]))

        assert relative_error(grad, numerical_gradient(loss, inputs[index])) < FD_TOLERANCE


# ---- multi-head attention -----------------------------------------------------------------------

# (N, Lq, Lk, E, n_heads, mask kind): self-attention (Lq = Lk and one input), cross-attention, one head,
# head size 1, causal, masks per batch entry.
MHA_CASES = [
    (2, 5, 5, 8, 2, "self"),
    (3, 4, 6, 12, 3, "none"),
    (2, 6, 6, 8, 4, "causal"),
    (2, 5, 7, 6, 1, "bool"),
    (2, 5, 5, 4, 4, "float"),
    (3, 4, 6, 8, 2, "bool_per_sequence"),
]


def module_mask(mask: np.ndarray | None, n_heads: int) -> torch.Tensor | None:
    """Our mask as torch.nn.MultiheadAttention's attn_mask: (Lq, Lk) or (N*H, Lq, Lk), and for booleans
    inverted, since for that module True means "may NOT attend"."""
    if mask is None:
        return None
    if mask.ndim == 4:  # (N, 1, Lq, Lk) -> (N*H, Lq, Lk), each sequence's mask once per head
        mask = np.repeat(mask, n_heads, axis=1).reshape(-1, *mask.shape[2:])
    return torch.from_numpy(~mask if mask.dtype == bool else mask)


def random_params(embed, n_heads, rng):
    params = npa.init_multi_head_attention(embed, n_heads, rng)
    params["in_proj_bias"] = rng.normal(size=3 * embed)  # torch starts biases at 0; test them nonzero
    params["out_proj.bias"] = rng.normal(size=embed)
    return params


@pytest.mark.parametrize("case", MHA_CASES, ids=str)
def test_multi_head_attention_equals_torch_module_after_copying_weights(case, rng):
    n, lq, lk, embed, n_heads, kind = case
    params = random_params(embed, n_heads, rng)
    module = ta.multihead_module(params, n_heads)
    query = rng.normal(size=(n, lq, embed))
    key, value = (query, query) if kind == "self" else (rng.normal(size=(n, lk, embed)) for _ in range(2))
    is_causal = kind == "causal"
    mask = {
        "bool": rng.random((lq, lk)) > 0.3,
        "float": rng.normal(size=(lq, lk)),
        "bool_per_sequence": rng.random((n, 1, lq, lk)) > 0.3,
        "causal": None,
    }.get(kind)
    for row in range(lq):  # keep one key per query: torch's module gives NaN for a fully masked query
        if mask is not None and mask.dtype == bool:
            mask[..., row, row % lk] = True
    out, cache = npa.multi_head_attention(query, key, value, params, n_heads, mask, is_causal)

    tq, tk, tv = leaf(query), leaf(key), leaf(value)
    if kind == "self":
        tk = tv = tq
    attn_mask = torch.from_numpy(~npa.causal_mask(lq, lk)) if is_causal else module_mask(mask, n_heads)
    expected, averaged = module(tq, tk, tv, attn_mask=attn_mask, is_causal=is_causal)
    assert_close(out, expected, rtol=RTOL, atol=ATOL)
    assert_close(cache.attention.weights.mean(axis=1), averaged, rtol=RTOL, atol=ATOL)  # torch averages the heads

    dout = rng.normal(size=out.shape)
    expected.backward(torch.from_numpy(dout))
    dquery, dkey, dvalue, grads = npa.multi_head_attention_backward(dout, cache)
    if kind == "self":  # one input used three times: its gradient is the sum
        assert_close(dquery + dkey + dvalue, tq.grad, rtol=RTOL, atol=ATOL)
    else:
        for grad, tensor in zip((dquery, dkey, dvalue), (tq, tk, tv), strict=True):
            assert_close(grad, tensor.grad, rtol=RTOL, atol=ATOL)
    assert list(grads) == list(npa.MHA_PARAM_NAMES)
    for name, parameter in module.named_parameters():
        assert_close(grads[name], parameter.grad, rtol=RTOL, atol=ATOL)
    twin = ta.multi_head_attention(
        tq, tk, tv, {name: torch.from_numpy(a) for name, a in params.items()}, n_heads, torch_mask(mask), is_causal
    )
    assert_close(out, twin, rtol=RTOL, atol=ATOL)


@settings(max_examples=10, deadline=None)
@given(
    n=st.integers(1, 3),
    lq=st.integers(1, 5),
    lk=st.integers(1, 5),
    head_dim=st.integers(1, 4),
    n_heads=st.integers(1, 4),
    seed=st.integers(0, 2**32 - 1),
)
def test_multi_head_attention_equals_torch_module_for_any_shape(n, lq, lk, head_dim, n_heads, seed):
    rng = np.random.default_rng(seed)
    embed = head_dim * n_heads
    params = random_params(embed, n_heads, rng)
    query, key, value = (
        rng.normal(size=(n, lq, embed)),
        rng.normal(size=(n, lk, embed)),
        rng.normal(size=(n, lk, embed)),
    )
    out, cache = npa.multi_head_attention(query, key, value, params, n_heads)
    tensors = [leaf(a) for a in (query, key, value)]
    module = ta.multihead_module(params, n_heads)
    expected, _ = module(*tensors)
    assert_close(out, expected, rtol=RTOL, atol=ATOL)
    dout = rng.normal(size=out.shape)
    expected.backward(torch.from_numpy(dout))
    *dinputs, grads = npa.multi_head_attention_backward(dout, cache)
    for grad, tensor in zip(dinputs, tensors, strict=True):
        assert_close(grad, tensor.grad, rtol=RTOL, atol=ATOL)
    for name, parameter in module.named_parameters():
        assert_close(grads[name], parameter.grad, rtol=RTOL, atol=ATOL)


def test_multi_head_attention_gradients_equal_central_differences(rng):
    embed, n_heads = 4, 2
    params = random_params(embed, n_heads, rng)
    query, key = rng.normal(size=(2, 3, embed)), rng.normal(size=(2, 4, embed))
    value = rng.normal(size=(2, 4, embed))
    out, cache = npa.multi_head_attention(query, key, value, params, n_heads)
    upstream = rng.normal(size=out.shape)
    dquery, dkey, dvalue, grads = npa.multi_head_attention_backward(upstream, cache)

    def loss(query=query, key=key, value=value, **changed):
        return float(np.sum(upstream * npa.multi_head_attention(query, key, value, params | changed, n_heads)[0]))

    assert relative_error(dquery, numerical_gradient(lambda x: loss(query=x), query)) < FD_TOLERANCE
    assert relative_error(dkey, numerical_gradient(lambda x: loss(key=x), key)) < FD_TOLERANCE
    assert relative_error(dvalue, numerical_gradient(lambda x: loss(value=x), value)) < FD_TOLERANCE
    for name in npa.MHA_PARAM_NAMES:
        estimate = numerical_gradient(lambda x, name=name: loss(**{name: x}), params[name])
        assert relative_error(grads[name], estimate) < FD_TOLERANCE


def test_parameters_copy_between_numpy_and_torch_module_both_ways(rng):
    embed, n_heads = 8, 2
    params = random_params(embed, n_heads, rng)
    # NumPy -> module -> NumPy gives the same numbers back, as copies
    module = ta.multihead_module(params, n_heads)
    back = ta.params_from_module(module)
    for name in npa.MHA_PARAM_NAMES:
        np.testing.assert_array_equal(back[name], params[name])
        assert not np.shares_memory(back[name], params[name])
    # a module initialised by torch -> NumPy: the NumPy forward equals the module's
    torch.manual_seed(0)
    torch_module = torch.nn.MultiheadAttention(embed, n_heads, batch_first=True, dtype=torch.float64)
    x = rng.normal(size=(2, 5, embed))
    out, _ = npa.multi_head_attention(x, x, x, ta.params_from_module(torch_module), n_heads)
    tx = torch.from_numpy(x)
    assert_close(out, torch_module(tx, tx, tx)[0], rtol=RTOL, atol=ATOL)
    # copying into an existing module (float32 here) keeps the module's dtype
    module32 = torch.nn.MultiheadAttention(embed, n_heads, batch_first=True)
    ta.copy_params_to_module(params, module32)
    assert module32.in_proj_weight.dtype == torch.float32
    np.testing.assert_allclose(module32.in_proj_weight.detach().numpy(), params["in_proj_weight"], rtol=1e-7)


def test_init_draws_from_torchs_distributions_and_both_twins_draw_the_same_numbers():
    embed, n_heads = 64, 4
    params = npa.init_multi_head_attention(embed, n_heads, np.random.default_rng(1))
    torch.manual_seed(1)
    reference = dict(torch.nn.MultiheadAttention(embed, n_heads, batch_first=True).named_parameters())
    in_bound, out_bound = math.sqrt(6 / (4 * embed)), 1 / math.sqrt(embed)
    for name, bound in (("in_proj_weight", in_bound), ("out_proj.weight", out_bound)):
        for weights in (params[name], reference[name].detach().numpy()):
            assert weights.shape == (3 * embed if name == "in_proj_weight" else embed, embed)
            assert np.abs(weights).max() <= bound
            assert np.abs(weights).max() > 0.99 * bound  # uniform: the extremes come close to the bound
            assert abs(weights.std() - bound / math.sqrt(3)) < 0.05 * bound  # the std of U(-b, b)
    for name in ("in_proj_bias", "out_proj.bias"):
        assert np.all(params[name] == 0.0) and torch.all(reference[name] == 0.0)
    twin = ta.init_multi_head_attention(embed, n_heads, np.random.default_rng(1))
    for name in npa.MHA_PARAM_NAMES:
        np.testing.assert_array_equal(twin[name].detach().numpy(), params[name])
        assert twin[name].requires_grad


# ---- layer norm and RMS norm --------------------------------------------------------------------

NORM_SHAPES = [(5,), (3, 4), (2, 3, 8), (2, 1, 3, 16), (4, 1)]


@pytest.mark.parametrize("shape", NORM_SHAPES, ids=str)
@pytest.mark.parametrize("affine", [True, False])
def test_layer_norm_forward_and_gradients_equal_torch(shape, affine, rng):
    x = rng.normal(1.0, 3.0, size=shape)
    weight, bias = (rng.normal(size=shape[-1:]), rng.normal(size=shape[-1:])) if affine else (None, None)
    out, cache = npa.layer_norm(x, weight, bias)
    tensors = [leaf(a) if a is not None else None for a in (x, weight, bias)]
    expected = F.layer_norm(tensors[0], shape[-1:], tensors[1], tensors[2])
    assert_close(out, expected, rtol=RTOL, atol=ATOL)
    dout = rng.normal(size=shape)
    expected.backward(torch.from_numpy(dout))
    for grad, tensor in zip(npa.layer_norm_backward(dout, cache), tensors, strict=True):
        if tensor is None:
            assert grad is None
        else:
            assert_close(grad, tensor.grad, rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("shape", NORM_SHAPES, ids=str)
@pytest.mark.parametrize("affine", [True, False])
def test_rms_norm_forward_and_gradients_equal_torch(shape, affine, rng):
    x = rng.normal(1.0, 3.0, size=shape)
    weight = rng.normal(size=shape[-1:]) if affine else None
    out, cache = npa.rms_norm(x, weight)
    tx, tw = leaf(x), (leaf(weight) if affine else None)
    expected = F.rms_norm(tx, shape[-1:], tw)
    assert_close(out, expected, rtol=RTOL, atol=ATOL)
    dout = rng.normal(size=shape)
    expected.backward(torch.from_numpy(dout))
    dx, dweight = npa.rms_norm_backward(dout, cache)
    assert_close(dx, tx.grad, rtol=RTOL, atol=ATOL)
    if affine:
        assert_close(dweight, tw.grad, rtol=RTOL, atol=ATOL)
    else:
        assert dweight is None


@settings(max_examples=15, deadline=None)
@given(
    shape=st.lists(st.integers(1, 5), min_size=1, max_size=4).map(tuple),
    eps=st.floats(1e-8, 1e-1),
    seed=st.integers(0, 2**32 - 1),
)
def test_norms_equal_torch_modules_for_any_shape_and_eps(shape, eps, seed):
    rng = np.random.default_rng(seed)
    x, dout = rng.normal(size=shape), rng.normal(size=shape)
    weight, bias = rng.normal(size=shape[-1:]), rng.normal(size=shape[-1:])
    layer = torch.nn.LayerNorm(shape[-1], eps=eps, dtype=torch.float64)
    rms = torch.nn.RMSNorm(shape[-1], eps=eps, dtype=torch.float64)
    with torch.no_grad():
        layer.weight.copy_(torch.from_numpy(weight))
        layer.bias.copy_(torch.from_numpy(bias))
        rms.weight.copy_(torch.from_numpy(weight))
    for module, (out, cache), backward in (
        (layer, npa.layer_norm(x, weight, bias, eps), npa.layer_norm_backward),
        (rms, npa.rms_norm(x, weight, eps), npa.rms_norm_backward),
    ):
        tx = leaf(x)
        expected = module(tx)
        assert_close(out, expected, rtol=RTOL, atol=ATOL)
        expected.backward(torch.from_numpy(dout))
        dx, dweight, *dbias = backward(dout, cache)
        assert_close(dx, tx.grad, rtol=1e-8, atol=1e-10)  # a row of length 1 with tiny eps: large, cancelling terms
        assert_close(dweight, module.weight.grad, rtol=RTOL, atol=ATOL)
        if dbias:
            assert_close(dbias[0], module.bias.grad, rtol=RTOL, atol=ATOL)


def test_norms_use_torchs_default_eps_and_keep_float32(rng):
    x = rng.normal(size=(3, 7)).astype(np.float32)
    for np_norm, torch_norm in ((npa.layer_norm, torch.nn.LayerNorm(7)), (npa.rms_norm, torch.nn.RMSNorm(7))):
        out, _ = np_norm(x)  # weight None: the module's weight is all ones, its bias zeros
        assert out.dtype == np.float32
        assert_close(out, torch_norm(torch.from_numpy(x)), rtol=RTOL32, atol=ATOL32)
    # RMSNorm's eps=None is the machine epsilon of the dtype: visible on a row of zeros plus a tiny value
    tiny = np.zeros((1, 4))
    tiny[0, 0] = 1e-9
    assert_close(
        npa.rms_norm(tiny)[0], torch.nn.RMSNorm(4, dtype=torch.float64)(torch.from_numpy(tiny)), rtol=1e-12, atol=0
    )


def test_layer_norm_output_has_zero_mean_and_unit_variance_rows(rng):
    x = rng.normal(5.0, 10.0, size=(4, 32))
    out, _ = npa.layer_norm(x, eps=1e-12)
    np.testing.assert_allclose(out.mean(axis=-1), 0.0, atol=1e-12)
    np.testing.assert_allclose(out.var(axis=-1), 1.0, rtol=1e-9)


@pytest.mark.parametrize("which", ["layer", "rms"])
def test_norm_gradients_equal_central_differences(which, rng):
    x, weight, bias = rng.normal(size=(2, 3, 5)), rng.normal(size=5), rng.normal(size=5)
    forward, backward = {
        "layer": (lambda x, w, b: npa.layer_norm(x, w, b), npa.layer_norm_backward),
        "rms": (lambda x, w, b: npa.rms_norm(x, w), npa.rms_norm_backward),
    }[which]
    out, cache = forward(x, weight, bias)
    upstream = rng.normal(size=out.shape)
    grads = backward(upstream, cache)
    inputs = (x, weight, bias)
    for index, grad in enumerate(grads):

        def loss(value, index=index):
            args = list(inputs)
            args[index] = value
            return float(np.sum(upstream * forward(*args)[0]))

        assert relative_error(grad, numerical_gradient(loss, inputs[index])) < FD_TOLERANCE


# ---- positions ----------------------------------------------------------------------------------


def test_sinusoidal_positions_have_the_known_values():
    positions = npa.sinusoidal_positions(50, 4)
    assert positions.shape == (50, 4) and positions.dtype == np.float64
    np.testing.assert_array_equal(positions[0], [0.0, 1.0, 0.0, 1.0])  # sin 0, cos 0 in every pair
    # d_model = 4: pair 0 turns at 1 radian per position, pair 1 at 1 / 10000^(2/4) = 1/100
    np.testing.assert_allclose(positions[1], [math.sin(1), math.cos(1), math.sin(0.01), math.cos(0.01)], rtol=1e-15)
    np.testing.assert_allclose(positions[37], [math.sin(37), math.cos(37), math.sin(0.37), math.cos(0.37)], rtol=1e-14)
    odd = npa.sinusoidal_positions(3, 5)  # an odd width ends with a sine column, frequency 10000^(-4/5)
    np.testing.assert_allclose(odd[2, 4], math.sin(2 / 10000 ** (4 / 5)), rtol=1e-15)
    assert npa.sinusoidal_positions(0, 6).shape == (0, 6)
    assert_close(positions, ta.sinusoidal_positions(50, 4), rtol=1e-15, atol=1e-15)


def test_sinusoidal_position_plus_offset_is_a_fixed_rotation_of_each_pair():
    """Vaswani et al.'s reason for sines: P[pos + k] is a linear function of P[pos], the same for every pos."""
    d_model, offset = 8, 5
    positions = npa.sinusoidal_positions(40, d_model)
    for i in range(d_model // 2):
        angle = offset / 10000 ** (2 * i / d_model)
        rotation = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
        pairs = positions[:, 2 * i : 2 * i + 2]
        np.testing.assert_allclose(pairs[:-offset] @ rotation, pairs[offset:], atol=1e-12)


def test_rotary_scores_depend_only_on_the_relative_position(rng):
    d, length = 8, 12
    q, k = rng.normal(size=d), rng.normal(size=d)
    positions = np.arange(length)
    # the same query and key vector at every position: any change of q_m . k_n comes from the positions
    scores = npa.rotary(np.tile(q, (length, 1)), positions) @ npa.rotary(np.tile(k, (length, 1)), positions).T
    for offset in range(-length + 1, length):
        diagonal = np.diagonal(scores, offset)
        np.testing.assert_allclose(diagonal, diagonal[0], rtol=1e-12, atol=1e-12)
    # negative control: the score does change with the offset (else the test above would be empty)
    assert np.ptp([scores[0, n] for n in range(length)]) > 1e-2
    # and without the rotation the scores do not depend on position at all
    np.testing.assert_allclose(np.tile(q, (length, 1)) @ np.tile(k, (length, 1)).T, q @ k, rtol=1e-12)


def test_rotary_preserves_norms_and_is_undone_by_its_backward(rng):
    x = rng.normal(size=(2, 3, 7, 6))
    positions = np.arange(7)
    rotated = npa.rotary(x, positions)
    np.testing.assert_allclose(np.linalg.norm(rotated, axis=-1), np.linalg.norm(x, axis=-1), rtol=1e-13)
    pair_norms = np.hypot(rotated[..., 0::2], rotated[..., 1::2])
    np.testing.assert_allclose(pair_norms, np.hypot(x[..., 0::2], x[..., 1::2]), rtol=1e-13)  # each pair too
    np.testing.assert_array_equal(npa.rotary(x[..., :1, :], [0]), x[..., :1, :])  # position 0: identity
    np.testing.assert_allclose(npa.rotary_backward(rotated, positions), x, rtol=1e-12, atol=1e-13)
    unsigned = positions.astype(np.uint32)  # the inverse must not negate unsigned positions (they would wrap)
    np.testing.assert_allclose(npa.rotary_backward(npa.rotary(x, unsigned), unsigned), x, rtol=1e-12, atol=1e-13)


def test_rotary_gradient_equals_torch_autograd_and_central_differences(rng):
    x = rng.normal(size=(2, 5, 4))
    positions = np.array([0, 3, 1, 7, 2])  # any positions, not only 0..L-1
    dout = rng.normal(size=x.shape)
    tx = leaf(x)
    expected = ta.rotary(tx, positions)
    assert_close(npa.rotary(x, positions), expected, rtol=RTOL, atol=ATOL)
    expected.backward(torch.from_numpy(dout))
    dx = npa.rotary_backward(dout, positions)
    assert_close(dx, tx.grad, rtol=RTOL, atol=ATOL)
    estimate = numerical_gradient(lambda value: float(np.sum(dout * npa.rotary(value, positions))), x)
    assert relative_error(dx, estimate) < FD_TOLERANCE


def test_rotary_pairing_equals_the_half_split_convention_up_to_a_permutation(rng):
    """GPT-NeoX / Hugging Face Llama rotate pairs (i, i + d/2) ("rotate_half"). Reordering the features
    to [0, 2, 4, ..., 1, 3, 5, ...] turns our (2i, 2i + 1) pairs into those: the two are the same map."""
    d, length = 8, 5
    x, positions = rng.normal(size=(length, d)), np.arange(length)
    perm = np.concatenate([np.arange(0, d, 2), np.arange(1, d, 2)])
    angles = positions[:, None] * 10000.0 ** (-np.arange(0, d, 2) / d)
    cos, sin = np.tile(np.cos(angles), 2), np.tile(np.sin(angles), 2)
    y = x[:, perm]
    half_split = y * cos + np.concatenate([-y[:, d // 2 :], y[:, : d // 2]], axis=1) * sin
    np.testing.assert_allclose(half_split, npa.rotary(x, positions)[:, perm], rtol=1e-13, atol=1e-13)


def test_rotary_keeps_float32(rng):
    x = rng.normal(size=(3, 4)).astype(np.float32)
    out = npa.rotary(x, np.arange(3))
    assert out.dtype == npa.rotary_backward(out, np.arange(3)).dtype == np.float32
    assert_close(out, ta.rotary(torch.from_numpy(x), np.arange(3)), rtol=RTOL32, atol=ATOL32)


# ---- blockwise attention ------------------------------------------------------------------------


@pytest.mark.parametrize("block_size", [1, 3, 4, 7, 16, 64])
@pytest.mark.parametrize("is_causal", [False, True])
@pytest.mark.parametrize(("lq", "lk"), [(16, 16), (13, 17), (17, 13)])
def test_blockwise_attention_equals_naive_forward_and_backward(block_size, is_causal, lq, lk, rng):
    q, k, v = make_qkv(rng, (2, 3), lq, lk, 5, 4)
    naive, naive_cache = npa.scaled_dot_product_attention(q, k, v, is_causal=is_causal)
    out, cache = npa.blockwise_attention(q, k, v, block_size, is_causal)
    np.testing.assert_allclose(out, naive, rtol=RTOL, atol=ATOL)
    dout = rng.normal(size=out.shape)
    for grad, expected in zip(
        npa.blockwise_attention_backward(dout, cache),
        npa.scaled_dot_product_attention_backward(dout, naive_cache),
        strict=True,
    ):
        np.testing.assert_allclose(grad, expected, rtol=RTOL, atol=ATOL)


@settings(max_examples=20, deadline=None)
@given(
    batch=st.lists(st.integers(1, 3), max_size=2).map(tuple),
    sizes=st.tuples(st.integers(1, 12), st.integers(1, 12), st.integers(1, 5), st.integers(1, 5)),
    block_size=st.integers(1, 13),
    is_causal=st.booleans(),
    scale=st.none() | st.floats(0.1, 2.0),
    seed=st.integers(0, 2**32 - 1),
)
def test_blockwise_attention_equals_torch_for_any_shape_and_block_size(
    batch, sizes, block_size, is_causal, scale, seed
):
    rng = np.random.default_rng(seed)
    lq, lk, d, dv = sizes
    q, k, v = make_qkv(rng, batch, lq, lk, d, dv)
    out, cache = npa.blockwise_attention(q, k, v, block_size, is_causal, scale)
    tq, tk, tv = leaf(q), leaf(k), leaf(v)
    expected = F.scaled_dot_product_attention(tq, tk, tv, is_causal=is_causal, scale=scale)
    assert_close(out, expected, rtol=RTOL, atol=ATOL)
    dout = rng.normal(size=out.shape)
    expected.backward(torch.from_numpy(dout))
    for grad, tensor in zip(npa.blockwise_attention_backward(dout, cache), (tq, tk, tv), strict=True):
        assert_close(grad, tensor.grad, rtol=RTOL, atol=ATOL)


def test_blockwise_attention_with_broadcast_batch_and_float32(rng):
    q, k, v = make_qkv(rng, (2, 4), 9, 11, 8, 3, np.float32, kv_batch=(2, 1))
    out, cache = npa.blockwise_attention(q, k, v, 4, is_causal=True)
    naive, naive_cache = npa.scaled_dot_product_attention(q, k, v, is_causal=True)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, naive, rtol=RTOL32, atol=ATOL32)
    dout = rng.normal(size=out.shape).astype(np.float32)
    naive_grads = npa.scaled_dot_product_attention_backward(dout, naive_cache)
    for grad, expected in zip(npa.blockwise_attention_backward(dout, cache), naive_grads, strict=True):
        assert grad.dtype == np.float32 and grad.shape == expected.shape
        np.testing.assert_allclose(grad, expected, rtol=RTOL32, atol=ATOL32)


def peak_bytes(f) -> int:
    """The largest amount of memory traced (NumPy reports its array buffers to tracemalloc) while f runs."""
    tracemalloc.start()
    try:
        f()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_blockwise_attention_never_allocates_an_lq_by_lk_array(rng):
    """At L = 1024 one (Lq, Lk) float64 matrix is 8 MiB, while q, k, v, out and their gradients are 128 KiB each
    and a (64, 64) tile 32 KiB. Naive attention's peak holds at least one such matrix (which shows that the
    measurement sees it); the blockwise forward and backward stay below a quarter of one, and so does the cache."""
    length, block = 1024, 64
    q, k, v = make_qkv(rng, (), length, length, 16, 16)
    dout = rng.normal(size=(length, 16))
    matrix = length * length * 8
    assert peak_bytes(lambda: npa.scaled_dot_product_attention(q, k, v)) >= matrix
    for is_causal in (False, True):
        _, cache = npa.blockwise_attention(q, k, v, block, is_causal)
        assert peak_bytes(lambda is_causal=is_causal: npa.blockwise_attention(q, k, v, block, is_causal)) < matrix / 4
        assert peak_bytes(lambda cache=cache: npa.blockwise_attention_backward(dout, cache)) < matrix / 4
        assert sum(a.nbytes for a in cache if isinstance(a, np.ndarray)) < matrix / 4


def test_blockwise_attention_without_the_rescaling_is_caught(rng, monkeypatch):
    """Negative control: when a later block raises a row's max, the running sum and output kept relative to
    the old max must shrink by exp(old - new). Skipping that (factor 1) still runs, but the same comparison
    with naive attention that passes above now fails, whatever the block size that splits the keys."""
    q, k, v = make_qkv(rng, (2,), 8, 12, 4, 3)
    naive, _ = npa.scaled_dot_product_attention(q, k, v)
    np.testing.assert_allclose(npa.blockwise_attention(q, k, v, 4)[0], naive, rtol=RTOL, atol=ATOL)
    monkeypatch.setattr(npa, "_rescale", lambda old_max, new_max: np.ones_like(new_max))
    for block_size in (1, 4, 5):
        assert relative_error(npa.blockwise_attention(q, k, v, block_size)[0], naive) > 1e-2
    # one block holding every key needs no rescaling: the broken version is right there, as it should be
    np.testing.assert_allclose(npa.blockwise_attention(q, k, v, 12)[0], naive, rtol=RTOL, atol=ATOL)


# ---- errors -------------------------------------------------------------------------------------


def test_clear_errors_for_bad_attention_arguments(rng):
    q, k, v = make_qkv(rng, (2,), 4, 5, 3, 6)
    sdpa = npa.scaled_dot_product_attention
    for attend in (sdpa, lambda q, k, v: npa.blockwise_attention(q, k, v, 2)):
        with pytest.raises(ValueError, match=r"q and k must have the same feature size d: q has shape \(2, 4, 3\)"):
            attend(q, k[..., :2], v)
        with pytest.raises(ValueError, match=r"v must have one row per key: .* must be \(\.\.\., 5, dv\), got shape"):
            attend(q, k, v[:, :4])
        with pytest.raises(ValueError, match=r"q must have shape \(\.\.\., Lq, d\), got shape \(3,\)"):
            attend(q[0, 0], k, v)
        with pytest.raises(TypeError, match=r"k must have the dtype of the other inputs \(float64\), got float32"):
            attend(q, k.astype(np.float32), v)
        with pytest.raises(TypeError, match="q must have a floating dtype"):
            attend(q.astype(int), k, v)
        with pytest.raises(ValueError, match=r"leading \(batch\) axes of q \(2,\), k \(3,\)"):
            attend(q, np.concatenate([k, k[:1]]), np.concatenate([v, v[:1]]))
        with pytest.raises(ValueError, match="at least one key"):
            attend(q, k[:, :0], v[:, :0])
    with pytest.raises(ValueError, match=r"mask must broadcast to .* \(2, 4, 5\), got shape \(5, 4\)"):
        sdpa(q, k, v, np.ones((5, 4), dtype=bool))
    with pytest.raises(TypeError, match="mask must be a NumPy array of dtype bool"):
        sdpa(q, k, v, np.ones((4, 5), dtype=int))
    with pytest.raises(ValueError, match="either mask or is_causal=True, not both"):
        sdpa(q, k, v, np.ones((4, 5), dtype=bool), is_causal=True)
    with pytest.raises(TypeError, match="is_causal must be True or False"):
        sdpa(q, k, v, is_causal="yes")
    with pytest.raises(TypeError, match="scale must be a real number"):
        sdpa(q, k, v, scale="0.5")
    with pytest.raises(ValueError, match=r"block_size must be >= 1, got 0"):
        npa.blockwise_attention(q, k, v, 0)
    out, cache = sdpa(q, k, v)
    with pytest.raises(ValueError, match=r"dout must have the shape of the forward output \(2, 4, 6\)"):
        npa.scaled_dot_product_attention_backward(out[..., 1:], cache)
    with pytest.raises(ValueError, match=r"expected w_q \(H, dq\) = \(H, 3\)"):
        npa.additive_attention(q, k, v, rng.normal(size=(4, 2)), rng.normal(size=(4, 3)), rng.normal(size=4))


def test_clear_errors_for_bad_multi_head_arguments(rng):
    params = npa.init_multi_head_attention(6, 2, rng)
    x = rng.normal(size=(2, 3, 6))
    mha = npa.multi_head_attention
    with pytest.raises(ValueError, match="n_heads must divide the embedding size: E = 6 is not a multiple of 4"):
        mha(x, x, x, params, 4)
    with pytest.raises(ValueError, match="n_heads must divide"):
        npa.init_multi_head_attention(6, 4, rng)
    with pytest.raises(ValueError, match="n_heads must divide"):
        ta.multihead_module(params, 4)
    with pytest.raises(ValueError, match="n_heads must divide"):
        ta.multi_head_attention(*(torch.from_numpy(x),) * 3, params, 4)
    with pytest.raises(ValueError, match=r"n_heads must be >= 1, got 0"):
        mha(x, x, x, params, 0)
    with pytest.raises(ValueError, match=r"params\['out_proj.weight'\] must have shape \(6, 6\) for embed_dim E = 6"):
        mha(x, x, x, params | {"out_proj.weight": np.zeros((6, 5))}, 2)
    with pytest.raises(ValueError, match="params must have exactly the keys"):
        mha(x, x, x, {name: params[name] for name in npa.MHA_PARAM_NAMES[:3]}, 2)
    with pytest.raises(ValueError, match=r"query \(N, Lq, E\), key and value \(N, Lk, E\) with one N and E"):
        mha(x, x[..., :4], x[..., :4], params, 2)
    with pytest.raises(ValueError, match=r"mask must be \(Lq, Lk\) .* got shape \(2, 3, 3\)"):
        mha(x, x, x, params, 2, np.ones((2, 3, 3), dtype=bool))  # (N, Lq, Lk) would meet the head axis
    with pytest.raises(ValueError, match=r"mask must be \(Lq, Lk\) .* got shape \(2, 3, 3\)"):
        tx = torch.from_numpy(x)
        ta.multi_head_attention(tx, tx, tx, params, 2, torch.ones((2, 3, 3), dtype=torch.bool))
    with pytest.raises(ValueError, match=r"query must have 3 dimension\(s\)"):
        mha(x[0], x, x, params, 2)
    with pytest.raises(ValueError, match=r"module must be torch\.nn\.MultiheadAttention"):
        ta.copy_params_to_module(params, torch.nn.MultiheadAttention(6, 2))  # batch_first=False


def test_clear_errors_for_bad_norm_and_position_arguments(rng):
    x = rng.normal(size=(2, 5))
    with pytest.raises(ValueError, match=r"weight must have shape \(E,\) = \(5,\) for x of shape \(2, 5\), got \(4,\)"):
        npa.layer_norm(x, np.ones(4))
    with pytest.raises(ValueError, match=r"bias must have shape \(E,\) = \(5,\)"):
        npa.layer_norm(x, np.ones(5), np.ones((1, 5)))
    with pytest.raises(ValueError, match="eps must be > 0"):
        npa.rms_norm(x, eps=-1.0)
    with pytest.raises(TypeError, match="weight must have the dtype of the other inputs"):
        npa.rms_norm(x, np.ones(5, dtype=np.float32))
    with pytest.raises(ValueError, match=r"x must have shape \(\.\.\., L, d\) with an even d"):
        npa.rotary(rng.normal(size=(4, 5)), np.arange(4))
    with pytest.raises(ValueError, match=r"positions must broadcast to .* \(\.\.\., L\) = \(4,\), e.g. shape \(4,\)"):
        npa.rotary(rng.normal(size=(4, 6)), np.arange(5))
    with pytest.raises(TypeError, match="positions must be integers or floats"):
        npa.rotary(rng.normal(size=(4, 6)), np.ones(4, dtype=bool))
    with pytest.raises(ValueError, match="length must be >= 0, got -1"):
        npa.sinusoidal_positions(-1, 4)
    with pytest.raises(ValueError, match="d_model must be >= 1, got 0"):
        npa.sinusoidal_positions(3, 0)


# ---- the torch twin -----------------------------------------------------------------------------

TWINNED = [
    "additive_attention",
    "blockwise_attention",
    "causal_mask",
    "init_multi_head_attention",
    "layer_norm",
    "multi_head_attention",
    "rms_norm",
    "rotary",
    "scaled_dot_product_attention",
    "sinusoidal_positions",
]


@pytest.mark.parametrize("name", TWINNED)
def test_twins_share_names_and_signatures(name):
    np_params = inspect.signature(getattr(npa, name)).parameters
    torch_params = inspect.signature(getattr(ta, name)).parameters
    assert [(p.name, p.default) for p in np_params.values()] == [(p.name, p.default) for p in torch_params.values()]


def test_twins_give_the_same_outputs(rng):
    q, k, v = make_qkv(rng, (2, 3), 5, 6, 4, 4)
    mask = rng.random((5, 6)) > 0.3
    tq, tk, tv, tmask = (torch.from_numpy(a) for a in (q, k, v, mask))
    assert_close(
        npa.scaled_dot_product_attention(q, k, v, mask)[0],
        ta.scaled_dot_product_attention(tq, tk, tv, tmask),
        rtol=RTOL,
        atol=ATOL,
    )
    assert_close(
        npa.blockwise_attention(q, k, v, 2, True)[0], ta.blockwise_attention(tq, tk, tv, 2, True), rtol=RTOL, atol=ATOL
    )
    x, weight, bias = rng.normal(size=(3, 4)), rng.normal(size=4), rng.normal(size=4)
    tx, tw, tb = (torch.from_numpy(a) for a in (x, weight, bias))
    assert_close(npa.layer_norm(x, weight, bias)[0], ta.layer_norm(tx, tw, tb), rtol=RTOL, atol=ATOL)
    assert_close(npa.rms_norm(x, weight)[0], ta.rms_norm(tx, tw), rtol=RTOL, atol=ATOL)
    np.testing.assert_array_equal(npa.causal_mask(3, 5), ta.causal_mask(3, 5).numpy())
