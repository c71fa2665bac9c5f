"""Recurrent cells and layers of `dlbook.np.rnn` and their twins in `dlbook.torch.rnn` (chapter "Recurrent networks").

For the vanilla RNN, the LSTM and the GRU: the outputs, the final states and every gradient (of x, of
the initial states and of all four parameters) equal torch's `nn.RNN`, `nn.LSTM` and `nn.GRU` in
float64 once the weights are copied over, for batch sizes and lengths down to 1 and for any sizes
(a property test); backpropagation through time equals central differences; a sequence layer is its
cell chained step by step, forward and backward; truncated BPTT in chunks gives the full run's
outputs and torch's gradients with the state detached between chunks; a wrong gate order and a
backward that forgets the recurrent term are caught (negative controls); `clip_grad_norm` equals
torch's above and below the threshold; float32 stays float32; bad arguments raise errors that say
what was expected and what came.
"""

from __future__ import annotations

import inspect

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import dlbook.np.rnn as npr
import dlbook.torch.rnn as trnn
from conftest import assert_close, to_numpy
from dlbook.np.gradcheck import numerical_gradient, relative_error

# Both sides do the same float64 products and sums in a different order: a few ulps times the length
# of the reductions (D, H, and T*N rows for the weight gradients, all a few dozen at most) on O(1) values.
RTOL, ATOL = 1e-10, 1e-12
# float32: about 1e-7 per operation, through the same reductions and up to 8 steps of recurrence.
RTOL32, ATOL32 = 1e-4, 1e-5
# Central differences with h = 1e-6 on a smooth O(1) function: rounding, ~1e-16 / 1e-6, dominates.
FD_TOLERANCE = 1e-7
# Two implementations of different functions disagree by far more than rounding: ~1e-1 relative.
WRONG = 1e-2

KINDS = npr.KINDS
STATE_NAMES = {"rnn": ("h",), "lstm": ("h", "c"), "gru": ("h",)}

# (T, N, D, H): a single step, a batch of one, both at once, hidden smaller and larger than D.
CASES = [(1, 1, 1, 1), (1, 3, 4, 5), (6, 1, 3, 4), (4, 2, 3, 6), (7, 3, 5, 2), (10, 4, 6, 8)]


def case_id(case) -> str:
    return "T{}-N{}-D{}-H{}".format(*case)


# ---- one interface for the three kinds ------------------------------------------------------------
# A state is a tuple: (h,) for the RNN and the GRU, (h, c) for the LSTM; None means zeros.


def np_forward(kind, x, state, params):
    if kind == "lstm":
        out, (h, c), cache = npr.lstm(x, state, params)
        return out, (h, c), cache
    forward = npr.rnn if kind == "rnn" else npr.gru
    out, h, cache = forward(x, None if state is None else state[0], params)
    return out, (h,), cache


def np_backward(kind, dout, dstate, cache):
    if kind == "lstm":
        dx, (dh, dc), grads = npr.lstm_backward(dout, dstate, cache)
        return dx, (dh, dc), grads
    backward = npr.rnn_backward if kind == "rnn" else npr.gru_backward
    dx, dh, grads = backward(dout, None if dstate is None else dstate[0], cache)
    return dx, (dh,), grads


def torch_forward(kind, x, state, module):
    if kind == "lstm":
        out, (h, c) = trnn.lstm(x, state, module)
        return out, (h, c)
    forward = trnn.rnn if kind == "rnn" else trnn.gru
    out, h = forward(x, None if state is None else state[0], module)
    return out, (h,)


def make_problem(kind, case, rng, dtype=np.float64):
    """Parameters (torch's initialisation), x, an initial state, and the upstream gradients of the
    outputs and of the final state: the loss is sum(dout * out) + sum(dstate * final state)."""
    steps, batch, features, hidden = case
    params = npr.init_params(kind, features, hidden, rng, dtype)
    x = rng.normal(size=(steps, batch, features)).astype(dtype)
    state0 = tuple(rng.normal(size=(batch, hidden)).astype(dtype) for _ in STATE_NAMES[kind])
    dout = rng.normal(size=(steps, batch, hidden)).astype(dtype)
    dstate = tuple(rng.normal(size=(batch, hidden)).astype(dtype) for _ in STATE_NAMES[kind])
    return params, x, state0, dout, dstate


