"""The autograd engine of `dlbook.np.tensor` and the checks of `dlbook.np.gradcheck`.

Every operation's value and gradients equal torch.autograd's in float64 on random inputs of random
shapes, broadcasting included; gradients equal central differences; a wrong broadcasting rule is
caught (negative control); the loss functions are stable at logits of +-1000; a tensor used twice
collects both gradients; and the graph's memory is counted exactly.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import dlbook.np.tensor as tensor_module
from conftest import assert_close
from dlbook.np.gradcheck import numerical_gradient, relative_error
from dlbook.np.mlp import init_mlp, mlp_forward
from dlbook.np.tensor import (
    Tensor,
    cross_entropy,
    graph_nbytes,
    log_softmax,
    softmax,
    topological_order,
    unbroadcast,
)

# Both sides do the same float64 arithmetic, up to the order of a few sums (BLAS, pairwise
# summation): a few ulps, scaled by the size of the reduction.
RTOL, ATOL = 1e-12, 1e-13
# Central differences with h = 1e-6 on O(1) functions: rounding ~1e-16 / 1e-6 dominates.
FD_H, FD_TOLERANCE = 1e-6, 1e-7

shapes = hnp.array_shapes(min_dims=0, max_dims=3, min_side=1, max_side=4)
seeds = st.integers(0, 2**32 - 1)


def torch_leaf(array: np.ndarray) -> torch.Tensor:
    return torch.tensor(array, dtype=torch.float64, requires_grad=True)


def assert_matches_torch(np_fn, torch_fn, arrays: list[np.ndarray], rng: np.random.Generator) -> None:
    """np_fn on Tensors and torch_fn on torch tensors give the same output and, for a random
    upstream gradient dL/d(output), the same gradient for every input."""
    inputs = [Tensor(a, requires_grad=True) for a in arrays]
    torch_inputs = [torch_leaf(a) for a in arrays]
    out, torch_out = np_fn(*inputs), torch_fn(*torch_inputs)
    assert isinstance(out, Tensor)
    assert_close(out.data, torch_out, rtol=RTOL, atol=ATOL)
    upstream = rng.normal(size=out.shape)
    out.backward(upstream)
    torch_out.backward(torch.from_numpy(upstream))
    for index, (x, torch_x) in enumerate(zip(inputs, torch_inputs, strict=True)):
        assert x.grad is not None, f"input {index} got no gradient"
        assert_close(x.grad, torch_x.grad, rtol=RTOL, atol=ATOL)


def away_from_zero(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Values with |v| in [0.5, 2] and random signs: safe denominators, no kinks of ReLU nearby."""
    return rng.choice([-1.0, 1.0], size=shape) * rng.uniform(0.5, 2.0, size=shape)


# ---- elementwise operations with broadcasting -------------------------------------------------

BINARY = {
    "add": lambda a, b: a + b,
    "sub": lambda a, b: a - b,
    "mul": lambda a, b: a * b,
    "div": lambda a, b: a / b,
    "mixed": lambda a, b: (a * b - b) / (b * b) + a,
}


@pytest.mark.parametrize("name", BINARY)
@settings(max_examples=20, deadline=None)
@given(shapes=hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=3, max_side=4), seed=seeds)
def test_binary_operations_equal_torch_for_any_broadcastable_shapes(name, shapes, seed):
    rng = np.random.default_rng(seed)
    a_shape, b_shape = shapes.input_shapes
    assert_matches_torch(BINARY[name], BINARY[name], [rng.normal(size=a_shape), away_from_zero(rng, b_shape)], rng)


@pytest.mark.parametrize(
    ("a_shape", "b_shape"),
    [((3, 1), (1, 4)), ((5, 4), (4,)), ((), (2, 3)), ((2, 3), ()), ((2, 1, 3), (4, 1)), ((1,), (1,)), ((6,), (6,))],
)
@pytest.mark.parametrize("name", BINARY)
def test_binary_operations_equal_torch_in_the_book_broadcasting_cases(name, a_shape, b_shape, rng):
    assert_matches_torch(BINARY[name], BINARY[name], [rng.normal(size=a_shape), away_from_zero(rng, b_shape)], rng)


