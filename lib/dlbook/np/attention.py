"""Attention and the other pieces of a transformer block in NumPy, as pure forward/backward pairs
(chapter "Attention and transformers").

Scaled dot-product attention (Vaswani et al. 2017), as `torch.nn.functional.scaled_dot_product_attention`:

    scores = q k^T * scale    (..., Lq, Lk), scale = 1 / sqrt(d) unless given
    weights = softmax(scores over the keys, masked)
    out = weights v           (..., Lq, dv)

with q (..., Lq, d), k (..., Lk, d), v (..., Lk, dv); the leading (batch, head) axes "..." may be of
any rank and are broadcast against each other. Masks follow torch exactly: a boolean mask says which
keys a query may attend to (True = attend), a float mask is added to the scores, and either broadcasts
to (..., Lq, Lk); is_causal lets query i attend to keys 0..i only (the top-left-aligned lower triangle,
also when Lq != Lk) and, as in torch, cannot be combined with an explicit mask (combine them yourself:
mask & causal_mask(Lq, Lk)). A masked key gets a weight of exactly 0, so neither it nor its value
receives any gradient. A query whose keys are all masked gets all-zero weights, a zero output and zero
gradients, which is what torch (since 2.5) returns too; an unguarded softmax would give 0/0 = NaN.

The backward pass of attention uses dweights = dout v^T and the softmax Jacobian,

    dscores = weights * (dweights - rowsum(dweights * weights)),

where rowsum(dweights * weights) = rowsum(dout * out), an (Lq,) vector computed from (Lq, dv)
arrays instead of (Lq, Lk) ones (the identity FlashAttention uses). Then dq = scale dscores k,
dk = scale dscores^T q and dv = weights^T dout.

Also here:
- `additive_attention`: Bahdanau et al. (2015), score(q, k) = w_score . tanh(W_q q + W_k k), for comparison.
- `multi_head_attention`: torch.nn.MultiheadAttention (batch_first=True) with its parameter names and
  shapes, so a state_dict loads as it is; `init_multi_head_attention` draws them as torch does.
- `layer_norm`, `rms_norm`: over the last axis, as torch.nn.LayerNorm(E) and torch.nn.RMSNorm(E).
- `sinusoidal_positions`, `rotary`: absolute (Vaswani et al. 2017) and rotary (Su et al. 2021) positions.
- `blockwise_attention`: the same attention computed one (block, block) tile of scores at a time with
  an online softmax (Milakov and Gimelshein 2018; the idea behind FlashAttention, Dao et al. 2022),
  never holding the full (Lq, Lk) matrix; its backward recomputes the tiles.

Everything works in float32 and float64 and keeps the dtype of its inputs. No function modifies its
arguments.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from dlbook._validation import require_bool, require_float_array, require_int, require_positive, require_real

__all__ = [
    "MHA_PARAM_NAMES",
    "AdditiveCache",
    "AttentionCache",
    "BlockwiseCache",
    "LayerNormCache",
    "MultiHeadCache",
    "RMSNormCache",
    "additive_attention",
    "additive_attention_backward",
    "blockwise_attention",
    "blockwise_attention_backward",
    "causal_mask",
    "init_multi_head_attention",
    "layer_norm",
    "layer_norm_backward",
    "multi_head_attention",
    "multi_head_attention_backward",
    "rms_norm",
    "rms_norm_backward",
    "rotary",
    "rotary_backward",
    "scaled_dot_product_attention",
    "scaled_dot_product_attention_backward",
    "sinusoidal_positions",
]

# The keys and layout of torch.nn.MultiheadAttention's state_dict (bias=True, kdim = vdim = E).
MHA_PARAM_NAMES = ("in_proj_weight", "in_proj_bias", "out_proj.weight", "out_proj.bias")


# ---- checks and shared pieces -------------------------------------------------------------------


def _require_matrices(name: str, value: object, rows: str, cols: str) -> np.ndarray:
    """A float array with at least two axes, (..., rows, cols)."""
    value = require_float_array(name, value)
    if value.ndim < 2:
        raise ValueError(f"{name} must have shape (..., {rows}, {cols}), got shape {value.shape}")
    return value


def _require_same_dtype(dtype: np.dtype, **arrays: np.ndarray | None) -> None:
    for name, array in arrays.items():
        if array is not None and array.dtype != dtype:
            raise TypeError(f"{name} must have the dtype of the other inputs ({dtype}), got {array.dtype}")


def _check_qkv(q: object, k: object, v: object) -> tuple[np.ndarray, np.ndarray, np.ndarray, tuple[int, ...]]:
    """Check q (..., Lq, d), k (..., Lk, d), v (..., Lk, dv); return them and the broadcast batch shape."""
    q = _require_matrices("q", q, "Lq", "d")
    k = _require_matrices("k", k, "Lk", "d")
    if k.shape[-1] != q.shape[-1]:
        raise ValueError(
            f"q and k must have the same feature size d: q has shape {q.shape} (..., Lq, d), "
            f"k has shape {k.shape} (..., Lk, d)"
        )
    v, batch = _check_values(q, k, v)
    return q, k, v, batch


def _check_values(q: np.ndarray, k: np.ndarray, v: object) -> tuple[np.ndarray, tuple[int, ...]]:
    """Check v (..., Lk, dv) against the keys k (..., Lk, dk) and the dtype of q; return v and the batch
    shape that the leading axes of q, k and v broadcast to."""
    v = _require_matrices("v", v, "Lk", "dv")
    _require_same_dtype(q.dtype, k=k, v=v)
    if v.shape[-2] != k.shape[-2]:
        raise ValueError(
            f"v must have one row per key: k has shape {k.shape} (..., Lk, d), so v must be (..., {k.shape[-2]}, dv), "
            f"got shape {v.shape}"
        )
    if k.shape[-2] == 0:
        raise ValueError(f"attention needs at least one key, got k of shape {k.shape}")
    try:
        batch = np.broadcast_shapes(q.shape[:-2], k.shape[:-2], v.shape[:-2])
    except ValueError:
        raise ValueError(
            f"the leading (batch) axes of q {q.shape[:-2]}, k {k.shape[:-2]} and v {v.shape[:-2]} do not broadcast"
        ) from None
    return v, batch


def _check_mask(mask: object, is_causal: object, weights_shape: tuple[int, ...]) -> tuple[np.ndarray | None, bool]:
    is_causal = require_bool("is_causal", is_causal)
    if mask is None:
        return None, is_causal
    if is_causal:
        raise ValueError(
            "give either mask or is_causal=True, not both (as in torch); to combine them pass "
            "mask & causal_mask(Lq, Lk) for a boolean mask"
        )
    if not isinstance(mask, np.ndarray) or not (mask.dtype == np.bool_ or np.issubdtype(mask.dtype, np.floating)):
        described = f"dtype {mask.dtype}" if isinstance(mask, np.ndarray) else type(mask).__name__
        raise TypeError(f"mask must be a NumPy array of dtype bool (True = attend) or float (added), got {described}")
    try:
        fits = np.broadcast_shapes(mask.shape, weights_shape) == weights_shape
    except ValueError:
        fits = False
    if not fits:
        raise ValueError(
            f"mask must broadcast to the shape of the attention weights (..., Lq, Lk) = {weights_shape}, "
            f"got shape {mask.shape}"
        )
    return mask, is_causal


def _check_dout(dout: object, expected_shape: tuple[int, ...]) -> np.ndarray:
    dout = require_float_array("dout", dout)
    if dout.shape != expected_shape:
        raise ValueError(f"dout must have the shape of the forward output {expected_shape}, got {dout.shape}")
    return dout


def _scale_for(scale: object, d: int) -> float:
    return 1.0 / math.sqrt(d) if scale is None else require_real("scale", scale)


def _sum_to_shape(grad: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Undo broadcasting: sum grad over the axes along which an input of `shape` was repeated."""
    if grad.ndim > len(shape):
        grad = grad.sum(axis=tuple(range(grad.ndim - len(shape))))
    repeated = tuple(axis for axis, size in enumerate(shape) if size == 1 and grad.shape[axis] != 1)
    return grad.sum(axis=repeated, keepdims=True) if repeated else grad


