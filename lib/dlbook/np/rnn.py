"""Recurrent networks in NumPy: the vanilla RNN, LSTM and GRU cells and whole sequences, as pure
forward/backward pairs (chapter "Recurrent networks").

Layout time-major, as PyTorch's default: a sequence x is (T, N, D), T steps of a batch of N vectors
of D features; a hidden state h (and an LSTM's cell state c) is (N, H); the outputs are every step's
hidden state, out (T, N, H). float32 or float64, kept throughout.

The parameters of a cell are an `RNNParams` with PyTorch's names and shapes, G blocks of H rows
stacked in one matrix so that ONE matrix product computes every gate:

    weight_ih (G*H, D), weight_hh (G*H, H), bias_ih (G*H,), bias_hh (G*H,)

and PyTorch's gate order (`GATE_ORDER`), with s the sigmoid and * the elementwise product:

- "rnn", G = 1:  h' = tanh(x W_ih^T + b_ih + h W_hh^T + b_hh)
- "lstm", G = 4, blocks (i, f, g, o): [i, f, g, o] = [s, s, tanh, s](x W_ih^T + b_ih + h W_hh^T + b_hh),
  c' = f * c + i * g, h' = o * tanh(c')
- "gru", G = 3, blocks (r, z, n): with a = x W_ih^T + b_ih and b = h W_hh^T + b_hh,
  r = s(a_r + b_r), z = s(a_z + b_z), n = tanh(a_n + r * b_n), h' = (1 - z) * n + z * h.
  The reset gate multiplies b_n = W_hn h + b_hn, bias included, exactly as torch (the GRU paper puts
  r inside the product, W_hn (r * h); the two differ, and only torch's is here).

Functions:
- one step: `rnn_step`, `lstm_step`, `gru_step` and their `*_step_backward`;
- a whole sequence from an initial state (None: zeros): `rnn`, `lstm`, `gru` return (out, final
  state, cache), and `rnn_backward`, `lstm_backward`, `gru_backward` run backpropagation through time
  (BPTT), returning the gradients of x, of the initial state and of every parameter (an `RNNParams`).
  The sequence layers compute the input's share of every gate at every step in one matrix product
  before the loop (it does not depend on h), and in the backward pass they keep every step's gate
  gradients and turn them into the weight gradients with one matrix product after the loop;
- `init_params`: PyTorch's initialisation, uniform(-1/sqrt(H), 1/sqrt(H)), from a NumPy Generator;
- `clip_grad_norm`: rescale gradients whose total norm is too large, as `torch.nn.utils.clip_grad_norm_`.

Truncated backpropagation through time. A long sequence is cut into chunks of k steps; each chunk
starts from the state the previous one ended in, but as a constant: no gradient flows back into the
previous chunk (in PyTorch, `h = h.detach()`). Keep each chunk's forward and backward together,
pass None as the gradient of the chunk's final state and drop the gradient of its initial state
(for `rnn` and `gru` the state is h alone):

    state = None                                           # zeros before the first chunk
    for start in range(0, T, k):
        out, state, cache = lstm(x[start : start + k], state, params)      # the state goes forward...
        dx, _, grads = lstm_backward(dloss_dout(out), None, cache)         # ...its gradient does not
        params = update(params, grads)

Memory then grows with k instead of T, and gradients reach back at most k steps.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import NamedTuple, TypeVar

import numpy as np

from dlbook._validation import require_float_array, require_int, require_positive

__all__ = [
    "GATE_ORDER",
    "KINDS",
    "GRUCache",
    "GRUStepCache",
    "LSTMCache",
    "LSTMStepCache",
    "RNNCache",
    "RNNParams",
    "RNNStepCache",
    "clip_grad_norm",
    "gru",
    "gru_backward",
    "gru_step",
    "gru_step_backward",
    "init_params",
    "lstm",
    "lstm_backward",
    "lstm_step",
    "lstm_step_backward",
    "rnn",
    "rnn_backward",
    "rnn_step",
    "rnn_step_backward",
]

KINDS = ("rnn", "lstm", "gru")
# The blocks of H rows of weight_ih, weight_hh, bias_ih and bias_hh, top to bottom (PyTorch's order).
# The vanilla RNN has a single block: the pre-activation of the new state.
GATE_ORDER = {"rnn": ("h",), "lstm": ("i", "f", "g", "o"), "gru": ("r", "z", "n")}
_NAMES = {"rnn": "a vanilla RNN", "lstm": "an LSTM", "gru": "a GRU"}


class RNNParams(NamedTuple):
    """The parameters of one cell (and the gradients of them), with PyTorch's names and shapes.

    G is the number of gate blocks (`len(GATE_ORDER[kind])`): 1 for "rnn", 4 for "lstm", 3 for "gru".
    Iterating gives the four arrays in this order, e.g. `list(params)` for an optimizer.
    """

    weight_ih: np.ndarray  # (G*H, D)
    weight_hh: np.ndarray  # (G*H, H)
    bias_ih: np.ndarray  # (G*H,)
    bias_hh: np.ndarray  # (G*H,)


# ---- checks ---------------------------------------------------------------------------------------


def _require_kind(kind: object) -> str:
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(map(repr, KINDS))}, got {kind!r}")
    return kind


def _check_params(params: object, kind: str) -> RNNParams:
    """params as an RNNParams of float arrays of one dtype, shaped for `kind`; H comes from weight_hh."""
    if isinstance(params, Mapping):
        if set(params) != set(RNNParams._fields):
            raise ValueError(f"params must have the keys {', '.join(RNNParams._fields)}, got {', '.join(params)}")
        params = RNNParams(**params)
    if not isinstance(params, RNNParams):
        raise TypeError(f"params must be an RNNParams (or a dict of its fields), got {type(params).__name__}")
    for name, value in zip(RNNParams._fields, params, strict=True):
        require_float_array(name, value, ndim=1 if name.startswith("bias") else 2)
    dtype = params.weight_ih.dtype
    for name, value in zip(RNNParams._fields, params, strict=True):
        if value.dtype != dtype:
            raise TypeError(f"all parameters must have one dtype, got weight_ih {dtype} and {name} {value.dtype}")
    gates = len(GATE_ORDER[kind])
    hidden = params.weight_hh.shape[1]
    if hidden == 0:
        raise ValueError(f"weight_hh must have H >= 1 columns, (G*H, H), got shape {params.weight_hh.shape}")
    rows = gates * hidden
    blocks = f"{gates} block(s) ({', '.join(GATE_ORDER[kind])}) of H = {hidden} rows"
    expected = {
        "weight_ih": (rows, params.weight_ih.shape[1]),
        "weight_hh": (rows, hidden),
        "bias_ih": (rows,),
        "bias_hh": (rows,),
    }
    for name, value in zip(RNNParams._fields, params, strict=True):
        if value.shape != expected[name]:
            raise ValueError(
                f"{name} of {_NAMES[kind]} must have shape {expected[name]}: {blocks}, H taken from weight_hh "
                f"(shape {params.weight_hh.shape}, (G*H, H)); got {name} of shape {value.shape}"
            )
    return params


def _check_input(x: object, params: RNNParams, *, ndim: int) -> np.ndarray:
    """x: (T, N, D) for a sequence (ndim 3) or (N, D) for a step (ndim 2), of the parameters' D and dtype."""
    layout = "(T, N, D)" if ndim == 3 else "(N, D)"
    x = require_float_array("x", x)
    if x.ndim != ndim:
        raise ValueError(f"x must have {ndim} dimension(s), {layout}, got shape {x.shape}")
    if x.dtype != params.weight_ih.dtype:
        raise TypeError(f"x and the parameters must have the same dtype, got x {x.dtype} and {params.weight_ih.dtype}")
    if 0 in x.shape[:-1]:
        raise ValueError(f"x must hold at least one step and one sequence, got shape {x.shape}, {layout}")
    features = params.weight_ih.shape[1]
    if x.shape[-1] != features:
        raise ValueError(
            f"x has D = {x.shape[-1]} features per step (shape {x.shape}, {layout}) but weight_ih expects "
            f"{features} (shape {params.weight_ih.shape}, (G*H, D)): the D of x and weight_ih must match"
        )
    return x