def leaf(array: np.ndarray) -> torch.Tensor:
    return torch.tensor(array, requires_grad=True)


def np_results(kind, params, x, state0, dout, dstate):
    """Everything the NumPy twin computes, by name: outputs, final states and all gradients."""
    out, state, cache = np_forward(kind, x, state0, params)
    dx, dstate0, grads = np_backward(kind, dout, dstate, cache)
    values = {"out": out, **{f"{name}_T": v for name, v in zip(STATE_NAMES[kind], state, strict=True)}}
    gradients = {"x": dx, **{f"{name}0": g for name, g in zip(STATE_NAMES[kind], dstate0, strict=True)}}
    return values, gradients | grads._asdict()


def torch_results(kind, params, x, state0, dout, dstate):
    """The same, from torch autograd on a module holding the same weights."""
    module = trnn.to_torch(params, kind)
    tx, tstate0 = leaf(x), None if state0 is None else tuple(leaf(s) for s in state0)
    out, state = torch_forward(kind, tx, tstate0, module)
    loss = (out * torch.from_numpy(dout)).sum()
    for final, upstream in zip(state, dstate, strict=True):
        loss = loss + (final * torch.from_numpy(upstream)).sum()
    loss.backward()
    values = {"out": out, **{f"{name}_T": v for name, v in zip(STATE_NAMES[kind], state, strict=True)}}
    gradients = {"x": tx.grad}
    if tstate0 is not None:
        gradients |= {f"{name}0": s.grad for name, s in zip(STATE_NAMES[kind], tstate0, strict=True)}
    return values, gradients | trnn.from_torch(module, grad=True)._asdict()


def assert_all_equal_torch(kind, params, x, state0, dout, dstate, *, rtol=RTOL, atol=ATOL):
    np_values, np_grads = np_results(kind, params, x, state0, dout, dstate)
    torch_values, torch_grads = torch_results(kind, params, x, state0, dout, dstate)
    if state0 is None:  # torch has no leaf for an omitted state; the NumPy twin still returns its gradient
        np_grads = {name: g for name, g in np_grads.items() if not name.endswith("0")}
    assert np_values.keys() == torch_values.keys() and np_grads.keys() == torch_grads.keys()
    for name in np_values:
        assert_close(np_values[name], torch_values[name], rtol=rtol, atol=atol)
    for name in np_grads:
        assert_close(np_grads[name], torch_grads[name], rtol=rtol, atol=atol)


# ---- outputs, states and every gradient equal torch -----------------------------------------------


@pytest.mark.parametrize("case", CASES, ids=case_id)
@pytest.mark.parametrize("kind", KINDS)
def test_outputs_states_and_all_gradients_equal_torch(kind, case, rng):
    assert_all_equal_torch(kind, *make_problem(kind, case, rng))


@pytest.mark.parametrize("kind", KINDS)
def test_a_missing_initial_state_is_zeros_as_in_torch(kind, rng):
    params, x, _, dout, dstate = make_problem(kind, (5, 3, 4, 6), rng)
    assert_all_equal_torch(kind, params, x, None, dout, dstate)
    zeros = tuple(np.zeros((3, 6)) for _ in STATE_NAMES[kind])
    np.testing.assert_array_equal(np_forward(kind, x, None, params)[0], np_forward(kind, x, zeros, params)[0])


@settings(max_examples=20, deadline=None)
@given(
    kind=st.sampled_from(KINDS),
    steps=st.integers(1, 8),
    batch=st.integers(1, 4),
    features=st.integers(1, 6),
    hidden=st.integers(1, 7),
    seed=st.integers(0, 2**32 - 1),
)
def test_everything_equals_torch_for_any_sizes(kind, steps, batch, features, hidden, seed):
    assert_all_equal_torch(kind, *make_problem(kind, (steps, batch, features, hidden), np.random.default_rng(seed)))


