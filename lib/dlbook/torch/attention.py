"""PyTorch twins of `dlbook.np.attention`: the same names and signatures, on `torch.nn.functional`.

As in the other twins, the forward functions return the output tensor alone and autograd computes
the gradients: there are no `*_backward` functions and no caches. The conventions are the NumPy
twin's: boolean masks say True = attend, is_causal is the top-left-aligned lower triangle, rotary
pairs features (2i, 2i + 1), and a query whose keys are all masked gets zero weights.

- `scaled_dot_product_attention`, `layer_norm`, `rms_norm` call torch.nn.functional directly.
- `blockwise_attention` is torch's scaled_dot_product_attention too: its CPU and GPU kernels already
  work tile by tile with an online softmax (FlashAttention), which the NumPy twin spells out; block_size
  is checked and otherwise unused.
- `multi_head_attention` takes the parameters as a dict with the keys and shapes of
  torch.nn.MultiheadAttention's state_dict (`MHA_PARAM_NAMES`). `multihead_module`,
  `copy_params_to_module` and `params_from_module` move them between such a dict (of NumPy arrays or
  tensors) and a torch.nn.MultiheadAttention(batch_first=True), both ways. Careful: that module's own
  boolean attn_mask means True = may NOT attend, the opposite of the mask here.
- `init_multi_head_attention` draws with NumPy, by the NumPy twin's function, so that one seed gives
  the same weights in both twins.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812 (torch's own spelling)

from dlbook._validation import require_bool, require_float_array, require_int
from dlbook.np import attention as np_attention
from dlbook.np.attention import MHA_PARAM_NAMES

__all__ = [
    "MHA_PARAM_NAMES",
    "additive_attention",
    "blockwise_attention",
    "causal_mask",
    "copy_params_to_module",
    "init_multi_head_attention",
    "layer_norm",
    "multi_head_attention",
    "multihead_module",
    "params_from_module",
    "rms_norm",
    "rotary",
    "scaled_dot_product_attention",
    "sinusoidal_positions",
]


def causal_mask(lq: int, lk: int) -> torch.Tensor:
    """The boolean causal mask (lq, lk): True where key j <= query i (query i attends to keys 0..i)."""
    return torch.from_numpy(np_attention.causal_mask(lq, lk))


def scaled_dot_product_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    mask: torch.Tensor | None = None,
    is_causal: bool = False,
    scale: float | None = None,
) -> torch.Tensor:
    """softmax(q k^T * scale, masked) v.  q: (..., Lq, d), k: (..., Lk, d), v: (..., Lk, dv) -> (..., Lq, dv)."""
    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=is_causal, scale=scale)


def _masked_softmax(scores: torch.Tensor, mask: torch.Tensor | None, is_causal: bool) -> torch.Tensor:
    if is_causal:
        scores = scores.masked_fill(~causal_mask(*scores.shape[-2:]), -math.inf)
    elif mask is not None and mask.dtype == torch.bool:
        scores = scores.masked_fill(~mask, -math.inf)
    elif mask is not None:
        scores = scores + mask
    # a row masked everywhere gets weights 0 (as in the NumPy twin and torch's sdpa), not softmax's NaN
    blocked = torch.isneginf(scores).all(dim=-1, keepdim=True)
    return torch.softmax(scores.masked_fill(blocked, 0.0), dim=-1).masked_fill(blocked, 0.0)


def additive_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    w_q: torch.Tensor,
    w_k: torch.Tensor,
    w_score: torch.Tensor,
    mask: torch.Tensor | None = None,
    is_causal: bool = False,
) -> torch.Tensor:
    """Bahdanau attention, scores[i, j] = w_score . tanh(W_q q_i + W_k k_j).  q: (..., Lq, dq), k: (..., Lk, dk),
    v: (..., Lk, dv), w_q: (H, dq), w_k: (H, dk), w_score: (H,) -> out (..., Lq, dv)."""
    if mask is not None and is_causal:
        raise ValueError("give either mask or is_causal=True, not both (as in torch)")
    hidden = torch.tanh(F.linear(q, w_q)[..., :, None, :] + F.linear(k, w_k)[..., None, :, :])  # (..., Lq, Lk, H)
    return _masked_softmax(hidden @ w_score, mask, is_causal) @ v


# ---- multi-head attention -----------------------------------------------------------------------


def init_multi_head_attention(embed_dim: int, n_heads: int, rng: np.random.Generator) -> dict[str, torch.Tensor]:
    """The NumPy twin's parameters (same rng, same numbers) as float64 tensors with requires_grad=True."""
    arrays = np_attention.init_multi_head_attention(embed_dim, n_heads, rng)
    return {name: torch.tensor(array, requires_grad=True) for name, array in arrays.items()}


