"""Linear regression in `dlbook.np.linear`: the loss equals the torch twin's, the hand gradient
equals autograd and finite differences, and gradient descent reaches the closed-form answer."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from conftest import assert_close, numerical_gradient
from dlbook.data import make_linear_regression
from dlbook.np import linear as np_linear
from dlbook.np import optim as np_optim
from dlbook.torch import linear as torch_linear

# Same float64 sums in a different order: a few ulps.
TWIN_RTOL, TWIN_ATOL = 1e-12, 1e-14
# Central differences, h = 1e-6: the loss is O(1) and quadratic, so rounding (~eps / h) dominates.
FD_H, FD_RTOL, FD_ATOL = 1e-6, 1e-6, 1e-8

# (N, D): a single sample, a single feature, both, and odd sizes.
SHAPES = [(1, 1), (1, 4), (7, 1), (13, 5), (50, 3)]


def problem(rng: np.random.Generator, n: int, d: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Random X (N, D), y (N,), w (D,) and b () in float64."""
    return rng.normal(size=(n, d)), rng.normal(size=n), rng.normal(size=d), np.array(rng.normal())


def tensors(*arrays: np.ndarray) -> list[torch.Tensor]:
    return [torch.tensor(a, dtype=torch.float64, requires_grad=True) for a in arrays]


@pytest.mark.parametrize(("n", "d"), SHAPES)
def test_numpy_mse_loss_equals_torch_mse_loss(n, d, rng):
    X, y, w, b = problem(rng, n, d)
    assert isinstance(np_linear.mse_loss(X, y, w, b), float)
    assert_close(
        np_linear.mse_loss(X, y, w, b), torch_linear.mse_loss(*tensors(X, y, w, b)), rtol=TWIN_RTOL, atol=TWIN_ATOL
    )


@pytest.mark.parametrize(("n", "d"), SHAPES)
def test_numpy_predict_equals_torch_predict(n, d, rng):
    X, _, w, b = problem(rng, n, d)
    predictions = np_linear.predict(X, w, b)
    assert predictions.shape == (n,)
    assert_close(predictions, torch_linear.predict(*tensors(X, w, b)), rtol=TWIN_RTOL, atol=TWIN_ATOL)


@pytest.mark.parametrize(("n", "d"), SHAPES)
def test_numpy_mse_loss_grad_equals_torch_autograd(n, d, rng):
    X, y, w, b = problem(rng, n, d)
    grad_w, grad_b = np_linear.mse_loss_grad(X, y, w, b)
    assert grad_w.shape == (d,)
    assert grad_b.shape == ()
    tX, ty, tw, tb = tensors(X, y, w, b)
    torch_linear.mse_loss(tX, ty, tw, tb).backward()
    assert_close(grad_w, tw.grad, rtol=TWIN_RTOL, atol=TWIN_ATOL)
    assert_close(grad_b, tb.grad, rtol=TWIN_RTOL, atol=TWIN_ATOL)


@pytest.mark.parametrize(("n", "d"), SHAPES)
def test_numpy_mse_loss_grad_equals_central_finite_differences(n, d, rng):
    X, y, w, b = problem(rng, n, d)
    grad_w, grad_b = np_linear.mse_loss_grad(X, y, w, b)
    numerical_w = numerical_gradient(lambda v: np_linear.mse_loss(X, y, v, b), w, FD_H)
    numerical_b = numerical_gradient(lambda c: np_linear.mse_loss(X, y, w, c), b, FD_H)
    np.testing.assert_allclose(grad_w, numerical_w, rtol=FD_RTOL, atol=FD_ATOL)
    np.testing.assert_allclose(grad_b, numerical_b, rtol=FD_RTOL, atol=FD_ATOL)


def test_finite_difference_check_detects_a_gradient_without_the_one_over_n(rng):
    # Negative control: the sum instead of the mean is off by a factor N.
    X, y, w, b = problem(rng, 13, 5)
    wrong_w = X.T @ (X @ w + b - y)
    numerical_w = numerical_gradient(lambda v: np_linear.mse_loss(X, y, v, b), w, FD_H)
    assert not np.allclose(wrong_w, numerical_w, rtol=FD_RTOL, atol=FD_ATOL)