REFLECTED = {
    "number + x": (lambda x: 2.5 + x, lambda x: 2.5 + x),
    "number - x": (lambda x: 2.5 - x, lambda x: 2.5 - x),
    "number * x": (lambda x: 2.5 * x, lambda x: 2.5 * x),
    "number / x": (lambda x: 2.5 / x, lambda x: 2.5 / x),
    "x - number": (lambda x: x - 2.5, lambda x: x - 2.5),
    "x / number": (lambda x: x / 4.0, lambda x: x / 4.0),
    "-x": (lambda x: -x, lambda x: -x),
    "array + x": (lambda x: np.arange(3.0) + x, lambda x: torch.arange(3.0, dtype=torch.float64) + x),
    "array * x": (lambda x: np.arange(3.0) * x, lambda x: torch.arange(3.0, dtype=torch.float64) * x),
    "numpy scalar * x": (lambda x: np.float64(3.0) * x, lambda x: 3.0 * x),
}


@pytest.mark.parametrize("name", REFLECTED)
def test_operations_with_numbers_and_arrays_on_either_side_equal_torch(name, rng):
    np_fn, torch_fn = REFLECTED[name]
    assert_matches_torch(np_fn, torch_fn, [away_from_zero(rng, (2, 3))], rng)


UNARY = {
    "exp": (lambda x: x.exp(), torch.exp, False),
    "log": (lambda x: x.log(), torch.log, True),
    "relu": (lambda x: x.relu(), torch.relu, False),
    "tanh": (lambda x: x.tanh(), torch.tanh, False),
    "sigmoid": (lambda x: x.sigmoid(), torch.sigmoid, False),
    "square": (lambda x: x**2, lambda x: x**2, False),
    "cube": (lambda x: x**3, lambda x: x**3, False),
    "sqrt": (lambda x: x**0.5, lambda x: x**0.5, True),
    "power -1.5": (lambda x: x**-1.5, lambda x: x**-1.5, True),
}


@pytest.mark.parametrize("name", UNARY)
@settings(max_examples=15, deadline=None)
@given(shape=shapes, seed=seeds)
def test_elementwise_functions_equal_torch_for_any_shape(name, shape, seed):
    np_fn, torch_fn, positive_only = UNARY[name]
    rng = np.random.default_rng(seed)
    x = away_from_zero(rng, shape)  # off ReLU's kink at 0
    assert_matches_torch(np_fn, torch_fn, [np.abs(x) if positive_only else x], rng)


def test_sigmoid_is_finite_and_exact_at_plus_and_minus_1000_without_warnings():
    with np.errstate(over="raise", divide="raise", invalid="raise"):  # exp(-1000) may underflow to 0
        y = Tensor(np.array([-1000.0, -50.0, 0.0, 50.0, 1000.0])).sigmoid()
    expected = torch.sigmoid(torch.tensor([-1000.0, -50.0, 0.0, 50.0, 1000.0], dtype=torch.float64))
    assert_close(y.data, expected, rtol=1e-15, atol=0)


def test_relu_passes_no_gradient_at_zero_as_torch_does():
    x = Tensor(np.array([-1.0, 0.0, 2.0]), requires_grad=True)
    x.relu().sum().backward()
    np.testing.assert_array_equal(x.grad, [0.0, 0.0, 1.0])


def test_power_rejects_a_tensor_exponent():
    with pytest.raises(TypeError, match="exponent of \\*\\* must be a number"):
        Tensor(2.0) ** Tensor(3.0)


# ---- reductions, reshape, transpose, matmul ---------------------------------------------------

AXES = [None, 0, 1, 2, -1, (0, 2), (0, 1, 2)]