def _check_state(name: str, value: object, batch: int, params: RNNParams) -> np.ndarray:
    """A state (N, H) of the parameters' dtype; None means zeros, PyTorch's default initial state."""
    hidden, dtype = params.weight_hh.shape[1], params.weight_hh.dtype
    if value is None:
        return np.zeros((batch, hidden), dtype=dtype)
    value = require_float_array(name, value)
    if value.shape != (batch, hidden):
        hint = ""
        if value.shape == (1, batch, hidden):
            hint = f"; drop PyTorch's leading num_layers axis: {name}[0]"
        raise ValueError(f"{name} must have shape (N, H) = ({batch}, {hidden}), got {value.shape}{hint}")
    if value.dtype != dtype:
        raise TypeError(f"{name} must have the parameters' dtype {dtype}, got {value.dtype}")
    return value


def _check_grad(name: str, value: object, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    """An incoming gradient of the given shape, in the forward pass's dtype; None means zeros."""
    if value is None:
        return np.zeros(shape, dtype=dtype)
    value = require_float_array(name, value)
    if value.shape != shape:
        raise ValueError(f"{name} must have the shape of what it is the gradient of, {shape}, got {value.shape}")
    return value.astype(dtype, copy=False)


def _check_pair(name: str, value: object) -> tuple[object, object]:
    """An LSTM state: None, or an (h, c) pair."""
    if value is None:
        return None, None
    if not isinstance(value, tuple | list) or len(value) != 2:
        raise TypeError(f"{name} must be None or an (h, c) pair of (N, H) arrays, got {type(value).__name__}")
    return value[0], value[1]


# ---- shared pieces --------------------------------------------------------------------------------


def _sigmoid(a: np.ndarray) -> np.ndarray:
    """1 / (1 + exp(-a)), computed as (1 + tanh(a / 2)) / 2: the same function, but exp(-a) would
    overflow (with a warning) for a < -88 in float32, while tanh never does."""
    s = np.tanh(0.5 * a)
    s += 1
    s *= 0.5
    return s


def _input_projection(x: np.ndarray, weight_ih: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """x W_ih^T + bias at every step at once: (T, N, D) -> (T, N, G*H), one matrix product over T*N rows.
    The input's share of the gates does not depend on the state, so it need not wait for the loop."""
    steps, batch, features = x.shape
    projected = x.reshape(steps * batch, features) @ weight_ih.T  # (T*N, D) @ (D, G*H)
    projected += bias  # in place: no second (T*N, G*H) array
    return projected.reshape(steps, batch, -1)


def _parameter_gradients(
    dgates_i: np.ndarray, dgates_h: np.ndarray, x: np.ndarray, h_prev: np.ndarray, weight_ih: np.ndarray
) -> tuple[np.ndarray, RNNParams]:
    """dx and the parameter gradients from the gradients of the gate pre-activations at every step.

    dgates_i: (..., G*H), the gradient of x W_ih^T + b_ih; dgates_h: (..., G*H), of h W_hh^T + b_hh
    (the same array for the RNN and the LSTM, which add the two); x: (..., D); h_prev: (..., H), the
    state each step started from; "..." is (T, N) for a sequence, (N,) for a step. The weights are
    shared by all steps, so their gradient is a sum over the T*N rows: one matrix product each.
    """
    width = dgates_i.shape[-1]  # G*H
    rows_i, rows_h = dgates_i.reshape(-1, width), dgates_h.reshape(-1, width)  # (T*N, G*H)
    x_rows, h_rows = x.reshape(-1, x.shape[-1]), h_prev.reshape(-1, h_prev.shape[-1])
    dx = (rows_i @ weight_ih).reshape(x.shape)  # (T*N, G*H) @ (G*H, D)
    grads = RNNParams(
        weight_ih=rows_i.T @ x_rows,  # (G*H, T*N) @ (T*N, D)
        weight_hh=rows_h.T @ h_rows,  # (G*H, T*N) @ (T*N, H)
        bias_ih=rows_i.sum(axis=0),
        bias_hh=rows_h.sum(axis=0),
    )
    return dx, grads


# ---- the three cells: the equations of one step, given the gate pre-activations -------------------


def _lstm_cell(a: np.ndarray, c_prev: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """a: (N, 4H) pre-activations, blocks i, f, g, o; c_prev: (N, H).
    Returns h (N, H), c (N, H), gates (N, 4H) = [i, f, g, o] after their squashing, tanh(c) (N, H)."""
    hidden = c_prev.shape[1]
    gates = _sigmoid(a)  # i, f and o are sigmoids (g is redone below): one call for the whole (N, 4H)
    gates[:, 2 * hidden : 3 * hidden] = np.tanh(a[:, 2 * hidden : 3 * hidden])  # the candidate g in (-1, 1)
    i, f, g, o = (gates[:, k * hidden : (k + 1) * hidden] for k in range(4))
    c = f * c_prev + i * g  # forget part of the old memory, write part of the candidate
    tanh_c = np.tanh(c)
    return o * tanh_c, c, gates, tanh_c


def _lstm_cell_backward(
    dh: np.ndarray, dc: np.ndarray, gates: np.ndarray, tanh_c: np.ndarray, c_prev: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The gradients of `_lstm_cell`: dh, dc (N, H), the total gradients of its h and c ->
    da (N, 4H), the gradient of its pre-activations, and dc_prev (N, H)."""
    hidden = c_prev.shape[1]
    i, f, g, o = (gates[:, k * hidden : (k + 1) * hidden] for k in range(4))
    dc = dc + dh * o * (1 - tanh_c * tanh_c)  # c reaches the loss directly and through h = o tanh(c)
    da = np.empty_like(gates)
    da[:, :hidden] = dc * g  # di
    da[:, hidden : 2 * hidden] = dc * c_prev  # df
    da[:, 2 * hidden : 3 * hidden] = dc * i  # dg
    da[:, 3 * hidden :] = dh * tanh_c  # do
    # back through the squashing: sigmoid' = s (1 - s), tanh' = 1 - t^2
    slope = gates * (1 - gates)
    slope[:, 2 * hidden : 3 * hidden] = 1 - g * g
    da *= slope
    return da, dc * f  # the old memory reaches c only through the forget gate: no squashing, no matrix


def _gru_cell(a: np.ndarray, b: np.ndarray, h_prev: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """a = x W_ih^T + b_ih, b = h_prev W_hh^T + b_hh: (N, 3H), blocks r, z, n; h_prev: (N, H).
    Returns h (N, H) and gates (N, 3H) = [r, z, n] after their squashing."""
    hidden = h_prev.shape[1]
    gates = np.empty_like(a)
    gates[:, : 2 * hidden] = _sigmoid(a[:, : 2 * hidden] + b[:, : 2 * hidden])  # r and z in one call
    r, z = gates[:, :hidden], gates[:, hidden : 2 * hidden]
    gates[:, 2 * hidden :] = np.tanh(a[:, 2 * hidden :] + r * b[:, 2 * hidden :])  # the reset gate scales W_hn h + b_hn
    n = gates[:, 2 * hidden :]
    return n + z * (h_prev - n), gates  # (1 - z) n + z h_prev, with one product fewer


def _gru_cell_backward(
    dh: np.ndarray, gates: np.ndarray, b_n: np.ndarray, h_prev: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The gradients of `_gru_cell`: dh (N, H), the total gradient of its h; b_n (N, H) = W_hn h_prev + b_hn.
    Returns da (N, 3H), db (N, 3H), the gradients of a and b, and dh_prev's direct part dh * z (N, H):
    h_prev also reaches the loss through b = h_prev W_hh^T + b_hh, which the caller adds (db @ W_hh)."""
    hidden = h_prev.shape[1]
    r, z, n = (gates[:, k * hidden : (k + 1) * hidden] for k in range(3))
    da = np.empty_like(gates)
    dn = dh * (1 - z) * (1 - n * n)  # through h = (1 - z) n + ..., then tanh
    da[:, 2 * hidden :] = dn
    da[:, :hidden] = dn * b_n * r * (1 - r)  # r multiplies b_n
    da[:, hidden : 2 * hidden] = dh * (h_prev - n) * z * (1 - z)
    db = da.copy()  # r and z add a and b, so their gradients are the same...
    db[:, 2 * hidden :] *= r  # ...but b_n entered n scaled by r
    return da, db, dh * z


# ---- one step -------------------------------------------------------------------------------------


class RNNStepCache(NamedTuple):
    """What `rnn_step_backward` needs from `rnn_step`."""

    x: np.ndarray  # (N, D)
    h_prev: np.ndarray  # (N, H)
    h: np.ndarray  # (N, H): the new state, tanh of the pre-activation
    params: RNNParams


class LSTMStepCache(NamedTuple):
    """What `lstm_step_backward` needs from `lstm_step`."""

    x: np.ndarray  # (N, D)
    h_prev: np.ndarray  # (N, H)
    c_prev: np.ndarray  # (N, H)
    gates: np.ndarray  # (N, 4H): i, f, g, o after their squashing
    tanh_c: np.ndarray  # (N, H)
    params: RNNParams


class GRUStepCache(NamedTuple):
    """What `gru_step_backward` needs from `gru_step`."""

    x: np.ndarray  # (N, D)
    h_prev: np.ndarray  # (N, H)
    gates: np.ndarray  # (N, 3H): r, z, n after their squashing
    b_n: np.ndarray  # (N, H): W_hn h_prev + b_hn, which the reset gate scales
    params: RNNParams


def rnn_step(x: np.ndarray, h: np.ndarray, params: RNNParams) -> tuple[np.ndarray, RNNStepCache]:
    """One step of a vanilla (tanh) RNN: h' = tanh(x W_ih^T + b_ih + h W_hh^T + b_hh).

    x: (N, D), h: (N, H), params: an RNNParams for "rnn" (G = 1). Returns h' (N, H) and the cache.
    """
    params = _check_params(params, "rnn")
    x = _check_input(x, params, ndim=2)
    h = _check_state("h", h, x.shape[0], params)
    h_next = np.tanh(x @ params.weight_ih.T + h @ params.weight_hh.T + (params.bias_ih + params.bias_hh))
    return h_next, RNNStepCache(x, h, h_next, params)


def rnn_step_backward(dh_next: np.ndarray, cache: RNNStepCache) -> tuple[np.ndarray, np.ndarray, RNNParams]:
    """The gradients of `rnn_step`: dh_next (N, H) -> dx (N, D), dh (N, H), grads (an RNNParams)."""
    h_next = cache.h
    dh_next = _check_grad("dh_next", dh_next, h_next.shape, h_next.dtype)
    da = dh_next * (1 - h_next * h_next)  # tanh' = 1 - tanh^2
    dx, grads = _parameter_gradients(da, da, cache.x, cache.h_prev, cache.params.weight_ih)
    return dx, da @ cache.params.weight_hh, grads


def lstm_step(
    x: np.ndarray, h: np.ndarray, c: np.ndarray, params: RNNParams
) -> tuple[np.ndarray, np.ndarray, LSTMStepCache]:
    """One step of an LSTM, PyTorch's gate order i, f, g, o:

        [i, f, g, o] = [s, s, tanh, s](x W_ih^T + b_ih + h W_hh^T + b_hh),  c' = f * c + i * g,  h' = o * tanh(c')

    x: (N, D), h and c: (N, H), params: an RNNParams for "lstm" (G = 4).
    Returns h' (N, H), c' (N, H) and the cache.
    """
    params = _check_params(params, "lstm")
    x = _check_input(x, params, ndim=2)
    h, c = _check_state("h", h, x.shape[0], params), _check_state("c", c, x.shape[0], params)
    a = x @ params.weight_ih.T + h @ params.weight_hh.T + (params.bias_ih + params.bias_hh)  # (N, 4H): all gates
    h_next, c_next, gates, tanh_c = _lstm_cell(a, c)
    return h_next, c_next, LSTMStepCache(x, h, c, gates, tanh_c, params)


def lstm_step_backward(
    dh_next: np.ndarray, dc_next: np.ndarray | None, cache: LSTMStepCache
) -> tuple[np.ndarray, np.ndarray, np.ndarray, RNNParams]:
    """The gradients of `lstm_step`: dh_next, dc_next (N, H) (None: zeros) -> dx (N, D), dh (N, H), dc (N, H),
    grads (an RNNParams)."""
    shape, dtype = cache.h_prev.shape, cache.h_prev.dtype
    dh_next = _check_grad("dh_next", dh_next, shape, dtype)
    dc_next = _check_grad("dc_next", dc_next, shape, dtype)
    da, dc = _lstm_cell_backward(dh_next, dc_next, cache.gates, cache.tanh_c, cache.c_prev)
    dx, grads = _parameter_gradients(da, da, cache.x, cache.h_prev, cache.params.weight_ih)
    return dx, da @ cache.params.weight_hh, dc, grads


def gru_step(x: np.ndarray, h: np.ndarray, params: RNNParams) -> tuple[np.ndarray, GRUStepCache]:
    """One step of a GRU, PyTorch's gate order r, z, n, with a = x W_ih^T + b_ih and b = h W_hh^T + b_hh:

        r = s(a_r + b_r),  z = s(a_z + b_z),  n = tanh(a_n + r * b_n),  h' = (1 - z) * n + z * h

    x: (N, D), h: (N, H), params: an RNNParams for "gru" (G = 3). Returns h' (N, H) and the cache.
    """
    params = _check_params(params, "gru")
    x = _check_input(x, params, ndim=2)
    h = _check_state("h", h, x.shape[0], params)
    a = x @ params.weight_ih.T + params.bias_ih  # (N, 3H)
    b = h @ params.weight_hh.T + params.bias_hh  # (N, 3H): kept apart from a, since r scales b_n alone
    h_next, gates = _gru_cell(a, b, h)
    hidden = h.shape[1]
    return h_next, GRUStepCache(x, h, gates, b[:, 2 * hidden :], params)


def gru_step_backward(dh_next: np.ndarray, cache: GRUStepCache) -> tuple[np.ndarray, np.ndarray, RNNParams]:
    """The gradients of `gru_step`: dh_next (N, H) -> dx (N, D), dh (N, H), grads (an RNNParams)."""
    dh_next = _check_grad("dh_next", dh_next, cache.h_prev.shape, cache.h_prev.dtype)
    da, db, dh_direct = _gru_cell_backward(dh_next, cache.gates, cache.b_n, cache.h_prev)
    dx, grads = _parameter_gradients(da, db, cache.x, cache.h_prev, cache.params.weight_ih)
    return dx, dh_direct + db @ cache.params.weight_hh, grads


# ---- whole sequences: forward, and backpropagation through time ------------------------------------


class RNNCache(NamedTuple):
    """What `rnn_backward` needs from `rnn`."""

    x: np.ndarray  # (T, N, D)
    hs: np.ndarray  # (T + 1, N, H): h0, then the state after every step
    params: RNNParams


class LSTMCache(NamedTuple):
    """What `lstm_backward` needs from `lstm`."""

    x: np.ndarray  # (T, N, D)
    hs: np.ndarray  # (T + 1, N, H): h0, then the hidden state after every step
    cs: np.ndarray  # (T + 1, N, H): c0, then the cell state after every step
    gates: np.ndarray  # (T, N, 4H): i, f, g, o at every step, after their squashing
    tanh_cs: np.ndarray  # (T, N, H): tanh(c) at every step
    params: RNNParams


class GRUCache(NamedTuple):
    """What `gru_backward` needs from `gru`."""

    x: np.ndarray  # (T, N, D)
    hs: np.ndarray  # (T + 1, N, H): h0, then the state after every step
    gates: np.ndarray  # (T, N, 3H): r, z, n at every step, after their squashing
    b_ns: np.ndarray  # (T, N, H): W_hn h + b_hn at every step
    params: RNNParams


def _start_sequence(x, params, kind: str):
    params = _check_params(params, kind)
    x = _check_input(x, params, ndim=3)
    steps, batch, _ = x.shape
    hs = np.empty((steps + 1, batch, params.weight_hh.shape[1]), dtype=x.dtype)
    return x, params, hs


def rnn(x: np.ndarray, h0: np.ndarray | None, params: RNNParams) -> tuple[np.ndarray, np.ndarray, RNNCache]:
    """A vanilla (tanh) RNN over a whole sequence, as `torch.nn.RNN` (one layer, time-major).

    x: (T, N, D); h0: (N, H), or None for zeros; params: an RNNParams for "rnn".
    Returns out (T, N, H), every step's state; h_T (N, H), the final state (= out[-1]); the cache.
    """
    x, params, hs = _start_sequence(x, params, "rnn")
    hs[0] = _check_state("h0", h0, x.shape[1], params)
    ax = _input_projection(x, params.weight_ih, params.bias_ih + params.bias_hh)  # (T, N, H)
    weight_hh_t = params.weight_hh.T
    for t in range(x.shape[0]):
        hs[t + 1] = np.tanh(ax[t] + hs[t] @ weight_hh_t)
    return hs[1:].copy(), hs[-1].copy(), RNNCache(x, hs, params)


def rnn_backward(
    dout: np.ndarray, dh_T: np.ndarray | None, cache: RNNCache
) -> tuple[np.ndarray, np.ndarray, RNNParams]:
    """Backpropagation through time for `rnn`.

    dout: (T, N, H), the gradient of every output; dh_T: (N, H), of the final state (None: zeros).
    Returns dx (T, N, D), dh0 (N, H) and grads (an RNNParams).
    """
    hs, params = cache.hs, cache.params
    dout = _check_grad("dout", dout, hs[1:].shape, hs.dtype)
    dh = _check_grad("dh_T", dh_T, hs[0].shape, hs.dtype)
    da = np.empty_like(dout)  # (T, N, H): the gradient of every step's pre-activation
    for t in reversed(range(dout.shape[0])):
        dh = dh + dout[t]  # h_t reaches the loss as an output and through the next step
        da[t] = dh * (1 - hs[t + 1] * hs[t + 1])
        dh = da[t] @ params.weight_hh  # the recurrent term: back into h_{t-1}
    dx, grads = _parameter_gradients(da, da, cache.x, hs[:-1], params.weight_ih)
    return dx, dh, grads


def lstm(
    x: np.ndarray, state0: tuple[np.ndarray, np.ndarray] | None, params: RNNParams
) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray], LSTMCache]:
    """An LSTM over a whole sequence, as `torch.nn.LSTM` (one layer, time-major), gate order i, f, g, o.

    x: (T, N, D); state0: (h0, c0), each (N, H), or None for zeros; params: an RNNParams for "lstm".
    Returns out (T, N, H), every step's hidden state; (h_T, c_T), the final state; the cache.
    """
    x, params, hs = _start_sequence(x, params, "lstm")
    h0, c0 = _check_pair("state0", state0)
    hs[0] = _check_state("h0", h0, x.shape[1], params)
    cs = np.empty_like(hs)
    cs[0] = _check_state("c0", c0, x.shape[1], params)
    steps, hidden = x.shape[0], hs.shape[2]
    gates = np.empty((steps, x.shape[1], 4 * hidden), dtype=x.dtype)
    tanh_cs = np.empty_like(hs[1:])
    ax = _input_projection(x, params.weight_ih, params.bias_ih + params.bias_hh)  # (T, N, 4H)
    weight_hh_t = params.weight_hh.T
    for t in range(steps):
        a = ax[t] + hs[t] @ weight_hh_t  # (N, 4H): one product for all four gates
        hs[t + 1], cs[t + 1], gates[t], tanh_cs[t] = _lstm_cell(a, cs[t])
    return hs[1:].copy(), (hs[-1].copy(), cs[-1].copy()), LSTMCache(x, hs, cs, gates, tanh_cs, params)


def lstm_backward(
    dout: np.ndarray, dstate_T: tuple[np.ndarray, np.ndarray] | None, cache: LSTMCache
) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray], RNNParams]:
    """Backpropagation through time for `lstm`.

    dout: (T, N, H), the gradient of every output; dstate_T: (dh_T, dc_T), each (N, H) or None, the
    gradient of the final state (None: zeros).
    Returns dx (T, N, D), (dh0, dc0), each (N, H), and grads (an RNNParams).
    """
    hs, cs, params = cache.hs, cache.cs, cache.params
    dout = _check_grad("dout", dout, hs[1:].shape, hs.dtype)
    dh_T, dc_T = _check_pair("dstate_T", dstate_T)
    dh = _check_grad("dh_T", dh_T, hs[0].shape, hs.dtype)
    dc = _check_grad("dc_T", dc_T, hs[0].shape, hs.dtype)
    da = np.empty_like(cache.gates)  # (T, N, 4H): the gradient of every step's gate pre-activations
    for t in reversed(range(dout.shape[0])):
        dh = dh + dout[t]  # h_t reaches the loss as an output and through the next step
        da[t], dc = _lstm_cell_backward(dh, dc, cache.gates[t], cache.tanh_cs[t], cs[t])
        dh = da[t] @ params.weight_hh  # the recurrent term: back into h_{t-1}
    dx, grads = _parameter_gradients(da, da, cache.x, hs[:-1], params.weight_ih)
    return dx, (dh, dc), grads


