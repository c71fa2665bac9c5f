"""The MLP of `dlbook.np.mlp` on the NumPy engine and its torch twin `dlbook.torch.mlp`.

Both twins draw identical weights for a seed, so every forward value, loss and gradient can be held
to torch's, and full-batch training with Adam follows torch step for step for hundreds of steps.
"""

from __future__ import annotations

import itertools

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
from matplotlib.collections import PathCollection
from matplotlib.contour import QuadContourSet

from conftest import assert_close
from dlbook.data import make_moons, make_spirals
from dlbook.np import mlp as np_mlp
from dlbook.np import optim as np_optim
from dlbook.np.tensor import Tensor, softmax
from dlbook.torch import mlp as torch_mlp
from dlbook.torch import optim as torch_optim
from dlbook.viz import plot_decision_boundary

# One forward and backward pass: the same float64 operations, summed in another order (BLAS).
RTOL, ATOL = 1e-12, 1e-13
# Hundreds of optimizer steps let those ulps grow; in practice they stay below 1e-13.
TRAIN_RTOL = 1e-8

ARCHITECTURES = [[2, 3], [2, 32, 32, 3], [5, 7, 1, 4], [1, 1, 1]]


def twins(layer_sizes: list[int], init: str = "he", seed: int = 0) -> tuple[list[Tensor], list[torch.Tensor]]:
    """The same initial weights, as NumPy-engine Tensors and as torch tensors."""
    return (
        np_mlp.init_mlp(layer_sizes, init, np.random.default_rng(seed)),
        torch_mlp.init_mlp(layer_sizes, init, np.random.default_rng(seed)),
    )


# ---- initialisation ---------------------------------------------------------------------------


@pytest.mark.parametrize("layer_sizes", ARCHITECTURES, ids=str)
@pytest.mark.parametrize("twin", [np_mlp, torch_mlp], ids=["numpy", "torch"])
def test_init_mlp_returns_weights_fan_in_by_fan_out_and_zero_biases(twin, layer_sizes, rng):
    params = twin.init_mlp(layer_sizes, "xavier", rng)
    assert len(params) == 2 * (len(layer_sizes) - 1)
    for layer, (fan_in, fan_out) in enumerate(itertools.pairwise(layer_sizes)):
        W, b = params[2 * layer], params[2 * layer + 1]
        assert tuple(W.shape) == (fan_in, fan_out)
        assert tuple(b.shape) == (fan_out,)
        assert np.all(np.asarray(b.detach() if isinstance(b, torch.Tensor) else b) == 0)
    assert all(p.requires_grad for p in params)


EXPECTED_STD = {
    "naive": lambda fan_in, fan_out: 1.0,
    "small": lambda fan_in, fan_out: 0.01,
    "xavier": lambda fan_in, fan_out: np.sqrt(2 / (fan_in + fan_out)),
    "he": lambda fan_in, fan_out: np.sqrt(2 / fan_in),
}


@pytest.mark.parametrize("init", np_mlp.INITS)
def test_each_init_draws_weights_with_the_standard_deviation_of_its_formula(init, rng):
    fan_in, fan_out = 1000, 400
    W = np_mlp.init_mlp([fan_in, fan_out], init, rng)[0].data
    expected = EXPECTED_STD[init](fan_in, fan_out)
    assert np_mlp.init_std(init, fan_in, fan_out) == pytest.approx(expected, rel=1e-15)
    # 400 000 draws: the sample std is within ~0.1 % (1 / sqrt(2 n)) of the true one; allow 1 %.
    assert W.std() == pytest.approx(expected, rel=0.01)
    assert abs(W.mean()) < 5 * expected / np.sqrt(W.size)


@pytest.mark.parametrize("init", np_mlp.INITS)
def test_the_numpy_and_torch_twins_draw_identical_weights_for_a_seed(init):
    params, torch_params = twins([3, 16, 8, 2], init, seed=11)
    for p, torch_p in zip(params, torch_params, strict=True):
        assert torch_p.dtype == torch.float64 and torch_p.is_leaf and torch_p.requires_grad
        np.testing.assert_array_equal(p.data, torch_p.detach().numpy())
    other = np_mlp.init_mlp([3, 16, 8, 2], init, np.random.default_rng(12))
    assert not np.array_equal(other[0].data, params[0].data)


@pytest.mark.parametrize("twin", [np_mlp, torch_mlp], ids=["numpy", "torch"])
def test_an_unknown_init_is_rejected_listing_the_options(twin, rng):
    with pytest.raises(ValueError, match=r"init must be one of 'naive', 'small', 'xavier', 'he', got 'glorot'"):
        twin.init_mlp([2, 3], "glorot", rng)