@pytest.mark.parametrize("keepdims", [False, True])
@pytest.mark.parametrize("axis", AXES, ids=str)
@pytest.mark.parametrize("reduction", ["sum", "mean"])
def test_sum_and_mean_over_each_axis_equal_torch(reduction, axis, keepdims, rng):
    def np_fn(x):
        return getattr(x, reduction)(axis=axis, keepdims=keepdims)

    def torch_fn(x):
        dim = tuple(range(x.ndim)) if axis is None else axis
        return getattr(x, reduction)(dim=dim, keepdim=keepdims)

    assert_matches_torch(np_fn, torch_fn, [rng.normal(size=(2, 3, 4))], rng)


@settings(max_examples=25, deadline=None)
@given(data=st.data(), keepdims=st.booleans(), reduction=st.sampled_from(["sum", "mean"]), seed=seeds)
def test_sum_and_mean_over_any_axes_of_any_shape_equal_torch(data, keepdims, reduction, seed):
    shape = data.draw(hnp.array_shapes(min_dims=1, max_dims=4, min_side=1, max_side=4))
    axis = data.draw(hnp.valid_tuple_axes(len(shape), min_size=1))

    def np_fn(x):
        return getattr(x, reduction)(axis=axis, keepdims=keepdims)

    def torch_fn(x):
        return getattr(x, reduction)(dim=axis, keepdim=keepdims)

    assert_matches_torch(np_fn, torch_fn, [np.random.default_rng(seed).normal(size=shape)], np.random.default_rng(0))


@settings(max_examples=25, deadline=None)
@given(data=st.data(), seed=seeds)
def test_reshape_and_transpose_of_any_shape_equal_torch(data, seed):
    shape = data.draw(hnp.array_shapes(min_dims=1, max_dims=4, min_side=1, max_side=4))
    axes = tuple(data.draw(st.permutations(range(len(shape)))))
    new_shape = tuple(reversed(shape))
    rng = np.random.default_rng(seed)
    assert_matches_torch(lambda x: x.transpose(*axes), lambda x: x.permute(*axes), [rng.normal(size=shape)], rng)
    assert_matches_torch(lambda x: x.transpose(axes), lambda x: x.permute(*axes), [rng.normal(size=shape)], rng)
    assert_matches_torch(lambda x: x.reshape(new_shape), lambda x: x.reshape(new_shape), [rng.normal(size=shape)], rng)
    assert_matches_torch(lambda x: x.reshape(-1), lambda x: x.reshape(-1), [rng.normal(size=shape)], rng)
    # A reshape and a transpose in one graph: (a, b, ...) -> (..., b, a) -> flat -> (..., b, a)
    assert_matches_torch(
        lambda x: (x.transpose() * 2).reshape(-1).reshape(new_shape),
        lambda x: (x.permute(*reversed(range(x.ndim))) * 2).reshape(-1).reshape(new_shape),
        [rng.normal(size=shape)],
        rng,
    )


def test_the_dot_t_property_transposes_a_matrix_as_torch_does(rng):
    assert_matches_torch(lambda x: x.T, lambda x: x.T, [rng.normal(size=(3, 5))], rng)


@pytest.mark.parametrize(
    ("a_shape", "b_shape"),
    [((1, 1), (1, 1)), ((5, 3), (3, 4)), ((1, 7), (7, 1)), ((5, 3), (3,)), ((3,), (3, 4)), ((3,), (3,))],
)
def test_matmul_of_matrices_and_vectors_equals_torch(a_shape, b_shape, rng):
    arrays = [rng.normal(size=a_shape), rng.normal(size=b_shape)]
    assert_matches_torch(lambda a, b: a @ b, lambda a, b: a @ b, arrays, rng)


@settings(max_examples=20, deadline=None)
@given(n=st.integers(1, 6), d=st.integers(1, 6), m=st.integers(1, 6), seed=seeds)
def test_matmul_of_any_sizes_equals_torch(n, d, m, seed):
    rng = np.random.default_rng(seed)
    arrays = [rng.normal(size=(n, d)), rng.normal(size=(d, m))]
    assert_matches_torch(lambda a, b: a @ b, lambda a, b: a @ b, arrays, rng)