def gru(x: np.ndarray, h0: np.ndarray | None, params: RNNParams) -> tuple[np.ndarray, np.ndarray, GRUCache]:
    """A GRU over a whole sequence, as `torch.nn.GRU` (one layer, time-major), gate order r, z, n.

    x: (T, N, D); h0: (N, H), or None for zeros; params: an RNNParams for "gru".
    Returns out (T, N, H), every step's state; h_T (N, H), the final state (= out[-1]); the cache.
    """
    x, params, hs = _start_sequence(x, params, "gru")
    hs[0] = _check_state("h0", h0, x.shape[1], params)
    steps, hidden = x.shape[0], hs.shape[2]
    gates = np.empty((steps, x.shape[1], 3 * hidden), dtype=x.dtype)
    b_ns = np.empty_like(hs[1:])
    ax = _input_projection(x, params.weight_ih, params.bias_ih)  # (T, N, 3H)
    weight_hh_t = params.weight_hh.T
    for t in range(steps):
        b = hs[t] @ weight_hh_t + params.bias_hh  # (N, 3H): one product for all three gates
        hs[t + 1], gates[t] = _gru_cell(ax[t], b, hs[t])
        b_ns[t] = b[:, 2 * hidden :]
    return hs[1:].copy(), hs[-1].copy(), GRUCache(x, hs, gates, b_ns, params)