@pytest.mark.parametrize(
    ("layer_sizes", "rng", "error", "message"),
    [
        ([2], np.random.default_rng(0), ValueError, r"at least 2 widths"),
        ([2, 0, 3], np.random.default_rng(0), ValueError, r"layer_sizes\[1\] must be >= 1, got 0"),
        ([2, 3.0], np.random.default_rng(0), TypeError, r"layer_sizes\[1\] must be an integer, got float"),
        ([2, 3], 0, TypeError, r"rng must be a np.random.Generator"),
    ],
    ids=["one-width", "zero-width", "float-width", "seed-not-generator"],
)
def test_init_mlp_rejects_bad_layer_sizes_and_a_seed_in_place_of_a_generator(layer_sizes, rng, error, message):
    with pytest.raises(error, match=message):
        np_mlp.init_mlp(layer_sizes, "he", rng)


# ---- forward, loss and gradients equal the torch twin -----------------------------------------


@pytest.mark.parametrize("n", [1, 9])
@pytest.mark.parametrize("activation", np_mlp.ACTIVATIONS)
@pytest.mark.parametrize("layer_sizes", ARCHITECTURES, ids=str)
def test_numpy_mlp_layers_loss_and_gradients_equal_the_torch_twin(layer_sizes, activation, n, rng):
    params, torch_params = twins(layer_sizes, "xavier")
    X, y = rng.normal(size=(n, layer_sizes[0])), rng.integers(0, layer_sizes[-1], size=n)
    layers = np_mlp.mlp_layers(params, X, activation)
    torch_layers = torch_mlp.mlp_layers(torch_params, X, activation)
    assert len(layers) == len(layer_sizes) - 1
    for h, torch_h, width in zip(layers, torch_layers, layer_sizes[1:], strict=True):
        assert h.shape == (n, width)
        assert_close(h.data, torch_h, rtol=RTOL, atol=ATOL)
    logits, torch_logits = np_mlp.mlp_forward(params, X, activation), torch_mlp.mlp_forward(torch_params, X, activation)
    assert_close(logits.data, torch_logits, rtol=RTOL, atol=ATOL)
    loss, torch_loss = np_mlp.cross_entropy(logits, y), torch_mlp.cross_entropy(torch_logits, y)
    assert_close(loss.data, torch_loss, rtol=RTOL, atol=ATOL)
    loss.backward()
    torch_loss.backward()
    for p, torch_p in zip(params, torch_params, strict=True):
        assert_close(p.grad, torch_p.grad, rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(
        np_mlp.layer_gradient_norms(params), torch_mlp.layer_gradient_norms(torch_params), rtol=RTOL, atol=ATOL
    )
    assert np_mlp.accuracy(logits, y) == torch_mlp.accuracy(torch_logits, y)


def test_mlp_forward_takes_an_array_or_a_tensor_and_checks_the_input_width(rng):
    params = np_mlp.init_mlp([3, 4, 2], "he", rng)
    X = rng.normal(size=(5, 3))
    np.testing.assert_array_equal(np_mlp.mlp_forward(params, X).data, np_mlp.mlp_forward(params, Tensor(X)).data)
    with pytest.raises(
        ValueError,
        match=r"x must have shape \(N, 3\) to match the first weight matrix \(3, 4\), "
        r"got shape \(5, 2\)",
    ):
        np_mlp.mlp_forward(params, rng.normal(size=(5, 2)))
    with pytest.raises(ValueError, match=r"params\[0\] must be a weight matrix.*got shapes \(3, 4\) and \(2,\)"):
        np_mlp.mlp_forward([params[0], params[3]], X)


@pytest.mark.parametrize("twin", [np_mlp, torch_mlp], ids=["numpy", "torch"])
def test_an_unknown_activation_is_rejected_listing_the_options(twin, rng):
    params = twin.init_mlp([2, 3, 2], "he", rng)
    with pytest.raises(ValueError, match=r"activation must be one of 'relu', 'tanh', 'sigmoid', got 'gelu'"):
        twin.mlp_forward(params, np.zeros((1, 2)), "gelu")


@pytest.mark.parametrize("twin", [np_mlp, torch_mlp], ids=["numpy", "torch"])
def test_layer_gradient_norms_before_backward_raise(twin, rng):
    with pytest.raises(ValueError, match=r"params\[0\] has no gradient yet: call loss.backward\(\) first"):
        twin.layer_gradient_norms(twin.init_mlp([2, 3, 2], "he", rng))


def test_accuracy_counts_rows_whose_largest_logit_is_the_target():
    logits = np.array([[2.0, 1.0], [0.0, 3.0], [5.0, -1.0], [0.1, 0.2]])
    targets = np.array([0, 1, 1, 0])
    assert np_mlp.accuracy(Tensor(logits), targets) == 0.5
    assert np_mlp.accuracy(logits, targets) == 0.5
    assert torch_mlp.accuracy(torch.from_numpy(logits), targets) == 0.5


def layer_norms_after_one_backward(init: str, activation: str, rng: np.random.Generator) -> list[float]:
    X, y = make_spirals(50, 3, 0.2, rng)
    params = np_mlp.init_mlp([2, 64, 64, 64, 64, 64, 3], init, np.random.default_rng(0))
    np_mlp.cross_entropy(np_mlp.mlp_forward(params, X, activation), y).backward()
    return np_mlp.layer_gradient_norms(params)


def test_small_init_in_a_deep_sigmoid_net_makes_gradients_vanish_towards_the_input(rng):
    # Backwards, each layer multiplies the signal by about sigmoid' * 0.01 * sqrt(64) <= 0.02.
    norms = layer_norms_after_one_backward("small", "sigmoid", rng)
    assert len(norms) == 6
    assert all(lower < upper for lower, upper in itertools.pairwise(norms))
    assert norms[0] / norms[-1] < 1e-6


def test_he_init_in_a_deep_relu_net_keeps_the_hidden_layers_gradients_level(rng):
    # He et al. (2015): std sqrt(2 / fan_in) keeps the backward signal's size through ReLU layers.
    # (The first layer, with only 2 inputs, has a smaller gradient for that reason alone.)
    hidden = layer_norms_after_one_backward("he", "relu", rng)[1:]
    assert max(hidden) / min(hidden) < 2


# ---- training: the twins follow each other ----------------------------------------------------


def test_numpy_and_torch_twins_trained_with_adam_on_spirals_follow_each_other_and_fit_them():
    X, y = make_spirals(100, 3, 0.2, np.random.default_rng(0))
    params, torch_params = twins([2, 32, 32, 3], "he", seed=1)
    losses = np_mlp.train_mlp(params, X, y, np_optim.Adam(lr=0.01), steps=300)
    torch_losses = torch_mlp.train_mlp(torch_params, X, y, torch_optim.Adam(lr=0.01), steps=300)
    assert len(losses) == len(torch_losses) == 300
    np.testing.assert_allclose(losses, torch_losses, rtol=TRAIN_RTOL, atol=0)
    for p, torch_p in zip(params, torch_params, strict=True):
        np.testing.assert_allclose(p.data, torch_p.detach().numpy(), rtol=TRAIN_RTOL, atol=1e-10)
    acc = np_mlp.accuracy(np_mlp.mlp_forward(params, X), y)
    assert acc == torch_mlp.accuracy(torch_mlp.mlp_forward(torch_params, X), y)
    assert acc > 0.9
    assert losses[-1] < losses[0] / 10


@pytest.mark.parametrize("activation", ["tanh", "sigmoid"])
def test_twins_trained_with_sgd_momentum_on_moons_follow_each_other(activation):
    X, y = make_moons(64, 0.1, np.random.default_rng(0))
    params, torch_params = twins([2, 8, 8, 2], "xavier", seed=2)
    optimizer = dict(lr=0.3, momentum=0.9)
    losses = np_mlp.train_mlp(params, X, y, np_optim.SGD(**optimizer), steps=100, activation=activation)
    torch_losses = torch_mlp.train_mlp(torch_params, X, y, torch_optim.SGD(**optimizer), 100, activation)
    np.testing.assert_allclose(losses, torch_losses, rtol=TRAIN_RTOL, atol=0)
    assert losses[-1] < losses[0]


def test_train_mlp_with_zero_steps_returns_no_losses_and_leaves_the_weights(rng):
    params = np_mlp.init_mlp([2, 4, 2], "he", rng)
    before = [p.data.copy() for p in params]
    assert np_mlp.train_mlp(params, np.zeros((3, 2)), np.array([0, 1, 0]), np_optim.SGD(lr=0.1), steps=0) == []
    for p, p_before in zip(params, before, strict=True):
        np.testing.assert_array_equal(p.data, p_before)


# ---- the decision-boundary figure -------------------------------------------------------------


def test_plot_decision_boundary_fills_the_predicted_regions_and_draws_the_points(rng):
    X, y = make_moons(40, 0.1, rng)
    params = np_mlp.init_mlp([2, 8, 2], "he", rng)
    before = plt.get_fignums()
    fig, ax = plt.subplots()
    plot_decision_boundary(ax, lambda points: softmax(np_mlp.mlp_forward(params, points)), X, y, resolution=30)
    assert any(isinstance(artist, QuadContourSet) for artist in ax.collections)
    scatters = [artist for artist in ax.collections if isinstance(artist, PathCollection)]
    assert len(scatters) == 1 and len(scatters[0].get_offsets()) == len(X)
    assert ax.get_xlabel() == "$x_1$" and ax.get_ylabel() == "$x_2$"
    assert ax.get_aspect() == 1.0
    assert ax.get_xlim() == pytest.approx((X[:, 0].min() - 0.25, X[:, 0].max() + 0.25))
    plt.close(fig)
    assert plt.get_fignums() == before


def test_plot_decision_boundary_rejects_points_that_are_not_two_dimensional(rng):
    fig, ax = plt.subplots()
    try:
        with pytest.raises(ValueError, match=r"X must have shape \(N, 2\), got shape \(5, 3\)"):
            plot_decision_boundary(ax, lambda p: np.zeros((len(p), 2)), np.zeros((5, 3)), np.zeros(5, dtype=int))
        with pytest.raises(ValueError, match=r"scores of shape \(M, C\) for M = 100 points, got \(100,\)"):
            plot_decision_boundary(ax, lambda p: np.zeros(len(p)), np.zeros((5, 2)), np.zeros(5, dtype=int), 10)
    finally:
        plt.close(fig)