def _row_sum(a: np.ndarray) -> np.ndarray:
    """The sum over the last axis, keeping it: (..., n) -> (..., 1). A matrix-vector product with a vector of
    ones sums the rows with BLAS, several times faster than a.sum(axis=-1, keepdims=True) on short rows."""
    return (a @ np.ones(a.shape[-1], dtype=a.dtype))[..., None]


def _row_dot(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """sum(a * b) over the last axis, keeping it: (..., n) -> (..., 1), by einsum, without an (..., n) temporary."""
    return np.einsum("...i,...i->...", a, b)[..., None]


def causal_mask(lq: int, lk: int) -> np.ndarray:
    """The boolean causal mask (lq, lk): True where key j <= query i, i.e. query i attends to keys 0..i.

    The lower triangle aligned at the top left, as torch's is_causal=True, also when lq != lk.
    """
    lq, lk = require_int("lq", lq), require_int("lk", lk)
    return np.tri(lq, lk, dtype=bool)


def _mask_scores(scores: np.ndarray, mask: np.ndarray | None, is_causal: bool) -> None:
    """Apply a mask to scores (..., Lq, Lk) in place: -inf where a key may not be attended to."""
    if is_causal:
        np.copyto(scores, -np.inf, where=~causal_mask(*scores.shape[-2:]))
    elif mask is not None and mask.dtype == np.bool_:
        np.copyto(scores, -np.inf, where=~mask)
    elif mask is not None:
        scores += mask  # a float mask is added, as in torch (its -inf entries mask)


def _softmax_(scores: np.ndarray) -> np.ndarray:
    """Softmax over the last axis, in place, returned. Stable: exp never sees a positive number.

    Masked scores are -inf and get exactly 0. A row that is -inf everywhere (every key masked) has
    max -inf, and -inf - (-inf) is NaN, so its max is replaced by 0 and its sum, 0, by 1: its weights
    stay exactly 0.
    """
    row_max = scores.max(axis=-1, keepdims=True)
    row_max[np.isneginf(row_max)] = 0.0
    scores -= row_max
    np.exp(scores, out=scores)
    total = _row_sum(scores)
    total[total == 0] = 1.0
    scores /= total
    return scores


def _softmax_backward_(dweights: np.ndarray, weights: np.ndarray, dout: np.ndarray, out: np.ndarray) -> np.ndarray:
    """dscores = weights * (dweights - rowsum(dweights * weights)), computed in place in dweights.

    For out = weights v: rowsum(dweights * weights) = rowsum(dout * out), a sum over dv entries
    instead of Lk, so the (Lq, Lk) product dweights * weights is never formed.
    """
    dweights -= _row_dot(dout, out)
    dweights *= weights
    return dweights


# ---- scaled dot-product attention ---------------------------------------------------------------


class AttentionCache(NamedTuple):
    """What `scaled_dot_product_attention_backward` needs; `weights` is there to be drawn, too."""

    q: np.ndarray  # (..., Lq, d)
    k: np.ndarray  # (..., Lk, d)
    v: np.ndarray  # (..., Lk, dv)
    weights: np.ndarray  # (..., Lq, Lk): softmax of the masked scores; each row sums to 1 (or is all 0)
    out: np.ndarray  # (..., Lq, dv)
    scale: float


def scaled_dot_product_attention(
    q: np.ndarray,
    k: np.ndarray,
    v: np.ndarray,
    mask: np.ndarray | None = None,
    is_causal: bool = False,
    scale: float | None = None,
) -> tuple[np.ndarray, AttentionCache]:
    """softmax(q k^T * scale, masked) v, as torch.nn.functional.scaled_dot_product_attention.

    q: (..., Lq, d), k: (..., Lk, d), v: (..., Lk, dv), one float dtype; leading axes broadcast.
    mask: None, bool (True = attend) or float (added to the scores), broadcastable to (..., Lq, Lk).
    is_causal: query i attends to keys 0..i (not together with mask). scale: defaults to 1 / sqrt(d).
    Returns out: (..., Lq, dv) and the cache for the backward, whose .weights (..., Lq, Lk) are the
    attention weights.
    """
    q, k, v, batch = _check_qkv(q, k, v)
    mask, is_causal = _check_mask(mask, is_causal, (*batch, q.shape[-2], k.shape[-2]))
    scale = _scale_for(scale, q.shape[-1])
    # scale q (Lq x d numbers) rather than the scores (Lq x Lk); one batched matrix product for all heads
    scores = np.matmul(q * scale, k.swapaxes(-1, -2))  # (..., Lq, Lk)
    _mask_scores(scores, mask, is_causal)
    weights = _softmax_(scores)  # the same memory: softmax in place
    out = np.matmul(weights, v)  # (..., Lq, dv)
    return out, AttentionCache(q, k, v, weights, out, scale)


def scaled_dot_product_attention_backward(
    dout: np.ndarray, cache: AttentionCache
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The gradients of `scaled_dot_product_attention`: dout (..., Lq, dv) -> dq, dk, dv, of the shapes
    of q, k, v (summed over the axes along which they were broadcast)."""
    q, k, v, weights, out, scale = cache
    dout = _check_dout(dout, out.shape)
    dv = np.matmul(weights.swapaxes(-1, -2), dout)  # (..., Lk, dv)
    dscores = _softmax_backward_(np.matmul(dout, v.swapaxes(-1, -2)), weights, dout, out)  # (..., Lq, Lk)
    dq = np.matmul(dscores, k)  # (..., Lq, d); the scale is applied to the smaller result
    dq *= scale
    dk = np.matmul(dscores.swapaxes(-1, -2), q)  # (..., Lk, d)
    dk *= scale
    return _sum_to_shape(dq, q.shape), _sum_to_shape(dk, k.shape), _sum_to_shape(dv, v.shape)


# ---- additive (Bahdanau) attention --------------------------------------------------------------


class AdditiveCache(NamedTuple):
    """What `additive_attention_backward` needs."""

    q: np.ndarray  # (..., Lq, dq)
    k: np.ndarray  # (..., Lk, dk)
    v: np.ndarray  # (..., Lk, dv)
    w_q: np.ndarray  # (H, dq)
    w_k: np.ndarray  # (H, dk)
    w_score: np.ndarray  # (H,)
    hidden: np.ndarray  # (..., Lq, Lk, H): tanh(W_q q_i + W_k k_j) for every pair
    weights: np.ndarray  # (..., Lq, Lk)
    out: np.ndarray  # (..., Lq, dv)


def additive_attention(
    q: np.ndarray,
    k: np.ndarray,
    v: np.ndarray,
    w_q: np.ndarray,
    w_k: np.ndarray,
    w_score: np.ndarray,
    mask: np.ndarray | None = None,
    is_causal: bool = False,
) -> tuple[np.ndarray, AdditiveCache]:
    """Additive attention (Bahdanau et al. 2015): scores[i, j] = w_score . tanh(W_q q_i + W_k k_j).

    q: (..., Lq, dq), k: (..., Lk, dk), v: (..., Lk, dv); w_q: (H, dq) and w_k: (H, dk), laid out as
    the weight of torch.nn.Linear(dq, H, bias=False); w_score: (H,). mask and is_causal as in
    `scaled_dot_product_attention`. Returns out (..., Lq, dv) and the cache (with .weights).

    A small network scores every (query, key) pair, so it holds an (..., Lq, Lk, H) array where dot-product
    attention needs one matrix product; q and k need not have the same size.
    """
    q = _require_matrices("q", q, "Lq", "dq")
    k = _require_matrices("k", k, "Lk", "dk")
    w_q = require_float_array("w_q", w_q, ndim=2)
    w_k = require_float_array("w_k", w_k, ndim=2)
    w_score = require_float_array("w_score", w_score, ndim=1)
    if w_q.shape[1] != q.shape[-1] or w_k.shape != (w_q.shape[0], k.shape[-1]) or w_score.shape != w_q.shape[:1]:
        raise ValueError(
            f"expected w_q (H, dq) = (H, {q.shape[-1]}), w_k (H, dk) = (H, {k.shape[-1]}) and w_score (H,) with "
            f"one H, got w_q {w_q.shape}, w_k {w_k.shape}, w_score {w_score.shape}"
        )
    _require_same_dtype(q.dtype, w_q=w_q, w_k=w_k, w_score=w_score)
    v, batch = _check_values(q, k, v)  # q and k may differ in size here
    mask, is_causal = _check_mask(mask, is_causal, (*batch, q.shape[-2], k.shape[-2]))
    hidden = np.tanh((q @ w_q.T)[..., :, None, :] + (k @ w_k.T)[..., None, :, :])  # (..., Lq, Lk, H)
    scores = hidden @ w_score  # (..., Lq, Lk)
    _mask_scores(scores, mask, is_causal)
    weights = _softmax_(scores)
    out = np.matmul(weights, v)  # (..., Lq, dv)
    return out, AdditiveCache(q, k, v, w_q, w_k, w_score, hidden, weights, out)


def additive_attention_backward(
    dout: np.ndarray, cache: AdditiveCache
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The gradients of `additive_attention`: dout (..., Lq, dv) -> dq, dk, dv, dw_q, dw_k, dw_score."""
    q, k, v, w_q, w_k, w_score, hidden, weights, out = cache
    dout = _check_dout(dout, out.shape)
    dv = np.matmul(weights.swapaxes(-1, -2), dout)  # (..., Lk, dv)
    dscores = _softmax_backward_(np.matmul(dout, v.swapaxes(-1, -2)), weights, dout, out)  # (..., Lq, Lk)
    n_hidden = w_score.shape[0]
    dw_score = dscores.reshape(-1) @ hidden.reshape(-1, n_hidden)  # (H,): sum over every pair
    dpre = dscores[..., None] * w_score  # (..., Lq, Lk, H): through the dot product with w_score
    dpre *= 1.0 - hidden * hidden  # through tanh: tanh' = 1 - tanh^2
    dq_proj = dpre.sum(axis=-2)  # (..., Lq, H): each query's projection was added to Lk pairs
    dk_proj = dpre.sum(axis=-3)  # (..., Lk, H)
    q_full = np.broadcast_to(q, (*dq_proj.shape[:-1], q.shape[-1]))  # q as it met every batch entry
    k_full = np.broadcast_to(k, (*dk_proj.shape[:-1], k.shape[-1]))
    dw_q = dq_proj.reshape(-1, n_hidden).T @ q_full.reshape(-1, q.shape[-1])  # (H, dq)
    dw_k = dk_proj.reshape(-1, n_hidden).T @ k_full.reshape(-1, k.shape[-1])  # (H, dk)
    dq = _sum_to_shape(dq_proj @ w_q, q.shape)
    dk = _sum_to_shape(dk_proj @ w_k, k.shape)
    return dq, dk, _sum_to_shape(dv, v.shape), dw_q, dw_k, dw_score


# ---- multi-head attention -----------------------------------------------------------------------


def _check_mha_params(params: object, embed_dim: int, dtype: np.dtype) -> dict[str, np.ndarray]:
    if not isinstance(params, dict):
        raise TypeError(f"params must be a dict with the keys {MHA_PARAM_NAMES}, got {type(params).__name__}")
    if set(params) != set(MHA_PARAM_NAMES):
        raise ValueError(f"params must have exactly the keys {MHA_PARAM_NAMES}, got {tuple(params)}")
    e = embed_dim
    expected = {
        "in_proj_weight": (3 * e, e),
        "in_proj_bias": (3 * e,),
        "out_proj.weight": (e, e),
        "out_proj.bias": (e,),
    }
    for name, shape in expected.items():
        array = require_float_array(f"params[{name!r}]", params[name])
        if array.shape != shape:
            raise ValueError(f"params[{name!r}] must have shape {shape} for embed_dim E = {e}, got {array.shape}")
        if array.dtype != dtype:
            raise TypeError(f"params[{name!r}] must have the dtype of the inputs ({dtype}), got {array.dtype}")
    return params


def _check_heads(n_heads: object, embed_dim: int) -> int:
    n_heads = require_int("n_heads", n_heads, minimum=1)
    if embed_dim % n_heads:
        raise ValueError(f"n_heads must divide the embedding size: E = {embed_dim} is not a multiple of {n_heads}")
    return n_heads


def init_multi_head_attention(embed_dim: int, n_heads: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Parameters for `multi_head_attention`, float64, drawn from `rng` as torch.nn.MultiheadAttention draws them.

    in_proj_weight (3E, E): Glorot uniform over the whole (3E, E) matrix, U(-b, b) with b = sqrt(6 / (E + 3E));
    out_proj.weight (E, E): torch.nn.Linear's default, U(-1/sqrt(E), 1/sqrt(E)); both biases zero.
    The same distributions as torch, not the same numbers (those depend on the generator).
    """
    embed_dim = require_int("embed_dim", embed_dim, minimum=1)
    _check_heads(n_heads, embed_dim)
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a np.random.Generator, e.g. np.random.default_rng(0), got {type(rng).__name__}")
    in_bound, out_bound = math.sqrt(6 / (4 * embed_dim)), 1 / math.sqrt(embed_dim)
    return {
        "in_proj_weight": rng.uniform(-in_bound, in_bound, size=(3 * embed_dim, embed_dim)),
        "in_proj_bias": np.zeros(3 * embed_dim),
        "out_proj.weight": rng.uniform(-out_bound, out_bound, size=(embed_dim, embed_dim)),
        "out_proj.bias": np.zeros(embed_dim),
    }


def _linear(x: np.ndarray, weight: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """x (..., in) @ weight^T (in, out) + bias, as torch.nn.functional.linear, by one 2-D matrix product."""
    rows = x.reshape(-1, x.shape[-1]) @ weight.T
    rows += bias
    return rows.reshape(*x.shape[:-1], weight.shape[0])


def _linear_backward(dy: np.ndarray, x: np.ndarray, weight: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """dy (..., out) -> dx (..., in), dweight (out, in), dbias (out,)."""
    dy_rows, x_rows = dy.reshape(-1, dy.shape[-1]), x.reshape(-1, x.shape[-1])
    return (dy_rows @ weight).reshape(x.shape), dy_rows.T @ x_rows, dy_rows.sum(axis=0)


def _split_heads(x: np.ndarray, n_heads: int) -> np.ndarray:
    """(N, L, E) -> (N, H, L, E/H), a view: head h owns features h*E/H .. (h+1)*E/H - 1."""
    n, length, embed = x.shape
    return x.reshape(n, length, n_heads, embed // n_heads).transpose(0, 2, 1, 3)


def _merge_heads(x: np.ndarray) -> np.ndarray:
    """(N, H, L, E/H) -> (N, L, E), the heads side by side (a copy)."""
    n, n_heads, length, head_dim = x.shape
    return x.transpose(0, 2, 1, 3).reshape(n, length, n_heads * head_dim)


class MultiHeadCache(NamedTuple):
    """What `multi_head_attention_backward` needs; attention.weights (N, H, Lq, Lk) holds every head's weights."""

    query: np.ndarray  # (N, Lq, E)
    key: np.ndarray  # (N, Lk, E)
    value: np.ndarray  # (N, Lk, E)
    params: dict[str, np.ndarray]
    attention: AttentionCache  # of the per-head attention, q (N, H, Lq, E/H), ...
    concat: np.ndarray  # (N, Lq, E): the heads' outputs side by side, the input of out_proj


def multi_head_attention(
    query: np.ndarray,
    key: np.ndarray,
    value: np.ndarray,
    params: dict[str, np.ndarray],
    n_heads: int,
    mask: np.ndarray | None = None,
    is_causal: bool = False,
) -> tuple[np.ndarray, MultiHeadCache]:
    """Multi-head attention, as torch.nn.MultiheadAttention(E, n_heads, batch_first=True).

    query: (N, Lq, E), key and value: (N, Lk, E); params: the four arrays of MHA_PARAM_NAMES, shaped as
    torch's state_dict. The projections q = query W_q^T + b_q (and k, v alike; W_q, W_k, W_v are the three
    E-row blocks of in_proj_weight) are split into n_heads heads of E / n_heads features; each head
    attends on its own (`scaled_dot_product_attention`); the heads' outputs, side by side, go through
    out_proj. mask and is_causal as in `scaled_dot_product_attention`, broadcast to (N, H, Lq, Lk).

    Careful: torch.nn.MultiheadAttention's own attn_mask means the opposite for booleans (True = may NOT
    attend); this function uses the convention of scaled_dot_product_attention (True = attend).
    Returns out (N, Lq, E) and the cache; torch's averaged weights are cache.attention.weights.mean(axis=1).
    """
    query = require_float_array("query", query, ndim=3)
    key = require_float_array("key", key, ndim=3)
    value = require_float_array("value", value, ndim=3)
    _require_same_dtype(query.dtype, key=key, value=value)
    embed = query.shape[2]
    if key.shape[0] != query.shape[0] or key.shape[2] != embed or value.shape != key.shape:
        raise ValueError(
            f"expected query (N, Lq, E), key and value (N, Lk, E) with one N and E: got query {query.shape}, "
            f"key {key.shape}, value {value.shape}"
        )
    n_heads = _check_heads(n_heads, embed)
    params = _check_mha_params(params, embed, query.dtype)
    if isinstance(mask, np.ndarray) and mask.ndim not in (2, 4):
        # a 3-D mask would broadcast its N against the head axis: refuse it rather than misalign it
        raise ValueError(
            f"mask must be (Lq, Lk) for every sequence and head, or (N, 1, Lq, Lk) or (N, H, Lq, Lk), "
            f"got shape {mask.shape}"
        )
    w_in, b_in = params["in_proj_weight"], params["in_proj_bias"]
    q, k, v = (
        _split_heads(_linear(x, w_in[i * embed : (i + 1) * embed], b_in[i * embed : (i + 1) * embed]), n_heads)
        for i, x in enumerate((query, key, value))
    )  # each (N, H, L, E/H)
    heads, attention = scaled_dot_product_attention(q, k, v, mask, is_causal)  # (N, H, Lq, E/H)
    concat = _merge_heads(heads)  # (N, Lq, E)
    out = _linear(concat, params["out_proj.weight"], params["out_proj.bias"])
    return out, MultiHeadCache(query, key, value, params, attention, concat)


def multi_head_attention_backward(
    dout: np.ndarray, cache: MultiHeadCache
) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """The gradients of `multi_head_attention`: dout (N, Lq, E) -> dquery, dkey, dvalue and a dict of the
    parameters' gradients under the names of MHA_PARAM_NAMES.

    For self-attention (query, key and value the same array x) the gradient of x is dquery + dkey + dvalue.
    """
    query, key, value, params, attention, concat = cache
    dout = _check_dout(dout, query.shape)
    embed, n_heads = query.shape[2], attention.q.shape[1]
    dconcat, dw_out, db_out = _linear_backward(dout, concat, params["out_proj.weight"])
    dheads = scaled_dot_product_attention_backward(_split_heads(dconcat, n_heads), attention)
    w_in = params["in_proj_weight"]
    dinputs, dweights, dbiases = [], [], []
    for i, (x, dhead) in enumerate(zip((query, key, value), dheads, strict=True)):
        dx, dweight, dbias = _linear_backward(_merge_heads(dhead), x, w_in[i * embed : (i + 1) * embed])
        dinputs.append(dx)
        dweights.append(dweight)
        dbiases.append(dbias)
    grads = {
        "in_proj_weight": np.concatenate(dweights),  # the q, k, v blocks stacked as in in_proj_weight
        "in_proj_bias": np.concatenate(dbiases),
        "out_proj.weight": dw_out,
        "out_proj.bias": db_out,
    }
    return dinputs[0], dinputs[1], dinputs[2], grads


# ---- normalisation over the last axis -----------------------------------------------------------


def _check_norm(x: object, weight: object, bias: object, eps: object) -> tuple:
    x = require_float_array("x", x)
    if x.ndim == 0:
        raise ValueError("x must have at least one axis, (..., E), got a 0-d array")
    for name, param in (("weight", weight), ("bias", bias)):
        if param is not None and require_float_array(name, param).shape != x.shape[-1:]:
            raise ValueError(
                f"{name} must have shape (E,) = ({x.shape[-1]},) for x of shape {x.shape}, got {param.shape}"
            )
    _require_same_dtype(x.dtype, weight=weight, bias=bias)
    eps = np.finfo(x.dtype).eps if eps is None else require_positive("eps", eps)
    return x, weight, bias, eps


def _param_grads(dout: np.ndarray, xhat: np.ndarray, has_weight: bool, has_bias: bool) -> tuple:
    """dweight = sum of dout * xhat and dbias = sum of dout over every position but the last axis (or None)."""
    rows, features = dout.reshape(-1, dout.shape[-1]), xhat.reshape(-1, xhat.shape[-1])
    dweight = np.einsum("ne,ne->e", rows, features) if has_weight else None
    dbias = np.ones(rows.shape[0], dtype=rows.dtype) @ rows if has_bias else None
    return dweight, dbias


class LayerNormCache(NamedTuple):
    """What `layer_norm_backward` needs. Like torch, it keeps x and two numbers per row, not the normalised x."""

    x: np.ndarray  # (..., E)
    mean: np.ndarray  # (..., 1)
    inv_std: np.ndarray  # (..., 1): 1 / sqrt(var + eps)
    weight: np.ndarray | None  # (E,)
    has_bias: bool


def layer_norm(
    x: np.ndarray, weight: np.ndarray | None = None, bias: np.ndarray | None = None, eps: float = 1e-5
) -> tuple[np.ndarray, LayerNormCache]:
    """Layer normalisation over the last axis, as torch.nn.LayerNorm(E) (Ba et al. 2016).

    out = (x - mean) / sqrt(var + eps) * weight + bias, with the mean and the biased variance of each
    row (..., :). x: (..., E); weight, bias: (E,) or None (no scale, no shift). Returns out (..., E), cache.
    """
    x, weight, bias, eps = _check_norm(x, weight, bias, eps)
    mean = _row_sum(x) / x.shape[-1]
    out = x - mean  # centred; the later steps work in place in this one new array
    inv_std = 1.0 / np.sqrt(_row_dot(out, out) / x.shape[-1] + eps)  # (..., 1)
    out *= inv_std  # xhat
    if weight is not None:
        out *= weight
    if bias is not None:
        out += bias
    return out, LayerNormCache(x, mean, inv_std, weight, bias is not None)


def layer_norm_backward(
    dout: np.ndarray, cache: LayerNormCache
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """The gradients of `layer_norm`: dout (..., E) -> dx (..., E), dweight (E,), dbias (E,) (None when absent).

    xhat = (x - mean) * inv_std moves with x directly, through the mean and through the std:
    dx = inv_std * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat)), means over the row, dxhat = dout * weight.
    """
    x, mean, inv_std, weight, has_bias = cache
    dout = _check_dout(dout, x.shape)
    xhat = x - mean
    xhat *= inv_std  # recomputed rather than stored, as torch does
    dweight, dbias = _param_grads(dout, xhat, weight is not None, has_bias)
    dx = dout * weight if weight is not None else dout.copy()  # dxhat, turned into dx in place
    dx_mean, dx_xhat_mean = _row_sum(dx) / x.shape[-1], _row_dot(dx, xhat) / x.shape[-1]
    xhat *= dx_xhat_mean
    dx -= xhat
    dx -= dx_mean
    dx *= inv_std
    return dx, dweight, dbias


class RMSNormCache(NamedTuple):
    """What `rms_norm_backward` needs: x and one number per row."""

    x: np.ndarray  # (..., E)
    inv_rms: np.ndarray  # (..., 1): 1 / sqrt(mean(x^2) + eps)
    weight: np.ndarray | None  # (E,)


def rms_norm(
    x: np.ndarray, weight: np.ndarray | None = None, eps: float | None = None
) -> tuple[np.ndarray, RMSNormCache]:
    """RMS normalisation over the last axis, as torch.nn.RMSNorm(E) (Zhang and Sennrich 2019).

    out = x / sqrt(mean(x^2) + eps) * weight: layer norm without centring and without a bias.
    x: (..., E); weight: (E,) or None; eps: None means the machine epsilon of x's dtype, torch's default.
    Returns out (..., E) and the cache.
    """
    x, weight, _, eps = _check_norm(x, weight, None, eps)
    inv_rms = 1.0 / np.sqrt(_row_dot(x, x) / x.shape[-1] + eps)  # (..., 1)
    out = x * inv_rms  # xhat
    if weight is not None:
        out *= weight
    return out, RMSNormCache(x, inv_rms, weight)


def rms_norm_backward(dout: np.ndarray, cache: RMSNormCache) -> tuple[np.ndarray, np.ndarray | None]:
    """The gradients of `rms_norm`: dout (..., E) -> dx (..., E), dweight (E,) or None.

    As for layer norm without the mean: dx = inv_rms * (dxhat - xhat * mean(dxhat * xhat)).
    """
    x, inv_rms, weight = cache
    dout = _check_dout(dout, x.shape)
    xhat = x * inv_rms
    dweight, _ = _param_grads(dout, xhat, weight is not None, False)
    dx = dout * weight if weight is not None else dout.copy()  # dxhat, turned into dx in place
    xhat *= _row_dot(dx, xhat) / x.shape[-1]
    dx -= xhat
    dx *= inv_rms
    return dx, dweight


# ---- positions ----------------------------------------------------------------------------------


def sinusoidal_positions(length: int, d_model: int, base: float = 10000.0) -> np.ndarray:
    """The sinusoidal position encodings of Vaswani et al. (2017), float64 (length, d_model):

        P[pos, 2i] = sin(pos / base^(2i / d_model)),  P[pos, 2i + 1] = cos(pos / base^(2i / d_model)).

    Each pair of columns is a clock turning at its own frequency, from 1 radian per position (i = 0)
    down to about 1 / base; an odd d_model ends with a sine column. Cast with .astype for float32.
    """
    length, d_model = require_int("length", length), require_int("d_model", d_model, minimum=1)
    base = require_positive("base", base)
    pair = np.arange(d_model) // 2  # column j belongs to frequency i = j // 2
    angles = np.arange(length)[:, None] / base ** (2 * pair / d_model)  # (length, d_model)
    return np.where(np.arange(d_model) % 2 == 0, np.sin(angles), np.cos(angles))


def _rotation(x: np.ndarray, positions: object, base: object) -> tuple[np.ndarray, np.ndarray]:
    """cos and sin of the angles positions * theta_i, theta_i = base^(-2i/d): (..., L, d/2), x's dtype."""
    x = require_float_array("x", x)
    if x.ndim < 2 or x.shape[-1] % 2:
        raise ValueError(f"x must have shape (..., L, d) with an even d (features rotate in pairs), got {x.shape}")
    base = require_positive("base", base)
    positions = np.asarray(positions)
    if not (np.issubdtype(positions.dtype, np.integer) or np.issubdtype(positions.dtype, np.floating)):
        raise TypeError(f"positions must be integers or floats, got dtype {positions.dtype}")
    try:
        fits = np.broadcast_shapes(positions.shape, x.shape[:-1]) == x.shape[:-1]
    except ValueError:
        fits = False
    if not fits:
        raise ValueError(
            f"positions must broadcast to x's shape without its feature axis, (..., L) = {x.shape[:-1]}, "
            f"e.g. shape ({x.shape[-2]},); got shape {positions.shape}"
        )
    theta = base ** (-np.arange(0, x.shape[-1], 2) / x.shape[-1])  # (d/2,): the frequency of each pair
    angles = positions[..., None] * theta  # float64 angles, then cos and sin in x's dtype
    return np.cos(angles).astype(x.dtype, copy=False), np.sin(angles).astype(x.dtype, copy=False)


def rotary(x: np.ndarray, positions: np.ndarray, base: float = 10000.0) -> np.ndarray:
    """Rotary position embedding (RoPE, Su et al. 2021): rotate each feature pair by an angle that grows
    with the position.

    x: (..., L, d), d even; positions: integers (or floats) broadcastable to (..., L), e.g. np.arange(L).
    Pairing: features (2i, 2i + 1) form pair i (the paper's convention; think of x_2i + j x_2i+1 as a
    complex number), rotated by positions * theta_i with theta_i = base^(-2i / d):

        out[2i]     = x[2i] cos - x[2i+1] sin
        out[2i + 1] = x[2i] sin + x[2i+1] cos

    (GPT-NeoX and Hugging Face's Llama pair feature i with i + d/2 instead, "rotate_half"; the two are the
    same up to a fixed permutation of the features.) Because rotations compose, (R_m q) . (R_n k) depends
    on m - n only: rotated queries and keys make attention scores depend on relative positions.
    Returns an array of x's shape and dtype. No cache: the backward is `rotary_backward`.
    """
    cos, sin = _rotation(x, positions, base)
    return _rotate_pairs(x, cos, sin)


def rotary_backward(dout: np.ndarray, positions: np.ndarray, base: float = 10000.0) -> np.ndarray:
    """The gradient of `rotary`: a rotation's Jacobian is the rotation, and its transpose is the inverse
    rotation, by the negated angles (cos stays, sin changes sign). dout (..., L, d) -> dx (..., L, d)."""
    cos, sin = _rotation(dout, positions, base)
    return _rotate_pairs(dout, cos, -sin)


def _rotate_pairs(x: np.ndarray, cos: np.ndarray, sin: np.ndarray) -> np.ndarray:
    """Rotate each pair (x[2i], x[2i + 1]) by the angle whose cosine and sine are given, (..., L, d/2)."""
    even, odd = x[..., 0::2], x[..., 1::2]
    out = np.empty_like(x)
    out[..., 0::2] = even * cos - odd * sin
    out[..., 1::2] = even * sin + odd * cos
    return out


# ---- blockwise attention with an online softmax -------------------------------------------------


class BlockwiseCache(NamedTuple):
    """What `blockwise_attention_backward` needs: the inputs, the output and one number per query, not the weights."""

    q: np.ndarray  # (..., Lq, d)
    k: np.ndarray  # (..., Lk, d)
    v: np.ndarray  # (..., Lk, dv)
    out: np.ndarray  # (..., Lq, dv)
    logsumexp: np.ndarray  # (..., Lq, 1): log sum_j exp(score_ij) of each query's row of scores
    block_size: int
    is_causal: bool
    scale: float


def _rescale(old_max: np.ndarray, new_max: np.ndarray) -> np.ndarray:
    """The factor exp(old_max - new_max) <= 1 by which sums taken relative to old_max shrink when the running
    max rises to new_max. exp(-inf) = 0: before the first block there is nothing to rescale."""
    return np.exp(old_max - new_max)


def _score_tile(q_block: np.ndarray, k: np.ndarray, start: int, stop: int, rows: slice, is_causal: bool) -> np.ndarray:
    """The scores of a query block against keys start..stop-1: (..., Bq, Bk); causal: -inf above the diagonal."""
    scores = np.matmul(q_block, k[..., start:stop, :].swapaxes(-1, -2))
    if is_causal and stop - 1 > rows.start:  # the tile reaches above the diagonal
        above = np.arange(start, stop) > np.arange(rows.start, rows.stop)[:, None]  # key j > query i
        np.copyto(scores, -np.inf, where=above)
    return scores


def _key_stop(rows: slice, lk: int, is_causal: bool) -> int:
    """Causal queries i < rows.stop never look past key rows.stop - 1: skip those tiles altogether."""
    return min(lk, rows.stop) if is_causal else lk


def blockwise_attention(
    q: np.ndarray,
    k: np.ndarray,
    v: np.ndarray,
    block_size: int,
    is_causal: bool = False,
    scale: float | None = None,
) -> tuple[np.ndarray, BlockwiseCache]:
    """Scaled dot-product attention one (block_size, block_size) tile of scores at a time, with an online
    softmax; equal to `scaled_dot_product_attention` up to rounding, but never holding (Lq, Lk) scores.

    For each block of queries, walk over the key blocks keeping three running quantities per query: the
    largest score m seen so far, the sum l of exp(score - m) and the output acc = sum exp(score - m) v.
    When a new tile raises the max to m', the old l and acc were relative to m: multiply them by
    exp(m - m') (`_rescale`) before adding the tile's share. After the last tile, out = acc / l.
    q: (..., Lq, d), k: (..., Lk, d), v: (..., Lk, dv); block_size >= 1 need not divide Lq or Lk;
    is_causal and scale as in `scaled_dot_product_attention` (no other mask). Returns out and the cache.
    """
    q, k, v, batch = _check_qkv(q, k, v)
    block_size = require_int("block_size", block_size, minimum=1)
    is_causal = require_bool("is_causal", is_causal)
    scale = _scale_for(scale, q.shape[-1])
    lq, lk = q.shape[-2], k.shape[-2]
    out = np.empty((*batch, lq, v.shape[-1]), dtype=q.dtype)
    logsumexp = np.empty((*batch, lq, 1), dtype=q.dtype)
    for q_start in range(0, lq, block_size):
        rows = slice(q_start, min(q_start + block_size, lq))
        q_block = q[..., rows, :] * scale
        row_max = np.full((*batch, rows.stop - rows.start, 1), -np.inf, dtype=q.dtype)  # m
        total = np.zeros_like(row_max)  # l
        acc = np.zeros((*batch, rows.stop - rows.start, v.shape[-1]), dtype=q.dtype)
        for k_start in range(0, _key_stop(rows, lk, is_causal), block_size):
            k_stop = min(k_start + block_size, lk)
            tile = _score_tile(q_block, k, k_start, k_stop, rows, is_causal)  # (..., Bq, Bk)
            new_max = np.maximum(row_max, tile.max(axis=-1, keepdims=True))
            tile -= new_max
            np.exp(tile, out=tile)  # exp(score - m'), in place
            shrink = _rescale(row_max, new_max)
            total = total * shrink + tile.sum(axis=-1, keepdims=True)
            acc = acc * shrink + np.matmul(tile, v[..., k_start:k_stop, :])
            row_max = new_max
        out[..., rows, :] = acc / total
        logsumexp[..., rows, :] = row_max + np.log(total)
    return out, BlockwiseCache(q, k, v, out, logsumexp, block_size, is_causal, scale)


def blockwise_attention_backward(dout: np.ndarray, cache: BlockwiseCache) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The gradients of `blockwise_attention`, by recomputation: dout (..., Lq, dv) -> dq, dk, dv.

    The weights were never stored; each tile of them is recomputed from q, k and the saved log-sum-exp,
    weights = exp(score - logsumexp), and used at once for the tile's share of dq, dk and dv.
    """
    q, k, v, out, logsumexp, block_size, is_causal, scale = cache
    dout = _check_dout(dout, out.shape)
    batch, lq, lk = out.shape[:-2], q.shape[-2], k.shape[-2]
    row_dot = _row_dot(dout, out)  # (..., Lq, 1): rowsum(dweights * weights)
    dq = np.zeros((*batch, *q.shape[-2:]), dtype=q.dtype)
    dk = np.zeros((*batch, *k.shape[-2:]), dtype=q.dtype)
    dv = np.zeros((*batch, *v.shape[-2:]), dtype=q.dtype)
    for q_start in range(0, lq, block_size):
        rows = slice(q_start, min(q_start + block_size, lq))
        q_block, dout_block = q[..., rows, :] * scale, dout[..., rows, :]
        for k_start in range(0, _key_stop(rows, lk, is_causal), block_size):
            keys = slice(k_start, min(k_start + block_size, lk))
            weights = _score_tile(q_block, k, keys.start, keys.stop, rows, is_causal)
            weights -= logsumexp[..., rows, :]
            np.exp(weights, out=weights)  # (..., Bq, Bk): this tile of the softmax
            dv[..., keys, :] += np.matmul(weights.swapaxes(-1, -2), dout_block)
            dscores = np.matmul(dout_block, v[..., keys, :].swapaxes(-1, -2))
            dscores -= row_dot[..., rows, :]
            dscores *= weights
            dq[..., rows, :] += np.matmul(dscores, k[..., keys, :])
            dk[..., keys, :] += np.matmul(dscores.swapaxes(-1, -2), q_block)  # q_block carries the scale
    dq *= scale
    return _sum_to_shape(dq, q.shape), _sum_to_shape(dk, k.shape), _sum_to_shape(dv, v.shape)