def gru_backward(
    dout: np.ndarray, dh_T: np.ndarray | None, cache: GRUCache
) -> tuple[np.ndarray, np.ndarray, RNNParams]:
    """Backpropagation through time for `gru`.

    dout: (T, N, H), the gradient of every output; dh_T: (N, H), of the final state (None: zeros).
    Returns dx (T, N, D), dh0 (N, H) and grads (an RNNParams).
    """
    hs, params = cache.hs, cache.params
    dout = _check_grad("dout", dout, hs[1:].shape, hs.dtype)
    dh = _check_grad("dh_T", dh_T, hs[0].shape, hs.dtype)
    da = np.empty_like(cache.gates)  # (T, N, 3H): the gradients of x W_ih^T + b_ih...
    db = np.empty_like(cache.gates)  # ...and of h W_hh^T + b_hh, at every step
    for t in reversed(range(dout.shape[0])):
        dh = dh + dout[t]  # h_t reaches the loss as an output and through the next step
        da[t], db[t], dh_direct = _gru_cell_backward(dh, cache.gates[t], cache.b_ns[t], hs[t])
        dh = dh_direct + db[t] @ params.weight_hh  # directly (z * h) and through the gates
    dx, grads = _parameter_gradients(da, db, cache.x, hs[:-1], params.weight_ih)
    return dx, dh, grads