def test_an_array_on_the_left_of_matmul_gives_a_tensor_and_its_gradient(rng):
    A = rng.normal(size=(4, 3))
    assert_matches_torch(lambda x: A @ x, lambda x: torch.from_numpy(A) @ x, [rng.normal(size=(3, 2))], rng)


@pytest.mark.parametrize(
    ("a_shape", "b_shape", "message"),
    [
        ((5, 3), (4, 2), r"inner dimensions to match: \(5, 3\) @ \(4, 2\)"),
        ((2, 3, 4), (4, 2), r"1 or 2 dimensions\), got shapes \(2, 3, 4\) @ \(4, 2\)"),
    ],
)
def test_matmul_rejects_mismatched_shapes_naming_both(a_shape, b_shape, message):
    with pytest.raises(ValueError, match=message):
        Tensor(np.zeros(a_shape)) @ Tensor(np.zeros(b_shape))


# ---- softmax and cross-entropy ----------------------------------------------------------------


@pytest.mark.parametrize("scale", [1.0, 1000.0], ids=["unit", "1000"])
@pytest.mark.parametrize(("shape", "axis"), [((7,), -1), ((4, 5), -1), ((4, 5), 0), ((2, 3, 4), 1)])
def test_softmax_and_log_softmax_equal_torch_even_for_huge_inputs(shape, axis, scale, rng):
    x = scale * rng.normal(size=shape)
    assert_matches_torch(lambda t: softmax(t, axis), lambda t: torch.softmax(t, axis), [x], rng)
    assert_matches_torch(lambda t: log_softmax(t, axis), lambda t: torch.log_softmax(t, axis), [x], rng)
    assert np.all(np.isfinite(log_softmax(Tensor(x), axis).data))


@pytest.mark.parametrize(("n", "c"), [(1, 2), (7, 3), (64, 10), (5, 1)])
def test_cross_entropy_and_its_gradient_equal_torch(n, c, rng):
    targets = rng.integers(0, c, size=n)
    assert_matches_torch(
        lambda z: cross_entropy(z, targets),
        lambda z: torch.nn.functional.cross_entropy(z, torch.from_numpy(targets)),
        [rng.normal(size=(n, c))],
        rng,
    )


def test_cross_entropy_at_logits_of_plus_and_minus_1000_is_finite_and_equals_torch(rng):
    logits = rng.choice([-1000.0, 1000.0], size=(16, 4)) + rng.normal(size=(16, 4))
    targets = rng.integers(0, 4, size=16)
    with np.errstate(over="raise", divide="raise", invalid="raise"):  # underflow to 0 is fine
        z = Tensor(logits, requires_grad=True)
        loss = cross_entropy(z, targets)
        loss.backward()
    assert np.isfinite(loss.item()) and loss.item() > 100  # wrong classes by ~2000 cost ~2000
    assert np.all(np.isfinite(z.grad))
    torch_z = torch_leaf(logits)
    torch_loss = torch.nn.functional.cross_entropy(torch_z, torch.from_numpy(targets))
    torch_loss.backward()
    assert_close(loss.data, torch_loss, rtol=RTOL, atol=ATOL)
    assert_close(z.grad, torch_z.grad, rtol=RTOL, atol=ATOL)


def test_cross_entropy_gradient_is_softmax_minus_onehot_over_n(rng):
    logits, targets = rng.normal(size=(6, 3)), rng.integers(0, 3, size=6)
    z = Tensor(logits, requires_grad=True)
    cross_entropy(z, targets).backward()
    np.testing.assert_allclose(z.grad, (softmax(Tensor(logits)).data - np.eye(3)[targets]) / 6, rtol=1e-14, atol=1e-16)