@pytest.mark.parametrize("kind", KINDS)
def test_float32_stays_float32_and_equals_torch_in_float32(kind, rng):
    params, x, state0, dout, dstate = make_problem(kind, (8, 3, 5, 6), rng, np.float32)
    values, grads = np_results(kind, params, x, state0, dout, dstate)
    assert all(v.dtype == np.float32 for v in (values | grads).values())
    assert_all_equal_torch(kind, params, x, state0, dout, dstate, rtol=RTOL32, atol=ATOL32)


# ---- one step -------------------------------------------------------------------------------------


def np_step(kind, x, state, params):
    if kind == "lstm":
        h, c, cache = npr.lstm_step(x, *state, params)
        return (h, c), cache
    h, cache = (npr.rnn_step if kind == "rnn" else npr.gru_step)(x, state[0], params)
    return (h,), cache


def np_step_backward(kind, dstate, cache):
    if kind == "lstm":
        dx, dh, dc, grads = npr.lstm_step_backward(*dstate, cache)
        return dx, (dh, dc), grads
    dx, dh, grads = (npr.rnn_step_backward if kind == "rnn" else npr.gru_step_backward)(dstate[0], cache)
    return dx, (dh,), grads


@pytest.mark.parametrize("kind", KINDS)
def test_one_step_and_its_gradients_equal_the_torch_step(kind, rng):
    params, x, state0, _, dstate = make_problem(kind, (1, 3, 4, 5), rng)
    state, cache = np_step(kind, x[0], state0, params)
    dx, dstate0, grads = np_step_backward(kind, dstate, cache)

    module = trnn.to_torch(params, kind)
    tx, tstate0 = leaf(x[0]), tuple(leaf(s) for s in state0)
    step = {"rnn": trnn.rnn_step, "lstm": trnn.lstm_step, "gru": trnn.gru_step}[kind]
    tstate = step(tx, *tstate0, module)
    tstate = tstate if kind == "lstm" else (tstate,)
    sum((s * torch.from_numpy(d)).sum() for s, d in zip(tstate, dstate, strict=True)).backward()

    for mine, theirs in zip([*state, dx, *dstate0], [*tstate, tx.grad, *(s.grad for s in tstate0)], strict=True):
        assert_close(mine, theirs, rtol=RTOL, atol=ATOL)
    for mine, theirs in zip(grads, trnn.from_torch(module, grad=True), strict=True):
        assert_close(mine, theirs, rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("kind", KINDS)
def test_a_sequence_layer_is_its_cell_chained_step_by_step_forward_and_backward(kind, rng):
    """BPTT is the chain rule through the unrolled loop: the step backward run from the last step to
    the first, each adding the gradient of its output to the one coming back from the future, and the
    parameter gradients summed over steps. The sequence layer does that with one product per weight."""
    params, x, state0, dout, dstate = make_problem(kind, (5, 2, 3, 4), rng)
    out, final, cache = np_forward(kind, x, state0, params)
    dx, dstate0, grads = np_backward(kind, dout, dstate, cache)

    state, caches = state0, []
    for t in range(x.shape[0]):
        state, step_cache = np_step(kind, x[t], state, params)
        np.testing.assert_allclose(state[0], out[t], rtol=RTOL, atol=ATOL)
        caches.append(step_cache)
    for mine, theirs in zip(state, final, strict=True):
        np.testing.assert_allclose(mine, theirs, rtol=RTOL, atol=ATOL)

    dstate_t, dxs, total = dstate, [], [np.zeros_like(p) for p in params]
    for t in reversed(range(x.shape[0])):
        dstate_t = (dstate_t[0] + dout[t], *dstate_t[1:])  # h_t is an output and the next step's input
        dx_t, dstate_t, grads_t = np_step_backward(kind, dstate_t, caches[t])
        dxs.insert(0, dx_t)
        total = [a + b for a, b in zip(total, grads_t, strict=True)]
    np.testing.assert_allclose(np.stack(dxs), dx, rtol=RTOL, atol=ATOL)
    for mine, theirs in zip([*dstate_t, *total], [*dstate0, *grads], strict=True):
        np.testing.assert_allclose(mine, theirs, rtol=RTOL, atol=ATOL)


# ---- backpropagation through time equals finite differences ---------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_bptt_gradients_equal_central_differences(kind, rng):
    params, x, state0, dout, dstate = make_problem(kind, (3, 2, 3, 4), rng)
    _, grads = np_results(kind, params, x, state0, dout, dstate)

    def loss(x, state0, params) -> float:  # L = sum(dout * out) + sum(dstate * final state)
        out, final, _ = np_forward(kind, x, state0, params)
        return float(np.sum(dout * out) + sum(np.sum(d * s) for d, s in zip(dstate, final, strict=True)))

    numeric = {"x": numerical_gradient(lambda v: loss(v, state0, params), x)}
    for index, name in enumerate(STATE_NAMES[kind]):

        def loss_of_state(v, index=index):
            return loss(x, tuple(v if i == index else s for i, s in enumerate(state0)), params)

        numeric[f"{name}0"] = numerical_gradient(loss_of_state, state0[index])
    for name in npr.RNNParams._fields:

        def loss_of_param(v, name=name):
            return loss(x, state0, params._replace(**{name: v}))

        numeric[name] = numerical_gradient(loss_of_param, getattr(params, name))
    assert numeric.keys() == grads.keys()
    for name, estimate in numeric.items():
        assert relative_error(grads[name], estimate) < FD_TOLERANCE, name


# ---- truncated backpropagation through time -------------------------------------------------------


def np_truncated(kind, x, state0, params, dout, chunk):
    """The recipe of the module docstring: each chunk starts from the previous chunk's final state,
    its backward gets no gradient from the future (None) and its dstate0 is dropped."""
    outs, dxs, dstate0, total, state = [], [], None, None, state0
    for start in range(0, x.shape[0], chunk):
        out, state, cache = np_forward(kind, x[start : start + chunk], state, params)
        dx, dstate, grads = np_backward(kind, dout[start : start + chunk], None, cache)
        outs.append(out)
        dxs.append(dx)
        dstate0 = dstate if dstate0 is None else dstate0  # only the first chunk's reaches state0
        total = grads if total is None else npr.RNNParams(*(a + b for a, b in zip(total, grads, strict=True)))
    return np.concatenate(outs), state, {"x": np.concatenate(dxs), "state0": dstate0, **total._asdict()}


def torch_truncated(kind, x, state0, params, dout, chunk):
    """torch with the state detached between chunks, one backward for the whole loss."""
    module = trnn.to_torch(params, kind)
    tx, tstate0 = leaf(x), tuple(leaf(s) for s in state0)
    outs, state = [], tstate0
    for start in range(0, x.shape[0], chunk):
        out, state = torch_forward(kind, tx[start : start + chunk], state, module)
        outs.append(out)
        state = tuple(s.detach() for s in state)  # truncation: the state goes on as a constant
    (torch.cat(outs) * torch.from_numpy(dout)).sum().backward()
    grads = {"x": tx.grad, "state0": tuple(s.grad for s in tstate0)}
    return grads | trnn.from_torch(module, grad=True)._asdict()


@pytest.mark.parametrize("chunk", [1, 4])  # 1: every state detached; 4: 9 = 4 + 4 + 1, a short last chunk
@pytest.mark.parametrize("kind", KINDS)
def test_truncated_bptt_in_chunks_gives_the_full_outputs_and_torchs_detached_gradients(kind, chunk, rng):
    params, x, state0, dout, _ = make_problem(kind, (9, 3, 4, 5), rng)
    out, final, _ = np_forward(kind, x, state0, params)
    chunked_out, chunked_final, grads = np_truncated(kind, x, state0, params, dout, chunk)
    # the forward pass is the same computation: carrying the state over a cut changes nothing
    np.testing.assert_allclose(chunked_out, out, rtol=RTOL, atol=ATOL)
    for mine, theirs in zip(chunked_final, final, strict=True):
        np.testing.assert_allclose(mine, theirs, rtol=RTOL, atol=ATOL)
    expected = torch_truncated(kind, x, state0, params, dout, chunk)
    for name, grad in grads.items():
        pairs = zip(grad, expected[name], strict=True) if name == "state0" else [(grad, expected[name])]
        for mine, theirs in pairs:
            assert_close(mine, theirs, rtol=RTOL, atol=ATOL)
    # ...while the gradient is not the full one: what lies beyond a cut is lost
    _, full = np_results(kind, params, x, state0, dout, tuple(np.zeros_like(s) for s in state0))
    assert relative_error(grads["weight_hh"], full["weight_hh"]) > 1e-3


# ---- negative controls: the same comparisons catch the classic mistakes ---------------------------


def permute_blocks(params: npr.RNNParams, order: list[int]) -> npr.RNNParams:
    """The same parameters with their gate blocks of H rows reordered."""
    return npr.RNNParams(*(np.concatenate([np.split(p, len(order))[k] for k in order]) for p in params))


@pytest.mark.parametrize(
    ("kind", "order"),
    [("lstm", [0, 1, 3, 2]), ("lstm", [1, 0, 2, 3]), ("gru", [1, 0, 2])],
    ids=["lstm-i-f-o-g", "lstm-f-i-g-o", "gru-z-r-n (Keras)"],
)
def test_a_wrong_gate_order_is_caught(kind, order, rng):
    """Negative control: torch reading the blocks in another order computes another function."""
    params, x, state0, _, _ = make_problem(kind, (4, 3, 4, 5), rng)
    out, _, _ = np_forward(kind, x, state0, params)
    right, _ = torch_forward(
        kind, torch.from_numpy(x), tuple(map(torch.from_numpy, state0)), trnn.to_torch(params, kind)
    )
    wrong_module = trnn.to_torch(permute_blocks(params, order), kind)
    wrong, _ = torch_forward(kind, torch.from_numpy(x), tuple(map(torch.from_numpy, state0)), wrong_module)
    assert relative_error(out, right.detach().numpy()) < 1e-12
    assert relative_error(out, wrong.detach().numpy()) > WRONG


@pytest.mark.parametrize("kind", KINDS)
def test_a_backward_that_forgets_the_recurrent_term_is_caught(kind, rng):
    """Negative control: the backward pass run with weight_hh zeroed in its cache sends nothing from
    a step's pre-activations back into the previous state (da @ W_hh = 0) while every forward value is
    right. The same comparison with torch that passes above must fail for it."""
    params, x, state0, dout, dstate = make_problem(kind, (6, 3, 4, 5), rng)
    _, _, cache = np_forward(kind, x, state0, params)
    forgetful = cache._replace(params=params._replace(weight_hh=np.zeros_like(params.weight_hh)))
    dx, dstate0, grads = np_backward(kind, dout, dstate, forgetful)
    _, expected = torch_results(kind, params, x, state0, dout, dstate)
    _, right = np_results(kind, params, x, state0, dout, dstate)
    assert relative_error(right["x"], to_numpy(expected["x"])) < 1e-12
    assert relative_error(dx, to_numpy(expected["x"])) > WRONG
    assert relative_error(dstate0[0], to_numpy(expected["h0"])) > WRONG
    assert relative_error(grads.weight_hh, expected["weight_hh"]) > WRONG


# ---- gradient clipping ----------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("factor", [0.1, 0.9, 10.0], ids=lambda f: f"max_norm={f}x")
def test_clip_grad_norm_equals_torch_above_and_below_the_threshold(factor, dtype, rng):
    params, x, state0, dout, dstate = make_problem("lstm", (5, 3, 4, 6), rng, dtype)
    _, grads = np_results("lstm", params, x, state0, dout, dstate)
    grads = npr.RNNParams(*(grads[name] for name in npr.RNNParams._fields))
    total = np.sqrt(sum(np.sum(g.astype(np.float64) ** 2) for g in grads))
    max_norm = factor * total

    clipped, norm = npr.clip_grad_norm(grads, max_norm)
    module = trnn.to_torch(params, "lstm")
    for parameter, grad in zip(module.parameters(), grads, strict=True):
        parameter.grad = torch.from_numpy(grad.copy())
    torch_clipped, torch_norm = trnn.clip_grad_norm(module, max_norm)

    rtol = RTOL if dtype == np.float64 else RTOL32
    assert isinstance(clipped, npr.RNNParams) and isinstance(norm, float)
    np.testing.assert_allclose(norm, torch_norm.item(), rtol=rtol)
    for mine, theirs in zip(clipped, torch_clipped, strict=True):
        assert mine.dtype == dtype
        assert_close(mine, theirs, rtol=rtol, atol=0)
    clipped_norm = np.sqrt(sum(np.sum(g.astype(np.float64) ** 2) for g in clipped))
    if factor < 1:  # scaled onto the threshold, all by the same factor: the direction is kept
        np.testing.assert_allclose(clipped_norm, max_norm, rtol=1e-5)
        np.testing.assert_allclose(clipped.weight_hh / grads.weight_hh, factor, rtol=1e-5)
    else:  # below the threshold nothing changes
        for mine, original in zip(clipped, grads, strict=True):
            np.testing.assert_array_equal(mine, original)


def test_clip_grad_norm_keeps_the_container_and_leaves_its_input_alone(rng):
    arrays = [rng.normal(size=(3, 4)), rng.normal(size=(5,))]
    copies = [a.copy() for a in arrays]
    as_list, norm = npr.clip_grad_norm(arrays, 0.5)
    as_dict, _ = npr.clip_grad_norm({"w": arrays[0], "b": arrays[1]}, 0.5)
    assert isinstance(as_list, list) and list(as_dict) == ["w", "b"]
    np.testing.assert_array_equal(as_dict["w"], as_list[0])
    np.testing.assert_allclose(norm, np.sqrt(sum(np.sum(a**2) for a in arrays)), rtol=1e-12)
    for array, copy in zip(arrays, copies, strict=True):
        np.testing.assert_array_equal(array, copy)
    assert npr.clip_grad_norm([], 1.0) == ([], 0.0)


# ---- initialisation and moving weights between the twins ------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_init_params_has_torchs_shapes_bound_and_dtype_and_is_seeded(kind, dtype):
    params = npr.init_params(kind, 7, 16, np.random.default_rng(3), dtype)
    rows = len(npr.GATE_ORDER[kind]) * 16
    assert [p.shape for p in params] == [(rows, 7), (rows, 16), (rows,), (rows,)]
    assert all(p.dtype == dtype for p in params)
    module = getattr(torch.nn, {"rnn": "RNN", "lstm": "LSTM", "gru": "GRU"}[kind])(7, 16, device="meta")
    assert [tuple(p.shape) for p in module.parameters()] == [p.shape for p in params]
    bound = 1 / np.sqrt(16)  # uniform(-1/sqrt(H), 1/sqrt(H)), as torch's reset_parameters
    everything = np.concatenate([p.ravel() for p in params])
    assert np.abs(everything).max() <= bound and np.abs(everything).max() > 0.95 * bound
    again = npr.init_params(kind, 7, 16, np.random.default_rng(3), dtype)
    for a, b in zip(params, again, strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("kind", KINDS)
def test_to_torch_and_from_torch_copy_weights_exactly_both_ways(kind, rng):
    params = npr.init_params(kind, 4, 6, rng, np.float32)
    generator_state = torch.random.get_rng_state()
    module = trnn.to_torch(params, kind)
    assert torch.equal(torch.random.get_rng_state(), generator_state)  # no draw from torch's global generator
    assert module.weight_ih_l0.dtype == torch.float32 and trnn.kind_of(module) == kind
    back = trnn.from_torch(module)
    for name, original, copy in zip(npr.RNNParams._fields, params, back, strict=True):
        np.testing.assert_array_equal(copy, original)
        np.testing.assert_array_equal(getattr(module, f"{name}_l0").detach().numpy(), original)
        assert not np.shares_memory(copy, original)
    twin = trnn.init_params(kind, 4, 6, np.random.default_rng(5))  # the same draw as the NumPy twin's
    for a, b in zip(trnn.from_torch(twin), npr.init_params(kind, 4, 6, np.random.default_rng(5)), strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("kind", KINDS)
def test_inputs_are_not_modified(kind, rng):
    params, x, state0, dout, dstate = make_problem(kind, (4, 2, 3, 5), rng)
    arrays = [*params, x, *state0, dout, *dstate]
    copies = [a.copy() for a in arrays]
    np_results(kind, params, x, state0, dout, dstate)
    for array, copy in zip(arrays, copies, strict=True):
        np.testing.assert_array_equal(array, copy)


# ---- errors ---------------------------------------------------------------------------------------


def test_clear_errors_for_bad_shapes_and_arguments(rng):
    params = npr.init_params("lstm", 4, 5, rng)
    x, h0, c0 = rng.normal(size=(6, 2, 4)), np.zeros((2, 5)), np.zeros((2, 5))
    with pytest.raises(ValueError, match=r"x must have 3 dimension\(s\), \(T, N, D\), got shape \(2, 4\)"):
        npr.lstm(x[0], (h0, c0), params)
    with pytest.raises(ValueError, match=r"x has D = 3 features .* weight_ih expects 4"):
        npr.lstm(x[..., :3], (h0, c0), params)
    with pytest.raises(ValueError, match=r"h0 must have shape \(N, H\) = \(2, 5\), got \(2, 4\)"):
        npr.lstm(x, (h0[:, :4], c0), params)
    with pytest.raises(ValueError, match=r"got \(1, 2, 5\); drop PyTorch's leading num_layers axis"):
        npr.lstm(x, (h0[None], c0), params)
    with pytest.raises(ValueError, match=r"c0 must have shape \(N, H\) = \(2, 5\), got \(3, 5\)"):
        npr.lstm(x, (h0, np.zeros((3, 5))), params)
    with pytest.raises(TypeError, match=r"state0 must be None or an \(h, c\) pair"):
        npr.lstm(x, h0, params)
    with pytest.raises(
        ValueError, match=r"weight_ih of an LSTM must have shape \(20, 4\): 4 block\(s\) \(i, f, g, o\)"
    ):
        npr.lstm(x, None, npr.init_params("gru", 4, 5, rng))
    with pytest.raises(ValueError, match=r"weight_ih of a GRU must have shape \(15, 4\)"):
        npr.gru(x, h0, params)
    with pytest.raises(TypeError, match="x and the parameters must have the same dtype"):
        npr.lstm(x.astype(np.float32), None, params)
    with pytest.raises(TypeError, match="x must have a floating dtype"):
        npr.rnn(x.astype(np.int64), None, npr.init_params("rnn", 4, 5, rng))
    with pytest.raises(TypeError, match="params must be an RNNParams"):
        npr.lstm(x, None, list(params))
    with pytest.raises(ValueError, match="params must have the keys weight_ih, weight_hh, bias_ih, bias_hh"):
        npr.lstm(x, None, {"weight_ih": params.weight_ih})
    with pytest.raises(ValueError, match=r"at least one step .* got shape \(0, 2, 4\)"):
        npr.lstm(x[:0], None, params)
    with pytest.raises(ValueError, match=r"x must have 2 dimension\(s\), \(N, D\), got shape \(6, 2, 4\)"):
        npr.lstm_step(x, h0, c0, params)
    out, _, cache = npr.lstm(x, (h0, c0), params)
    with pytest.raises(ValueError, match=r"dout must have the shape of what it is the gradient of, \(6, 2, 5\)"):
        npr.lstm_backward(out[1:], None, cache)
    with pytest.raises(ValueError, match=r"dh_T must have the shape .* \(2, 5\), got \(5,\)"):
        npr.lstm_backward(out, (out[-1, 0], None), cache)
    with pytest.raises(ValueError, match="kind must be one of 'rnn', 'lstm', 'gru', got 'transformer'"):
        npr.init_params("transformer", 4, 5, rng)
    with pytest.raises(ValueError, match="hidden_size must be >= 1, got 0"):
        npr.init_params("rnn", 4, 0, rng)
    with pytest.raises(TypeError, match=r"rng must be a np\.random\.Generator"):
        npr.init_params("rnn", 4, 5, 0)


@pytest.mark.parametrize(
    ("max_norm", "error", "message"),
    [
        (0.0, ValueError, "max_norm must be > 0, got 0.0"),
        (-1.0, ValueError, "max_norm must be > 0, got -1.0"),
        (float("nan"), ValueError, "max_norm must be finite"),
        ("1", TypeError, "max_norm must be a real number"),
    ],
)
def test_clip_grad_norm_rejects_a_bad_max_norm_in_both_twins(max_norm, error, message, rng):
    with pytest.raises(error, match=message):
        npr.clip_grad_norm([rng.normal(size=3)], max_norm)
    with pytest.raises(error, match=message):
        trnn.clip_grad_norm([torch.zeros(3, requires_grad=True)], max_norm)


def test_clip_grad_norm_rejects_bad_gradients(rng):
    with pytest.raises(TypeError, match="grads must be an RNNParams, a dict or a list of arrays, got ndarray"):
        npr.clip_grad_norm(rng.normal(size=3), 1.0)
    with pytest.raises(TypeError, match=r"grads\[1\] must have a floating dtype"):
        npr.clip_grad_norm([rng.normal(size=3), np.arange(3)], 1.0)


def test_the_torch_twin_rejects_modules_it_cannot_mirror():
    with pytest.raises(ValueError, match="num_layers=1; the module has num_layers=2"):
        trnn.from_torch(torch.nn.LSTM(3, 4, num_layers=2, device="meta"))
    with pytest.raises(ValueError, match="bidirectional=False"):
        trnn.from_torch(torch.nn.GRU(3, 4, bidirectional=True, device="meta"))
    with pytest.raises(ValueError, match="nonlinearity='tanh'; the module has nonlinearity='relu'"):
        trnn.from_torch(torch.nn.RNN(3, 4, nonlinearity="relu", device="meta"))
    with pytest.raises(TypeError, match=r"module must be a torch\.nn\.RNN, torch\.nn\.LSTM or torch\.nn\.GRU"):
        trnn.from_torch(torch.nn.Linear(3, 4, device="meta"))
    module = trnn.to_torch(npr.init_params("gru", 3, 4, np.random.default_rng(0)), "gru")
    with pytest.raises(ValueError, match=r"weight_ih_l0.grad is None: run a backward pass"):
        trnn.from_torch(module, grad=True)
    with pytest.raises(TypeError, match=r"module must be a torch.nn.LSTM, got GRU"):
        trnn.lstm(torch.zeros(2, 1, 3, dtype=torch.float64), None, module)


# ---- the torch twin -------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["rnn", "lstm", "gru", "rnn_step", "lstm_step", "gru_step", "init_params"])
def test_twins_share_names_and_signatures(name):
    """The same arguments in the same order; the NumPy twin's params is the torch twin's module."""
    np_params = inspect.signature(getattr(npr, name)).parameters.values()
    torch_params = inspect.signature(getattr(trnn, name)).parameters.values()
    rename = {"module": "params"}
    assert [(p.name, p.default) for p in np_params] == [(rename.get(p.name, p.name), p.default) for p in torch_params]