# ---- initialisation and gradient clipping ----------------------------------------------------------


def init_params(
    kind: str, input_size: int, hidden_size: int, rng: np.random.Generator, dtype: type = np.float64
) -> RNNParams:
    """PyTorch's initialisation of `torch.nn.RNN`, `LSTM` and `GRU`: every entry uniform in
    (-1/sqrt(H), 1/sqrt(H)), biases included, drawn from `rng` in the order of the fields.

    kind: "rnn", "lstm" or "gru"; input_size: D; hidden_size: H; dtype: np.float32 or np.float64.
    Returns an RNNParams: weight_ih (G*H, D), weight_hh (G*H, H), bias_ih (G*H,), bias_hh (G*H,).
    """
    rows = len(GATE_ORDER[_require_kind(kind)]) * require_int("hidden_size", hidden_size, minimum=1)
    features = require_int("input_size", input_size, minimum=1)
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a np.random.Generator, e.g. np.random.default_rng(0), got {type(rng).__name__}")
    if np.dtype(dtype) not in (np.float32, np.float64):
        raise TypeError(f"dtype must be np.float32 or np.float64, got {dtype!r}")
    bound = 1 / np.sqrt(hidden_size)
    shapes = [(rows, features), (rows, hidden_size), (rows,), (rows,)]
    return RNNParams(*(rng.uniform(-bound, bound, size=shape).astype(dtype) for shape in shapes))