def multi_head_attention(
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    params: dict[str, torch.Tensor],
    n_heads: int,
    mask: torch.Tensor | None = None,
    is_causal: bool = False,
) -> torch.Tensor:
    """query (N, Lq, E), key and value (N, Lk, E) -> out (N, Lq, E); the computation of
    torch.nn.MultiheadAttention(batch_first=True), with the mask convention of scaled_dot_product_attention."""
    n, lq, embed = query.shape
    n_heads = require_int("n_heads", n_heads, minimum=1)
    if embed % n_heads:
        raise ValueError(f"n_heads must divide the embedding size: E = {embed} is not a multiple of {n_heads}")
    if mask is not None and mask.ndim not in (2, 4):  # as in the NumPy twin: no (N, Lq, Lk) masks
        raise ValueError(
            f"mask must be (Lq, Lk) for every sequence and head, or (N, 1, Lq, Lk) or (N, H, Lq, Lk), "
            f"got shape {tuple(mask.shape)}"
        )
    w_q, w_k, w_v = params["in_proj_weight"].chunk(3)
    b_q, b_k, b_v = params["in_proj_bias"].chunk(3)

    def heads(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:  # (N, H, L, E/H)
        return F.linear(x, weight, bias).view(n, x.shape[1], n_heads, embed // n_heads).transpose(1, 2)

    out = F.scaled_dot_product_attention(
        heads(query, w_q, b_q), heads(key, w_k, b_k), heads(value, w_v, b_v), attn_mask=mask, is_causal=is_causal
    )  # (N, H, Lq, E/H)
    return F.linear(out.transpose(1, 2).reshape(n, lq, embed), params["out_proj.weight"], params["out_proj.bias"])


def _check_module(module: object) -> torch.nn.MultiheadAttention:
    if not isinstance(module, torch.nn.MultiheadAttention):
        raise TypeError(f"module must be a torch.nn.MultiheadAttention, got {type(module).__name__}")
    if not module.batch_first or not module._qkv_same_embed_dim or module.in_proj_bias is None:
        raise ValueError(
            "module must be torch.nn.MultiheadAttention(E, n_heads, batch_first=True) with the defaults "
            "bias=True and kdim = vdim = E, the layout of the NumPy twin"
        )
    if module.bias_k is not None or module.add_zero_attn:
        raise ValueError("module must not use add_bias_kv or add_zero_attn, which the NumPy twin does not have")
    return module


def _as_arrays(params: object) -> dict[str, np.ndarray]:
    """A dict of NumPy arrays or tensors, keyed by MHA_PARAM_NAMES, as NumPy arrays (views, not copies)."""
    if not isinstance(params, dict) or set(params) != set(MHA_PARAM_NAMES):
        got = tuple(params) if isinstance(params, dict) else type(params).__name__
        raise ValueError(f"params must be a dict with exactly the keys {MHA_PARAM_NAMES}, got {got}")
    return {
        name: value.detach().cpu().numpy() if isinstance(value, torch.Tensor) else value
        for name, value in params.items()
    }


def copy_params_to_module(params: dict[str, np.ndarray | torch.Tensor], module: torch.nn.MultiheadAttention) -> None:
    """Overwrite the parameters of a torch.nn.MultiheadAttention(batch_first=True) with copies of `params`
    (NumPy arrays or tensors, keyed by MHA_PARAM_NAMES); the module keeps its dtype."""
    module, arrays = _check_module(module), _as_arrays(params)
    weight = require_float_array("params['in_proj_weight']", arrays["in_proj_weight"])
    np_attention._check_mha_params(arrays, module.embed_dim, weight.dtype)
    dtype = module.in_proj_weight.dtype
    module.load_state_dict({name: torch.tensor(arrays[name], dtype=dtype) for name in MHA_PARAM_NAMES})


def multihead_module(params: dict[str, np.ndarray | torch.Tensor], n_heads: int) -> torch.nn.MultiheadAttention:
    """A new torch.nn.MultiheadAttention(E, n_heads, batch_first=True) holding copies of `params`, in their dtype."""
    weight = require_float_array("params['in_proj_weight']", _as_arrays(params)["in_proj_weight"], ndim=2)
    embed_dim = weight.shape[1]
    np_attention._check_heads(n_heads, embed_dim)
    module = torch.nn.MultiheadAttention(embed_dim, n_heads, batch_first=True, dtype=torch.from_numpy(weight).dtype)
    copy_params_to_module(params, module)
    return module


def params_from_module(module: torch.nn.MultiheadAttention) -> dict[str, np.ndarray]:
    """The parameters of a torch.nn.MultiheadAttention(batch_first=True) as NumPy copies keyed by MHA_PARAM_NAMES."""
    state = _check_module(module).state_dict()
    return {name: state[name].detach().cpu().numpy().copy() for name in MHA_PARAM_NAMES}


# ---- normalisation and positions ----------------------------------------------------------------


def layer_norm(
    x: torch.Tensor, weight: torch.Tensor | None = None, bias: torch.Tensor | None = None, eps: float = 1e-5
) -> torch.Tensor:
    """Layer normalisation over the last axis, as torch.nn.LayerNorm(E).  x: (..., E) -> (..., E)."""
    return F.layer_norm(x, x.shape[-1:], weight, bias, eps)


def rms_norm(x: torch.Tensor, weight: torch.Tensor | None = None, eps: float | None = None) -> torch.Tensor:
    """RMS normalisation over the last axis, as torch.nn.RMSNorm(E); eps None = machine epsilon of x's dtype."""
    return F.rms_norm(x, x.shape[-1:], weight, eps)


def sinusoidal_positions(length: int, d_model: int, base: float = 10000.0) -> torch.Tensor:
    """The sinusoidal position encodings (length, d_model), float64: sin in even columns, cos in odd ones."""
    length, d_model = require_int("length", length), require_int("d_model", d_model, minimum=1)
    column = torch.arange(d_model, dtype=torch.float64)
    angles = torch.arange(length, dtype=torch.float64)[:, None] / base ** (2 * (column // 2) / d_model)
    return torch.where(column % 2 == 0, angles.sin(), angles.cos())


def rotary(x: torch.Tensor, positions: torch.Tensor | np.ndarray, base: float = 10000.0) -> torch.Tensor:
    """Rotary position embedding; pair i = features (2i, 2i + 1), rotated by positions * base^(-2i/d).
    x: (..., L, d), d even; positions broadcastable to (..., L) -> (..., L, d)."""
    d = x.shape[-1]
    theta = base ** (-torch.arange(0, d, 2, dtype=torch.float64) / d)
    angles = torch.as_tensor(positions, dtype=torch.float64)[..., None] * theta  # (..., L, d/2)
    cos, sin = angles.cos().to(x.dtype), angles.sin().to(x.dtype)
    even, odd = x[..., 0::2], x[..., 1::2]
    return torch.stack((even * cos - odd * sin, even * sin + odd * cos), dim=-1).flatten(-2)


def blockwise_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    block_size: int,
    is_causal: bool = False,
    scale: float | None = None,
) -> torch.Tensor:
    """torch's scaled_dot_product_attention, whose fused kernels are blockwise already (see the module docstring)."""
    require_int("block_size", block_size, minimum=1)
    return F.scaled_dot_product_attention(q, k, v, is_causal=require_bool("is_causal", is_causal), scale=scale)