# Fewer rows than unknowns (N < D + 1) included: both twins return the minimum-norm solution there.
@pytest.mark.parametrize(("n", "d"), [*SHAPES, (2, 1), (3, 5), (200, 10)])
def test_numpy_least_squares_equals_torch_least_squares_and_zeroes_the_gradient(n, d, rng):
    X, y, _, _ = problem(rng, n, d)
    w, b = np_linear.least_squares(X, y)
    assert w.shape == (d,)
    assert b.shape == ()
    torch_w, torch_b = torch_linear.least_squares(torch.from_numpy(X), torch.from_numpy(y))
    # Two different factorisations (LAPACK gelsd in NumPy, gelsy in torch): agree to cond(X) * eps.
    assert_close(w, torch_w, rtol=1e-10, atol=1e-12)
    assert_close(b, torch_b, rtol=1e-10, atol=1e-12)
    grad_w, grad_b = np_linear.mse_loss_grad(X, y, w, b)
    np.testing.assert_allclose(grad_w, 0.0, atol=1e-12)
    np.testing.assert_allclose(grad_b, 0.0, atol=1e-12)


def test_least_squares_recovers_the_true_weights_without_noise(rng):
    X, y, true_w, true_b = make_linear_regression(30, 4, noise=0.0, rng=rng)
    w, b = np_linear.least_squares(X, y)
    np.testing.assert_allclose(w, true_w, rtol=1e-10)
    np.testing.assert_allclose(b, true_b, rtol=1e-10)


def test_gradient_descent_with_numpy_sgd_converges_to_least_squares(rng):
    X, y, _, _ = make_linear_regression(200, 3, noise=0.1, rng=rng)
    params = [np.zeros(3), np.zeros(())]
    optimizer = np_optim.SGD(lr=0.5, momentum=0.5)
    state = optimizer.init(params)
    losses = []
    for _ in range(300):
        losses.append(np_linear.mse_loss(X, y, *params))
        params, state = optimizer.step(params, list(np_linear.mse_loss_grad(X, y, *params)), state)
    w, b = np_linear.least_squares(X, y)
    np.testing.assert_allclose(params[0], w, atol=1e-6)
    np.testing.assert_allclose(params[1], b, atol=1e-6)
    assert losses[-1] < losses[0]
    assert np_linear.mse_loss(X, y, *params) == pytest.approx(np_linear.mse_loss(X, y, w, b), rel=1e-10)


FUNCTIONS_OF_X_Y_W_B = [np_linear.mse_loss, np_linear.mse_loss_grad]


@pytest.mark.parametrize("function", FUNCTIONS_OF_X_Y_W_B, ids=lambda f: f.__name__)
def test_y_with_a_different_number_of_rows_is_rejected_naming_both_counts(function):
    with pytest.raises(ValueError, match=r"X has 5 rows, y has 4"):
        function(np.zeros((5, 3)), np.zeros(4), np.zeros(3), np.array(0.0))


def test_least_squares_rejects_y_with_a_different_number_of_rows_naming_both_counts():
    with pytest.raises(ValueError, match=r"X has 5 rows, y has 6"):
        np_linear.least_squares(np.zeros((5, 3)), np.zeros(6))


@pytest.mark.parametrize("function", FUNCTIONS_OF_X_Y_W_B, ids=lambda f: f.__name__)
def test_w_of_the_wrong_length_is_rejected_naming_expected_and_actual_shape(function):
    with pytest.raises(ValueError, match=r"expected \(3,\), got \(4,\)"):
        function(np.zeros((5, 3)), np.zeros(5), np.zeros(4), np.array(0.0))


def test_predict_rejects_w_of_the_wrong_length_naming_expected_and_actual_shape():
    with pytest.raises(ValueError, match=r"expected \(3,\), got \(2,\)"):
        np_linear.predict(np.zeros((5, 3)), np.zeros(2), np.array(0.0))


@pytest.mark.parametrize(
    ("X", "y", "error", "message"),
    [
        (np.zeros(5), np.zeros(5), ValueError, r"X must have 2 dimension\(s\), got shape \(5,\)"),
        (np.zeros((5, 3)), np.zeros((5, 1)), ValueError, r"y must have 1 dimension\(s\), got shape \(5, 1\)"),
        (np.zeros((5, 3), dtype=int), np.zeros(5), TypeError, r"X must have a floating dtype"),
        (np.zeros((5, 3)).tolist(), np.zeros(5), TypeError, r"X must be a NumPy array, got list"),
    ],
    ids=["X-1d", "y-2d", "X-int", "X-list"],
)
def test_least_squares_rejects_arrays_of_the_wrong_rank_or_dtype(X, y, error, message):
    with pytest.raises(error, match=message):
        np_linear.least_squares(X, y)


def test_linear_functions_do_not_modify_their_inputs(rng):
    X, y, w, b = problem(rng, 9, 3)
    before = [a.copy() for a in (X, y, w, b)]
    np_linear.predict(X, w, b)
    np_linear.mse_loss(X, y, w, b)
    np_linear.mse_loss_grad(X, y, w, b)
    np_linear.least_squares(X, y)
    for a, a_before in zip((X, y, w, b), before, strict=True):
        np.testing.assert_array_equal(a, a_before)