@pytest.mark.parametrize(
    ("logits_shape", "targets", "error", "message"),
    [
        ((4, 3), np.array([0, 1, 2, 0.0]), TypeError, r"integer NumPy array of class indices, got dtype float64"),
        ((4, 3), [0, 1, 2, 0], TypeError, r"integer NumPy array of class indices, got list"),
        ((4, 3), np.array([0, 1, 2]), ValueError, r"expected shape \(4,\), got \(3,\)"),
        ((4, 3), np.array([[0, 1, 2, 0]]), ValueError, r"expected shape \(4,\), got \(1, 4\)"),
        ((4, 3), np.array([0, 1, 3, 0]), ValueError, r"must lie in \[0, 3\) for 3 classes, got values from 0 to 3"),
        ((4, 3), np.array([0, -1, 2, 0]), ValueError, r"must lie in \[0, 3\).*from -1 to 2"),
        ((12,), np.array([0]), ValueError, r"logits must have shape \(N, C\), got shape \(12,\)"),
    ],
    ids=["float-targets", "list-targets", "short", "2d", "too-large", "negative", "1d-logits"],
)
def test_cross_entropy_rejects_bad_targets_and_logits_naming_expected_and_actual(logits_shape, targets, error, message):
    with pytest.raises(error, match=message):
        cross_entropy(Tensor(np.zeros(logits_shape)), targets)


# ---- the backward pass ------------------------------------------------------------------------


def test_a_tensor_used_twice_collects_both_gradients(rng):
    x = rng.normal(size=(3, 4))
    assert_matches_torch(lambda t: t * t, lambda t: t * t, [x], rng)
    assert_matches_torch(lambda t: t + t, lambda t: t + t, [x], rng)
    # A diamond: a feeds three uses, two of them through one product.
    assert_matches_torch(
        lambda t: (lambda a: a * a.exp() + a)(t.tanh()).sum(axis=0),
        lambda t: (lambda a: a * a.exp() + a)(t.tanh()).sum(dim=0),
        [x],
        rng,
    )


def test_x_times_x_plus_x_has_gradient_two_x_plus_one():
    x = Tensor(np.array([-2.0, 0.5, 3.0]), requires_grad=True)
    (x * x + x).sum().backward()
    np.testing.assert_array_equal(x.grad, 2 * x.data + 1)


def test_two_backward_passes_add_up_as_in_torch_and_zero_grad_resets():
    x = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    loss = (x * x).sum()
    loss.backward()
    loss.backward()
    np.testing.assert_array_equal(x.grad, 2 * (2 * x.data))
    loss.zero_grad()
    assert x.grad is None and loss.grad is None
    loss.backward()
    np.testing.assert_array_equal(x.grad, 2 * x.data)


def test_backward_of_a_non_scalar_without_a_gradient_raises_naming_the_shape():
    y = Tensor(np.ones((3, 4)), requires_grad=True) * 2
    with pytest.raises(ValueError, match=r"needs a scalar.*got shape \(3, 4\)"):
        y.backward()


def test_backward_rejects_a_gradient_of_the_wrong_shape():
    y = Tensor(np.ones((3, 4)), requires_grad=True) * 2
    with pytest.raises(ValueError, match=r"expected \(3, 4\), got \(4, 3\)"):
        y.backward(np.ones((4, 3)))


def test_backward_of_a_one_element_matrix_needs_no_gradient():
    x = Tensor(np.array([[3.0]]), requires_grad=True)
    (x * x).backward()
    np.testing.assert_array_equal(x.grad, [[6.0]])


def test_backward_without_any_tensor_requiring_grad_raises():
    with pytest.raises(RuntimeError, match="requires_grad=True"):
        (Tensor(1.0) * 2).backward()


def test_constants_get_no_gradient_and_constant_results_keep_no_graph(rng):
    W = Tensor(rng.normal(size=(3, 2)), requires_grad=True)
    x = Tensor(rng.normal(size=(4, 3)))
    (x @ W).sum().backward()
    assert x.grad is None and W.grad is not None
    constant = x * 2 + 1
    assert not constant.requires_grad and constant.parents == ()