Grads = TypeVar("Grads", RNNParams, Mapping, Sequence)


def clip_grad_norm(grads: Grads, max_norm: float) -> tuple[Grads, float]:
    """Scale all gradients together so that their total norm is at most about max_norm, as
    `torch.nn.utils.clip_grad_norm_` (norm 2):

        total_norm = sqrt(sum of every squared entry of every gradient)
        scale = min(1, max_norm / (total_norm + 1e-6))

    Every gradient is multiplied by the same scale, so the direction of the step is kept and only its
    length shrinks; below the threshold the scale is 1 and nothing changes. (The 1e-6 keeps the
    division finite for all-zero gradients.) A non-finite total norm is returned as it is, as torch does.

    grads: an RNNParams, a dict or a list of float arrays of any shapes; max_norm > 0.
    Returns the clipped gradients, of the same kind as grads (new arrays: grads is not modified), and
    total_norm, the norm before clipping, as a float.
    """
    max_norm = require_positive("max_norm", max_norm)
    if isinstance(grads, Mapping):
        keys, arrays = list(grads), list(grads.values())
    elif isinstance(grads, Sequence) and not isinstance(grads, str | bytes):
        keys, arrays = list(range(len(grads))), list(grads)
    else:
        raise TypeError(f"grads must be an RNNParams, a dict or a list of arrays, got {type(grads).__name__}")
    arrays = [require_float_array(f"grads[{key!r}]", array) for key, array in zip(keys, arrays, strict=True)]
    if not arrays:
        return grads, 0.0
    # one norm per array, then the norm of those norms: the norm of all entries together
    norms = np.array([np.linalg.norm(array.ravel()) for array in arrays])
    total_norm = np.linalg.norm(norms)
    scale = min(1.0, max_norm / (total_norm + 1e-6))
    clipped = [array * array.dtype.type(scale) for array in arrays]  # keep each array's dtype
    if isinstance(grads, Mapping):
        return dict(zip(keys, clipped, strict=True)), float(total_norm)
    if isinstance(grads, tuple) and hasattr(grads, "_fields"):  # a NamedTuple such as RNNParams
        return type(grads)(*clipped), float(total_norm)
    return clipped, float(total_norm)