def test_a_graph_20000_operations_deep_needs_no_recursion():
    x = Tensor(1.0, requires_grad=True)
    y = x
    for _ in range(20_000):
        y = y * 1.0001
    y.backward()
    assert x.grad == pytest.approx(1.0001**20_000, rel=1e-10)
    assert len(topological_order(y)) == 40_001  # x, each product and each constant 1.0001


def test_topological_order_puts_every_tensor_after_its_parents(rng):
    params = init_mlp([3, 4, 4, 2], "he", rng)
    loss = cross_entropy(mlp_forward(params, rng.normal(size=(5, 3))), np.array([0, 1, 0, 1, 1]))
    order = topological_order(loss)
    position = {id(node): i for i, node in enumerate(order)}
    assert len(position) == len(order) and order[-1] is loss
    assert all(position[id(parent)] < position[id(node)] for node in order for parent in node.parents)


def test_float32_stays_float32_and_other_inputs_become_float64():
    x32 = Tensor(np.ones(3, dtype=np.float32), requires_grad=True)
    y = (x32 * 2.5 + 1).tanh().sum()
    y.backward()
    assert y.dtype == np.float32 and x32.grad.dtype == np.float32
    assert Tensor([1, 2]).dtype == Tensor(3).dtype == Tensor(np.arange(3)).dtype == np.float64
    assert Tensor(2.0).shape == () and Tensor([[1.0, 2.0]]).ndim == 2


def test_operations_leave_their_input_arrays_unchanged(rng):
    a, b = rng.normal(size=(4, 3)), rng.normal(size=(3,))
    a_before, b_before = a.copy(), b.copy()
    ta, tb = Tensor(a, requires_grad=True), Tensor(b, requires_grad=True)
    cross_entropy((ta * tb + tb).relu() @ Tensor(np.ones((3, 2))), np.array([0, 1, 1, 0])).backward()
    np.testing.assert_array_equal(a, a_before)
    np.testing.assert_array_equal(b, b_before)
    assert not np.shares_memory(ta.grad, tb.grad)


def test_tensor_of_a_tensor_is_refused_with_a_hint():
    with pytest.raises(TypeError, match=r"pass tensor\.data"):
        Tensor(Tensor(1.0))


# ---- gradient checking against central differences --------------------------------------------

FUNCTIONS_OF_X = {
    "tanh-mlp": lambda x, c: ((x @ c["W"] + c["b"]).tanh() @ c["V"]).sum(),
    "broadcast-bias": lambda x, c: ((c["M"] * x + x) ** 2).mean(),
    "sigmoid-log": lambda x, c: (x.sigmoid() + 0.5).log().sum() / (x.exp().mean() + 1),
    "softmax": lambda x, c: (softmax(x @ c["W"], axis=1) * c["P"]).sum(),
    "cross-entropy": lambda x, c: cross_entropy((x @ c["W"]).relu() - x.sum(axis=1, keepdims=True), c["y"]),
    "reshape-transpose": lambda x, c: (x.T.reshape(-1) * c["r"]).sum() * x.mean(axis=0).sum(),
}


def constants(rng: np.random.Generator) -> dict:
    return {
        "W": Tensor(rng.normal(size=(3, 4))),
        "b": Tensor(rng.normal(size=(4,))),
        "V": Tensor(rng.normal(size=(4, 2))),
        "M": Tensor(rng.normal(size=(1, 3))),
        "P": Tensor(rng.normal(size=(5, 4))),
        "y": rng.integers(0, 4, size=5),
        "r": Tensor(rng.normal(size=15)),
    }


@pytest.mark.parametrize("name", FUNCTIONS_OF_X)
def test_engine_gradients_equal_central_differences(name, rng):
    f, c = FUNCTIONS_OF_X[name], constants(rng)
    x = away_from_zero(rng, (5, 3))
    tensor_x = Tensor(x, requires_grad=True)
    f(tensor_x, c).backward()
    numerical = numerical_gradient(lambda a: f(Tensor(a), c).item(), x, FD_H)
    assert relative_error(tensor_x.grad, numerical) < FD_TOLERANCE


def wrong_unbroadcast(grad: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """A bug a student might write: keep the first copy of a broadcast input instead of summing all copies."""
    grad = grad[(0,) * (grad.ndim - len(shape))]  # drop the added leading axes by taking index 0
    index = tuple(slice(0, 1) if size == 1 else slice(None) for size in shape)
    return grad[index]


def test_gradient_check_catches_a_broadcasting_rule_that_does_not_sum(monkeypatch, rng):
    # Negative control: the bias b (4,) is broadcast over 5 rows; its gradient must be their sum.
    x, W = Tensor(rng.normal(size=(5, 3))), Tensor(rng.normal(size=(3, 4)))
    b = rng.normal(size=4)

    def loss(bias: Tensor) -> Tensor:
        return ((x @ W + bias).tanh() ** 2).sum()

    numerical = numerical_gradient(lambda a: loss(Tensor(a)).item(), b, FD_H)
    right = Tensor(b, requires_grad=True)
    loss(right).backward()
    assert relative_error(right.grad, numerical) < FD_TOLERANCE
    monkeypatch.setattr(tensor_module, "unbroadcast", wrong_unbroadcast)
    wrong = Tensor(b, requires_grad=True)
    loss(wrong).backward()
    assert wrong.grad.shape == b.shape
    assert relative_error(wrong.grad, numerical) > 0.1


def test_a_backward_rule_returning_the_wrong_shape_is_reported_by_name(monkeypatch):
    monkeypatch.setattr(tensor_module, "unbroadcast", lambda grad, shape: grad)  # forgets to sum at all
    y = Tensor(np.ones((5, 4))) + Tensor(np.ones(4), requires_grad=True)
    with pytest.raises(
        RuntimeError,
        match=r"backward rule of '\+' returned a gradient of shape \(5, 4\) for an "
        r"input of shape \(4,\)",
    ):
        y.sum().backward()


@pytest.mark.parametrize(
    ("grad_shape", "shape", "expected"),
    [
        ((5, 4), (4,), (4,)),
        ((5, 4), (1, 4), (1, 4)),
        ((5, 4), (5, 1), (5, 1)),
        ((2, 3, 4), (), ()),
        ((2, 3, 4), (3, 1), (3, 1)),
        ((3,), (3,), (3,)),
    ],
)
def test_unbroadcast_sums_over_broadcast_axes_to_the_input_shape(grad_shape, shape, expected, rng):
    grad = rng.normal(size=grad_shape)
    reduced = unbroadcast(grad, shape)
    assert reduced.shape == expected
    assert reduced.sum() == pytest.approx(grad.sum(), rel=1e-12)  # nothing lost, nothing counted twice


def test_numerical_gradient_of_a_cubic_is_three_x_squared_and_leaves_x_unchanged(rng):
    x = rng.normal(size=(3, 2))
    x_before = x.copy()
    gradient = numerical_gradient(lambda a: float(np.sum(a**3)), x, h=1e-5)
    np.testing.assert_allclose(gradient, 3 * x**2, rtol=1e-8, atol=1e-9)  # truncation error h^2 = 1e-10
    np.testing.assert_array_equal(x, x_before)


def test_numerical_gradient_handles_a_0d_point_a_float32_point_and_a_tensor_valued_f():
    assert numerical_gradient(lambda a: a**2, np.array(3.0)) == pytest.approx(6.0, rel=1e-8)
    x32 = np.array([1.0, 2.0], dtype=np.float32)
    np.testing.assert_allclose(numerical_gradient(lambda a: Tensor(a).exp().sum(), x32), np.exp([1.0, 2.0]), rtol=1e-8)


@pytest.mark.parametrize(
    ("f", "x", "error", "message"),
    [
        (lambda a: a.sum(), np.arange(3), TypeError, r"x must have a floating dtype"),
        (lambda a: a, np.zeros(3), ValueError, r"f must return a single number, got a value of shape \(3,\)"),
    ],
)
def test_numerical_gradient_rejects_integer_points_and_non_scalar_functions(f, x, error, message):
    with pytest.raises(error, match=message):
        numerical_gradient(f, x)


def test_relative_error_is_zero_for_equal_arrays_and_scale_free(rng):
    a = rng.normal(size=(4, 3))
    assert relative_error(a, a) == 0.0
    assert relative_error(np.zeros(3), np.zeros(3)) == 0.0
    b = a + 1e-6 * rng.normal(size=a.shape)
    assert relative_error(1e-8 * a, 1e-8 * b) == pytest.approx(relative_error(a, b), rel=1e-6)
    assert relative_error(a, b) == relative_error(b, a)
    assert relative_error(np.array([1.0]), np.array([-1.0])) == 2.0
    with pytest.raises(ValueError, match=r"same shape, got \(2,\) and \(3,\)"):
        relative_error(np.zeros(2), np.zeros(3))


# ---- the memory a graph holds -----------------------------------------------------------------


def mlp_graph_nbytes_formula(n: int, layer_sizes: list[int]) -> int:
    """Float64 bytes of an MLP's loss graph: the input, the parameters, three (N, H) arrays per
    hidden layer (product, plus bias, activation), two (N, C) for the last (product, plus bias),
    and the scalar loss. The cross-entropy keeps nothing else."""
    d, *hidden, c = layer_sizes
    n_params = sum(fan_in * fan_out + fan_out for fan_in, fan_out in itertools.pairwise(layer_sizes))
    return 8 * (n * d + n_params + 3 * n * sum(hidden) + 2 * n * c + 1)


@pytest.mark.parametrize("layer_sizes", [[2, 32, 32, 3], [5, 7, 2], [3, 16, 16, 16, 16, 4]])
@pytest.mark.parametrize("n", [1, 10, 257])
def test_graph_nbytes_of_an_mlp_loss_equals_the_count_of_its_arrays(n, layer_sizes, rng):
    params = init_mlp(layer_sizes, "he", rng)
    logits = mlp_forward(params, rng.normal(size=(n, layer_sizes[0])))
    loss = cross_entropy(logits, rng.integers(0, layer_sizes[-1], size=n))
    assert graph_nbytes(loss) == mlp_graph_nbytes_formula(n, layer_sizes)


def test_graph_nbytes_grows_linearly_with_batch_size_and_depth(rng):
    def nbytes(n: int, depth: int) -> int:
        params = init_mlp([4] + [16] * depth + [3], "he", np.random.default_rng(0))
        return graph_nbytes(mlp_forward(params, rng.normal(size=(n, 4))))

    by_batch = [nbytes(n, 2) for n in (100, 200, 300, 400)]
    assert len(set(np.diff(by_batch))) == 1 and by_batch[1] > by_batch[0]
    per_row = by_batch[1] - by_batch[0]
    assert per_row == 8 * 100 * (4 + 3 * 16 * 2 + 2 * 3)  # input, 3 arrays per hidden layer, logits
    by_depth = [nbytes(100, depth) for depth in (1, 2, 3, 4)]
    assert len(set(np.diff(by_depth))) == 1
    assert by_depth[1] - by_depth[0] == 8 * (3 * 100 * 16 + 16 * 16 + 16)  # activations + one layer's weights


def test_graph_nbytes_counts_a_shared_tensor_once():
    x = Tensor(np.ones(1000), requires_grad=True)
    assert graph_nbytes(x * x) == 2 * 8000
    with pytest.raises(TypeError, match="needs a Tensor"):
        graph_nbytes(np.ones(3))
