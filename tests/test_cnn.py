"""The LeNet of `dlbook.np.cnn` and its twin in `dlbook.torch.cnn`, batch norm, the digits and the timer.

The NumPy network's logits, input gradient and every parameter gradient equal the torch module's in
float64 from the same weights; an epoch of training moves both twins to the same weights; batch norm
equals torch.nn.functional.batch_norm forward, backward and in its running averages; saliency equals
autograd's; the bundled digits split is stratified, disjoint and reproducible; the side-by-side timer
measures what it is given.
"""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import dlbook.np.cnn as ncnn
import dlbook.torch.cnn as tcnn
from conftest import assert_close
from dlbook.data import load_digits, random_shift
from dlbook.np.gradcheck import numerical_gradient, relative_error
from dlbook.np.optim import Adam
from dlbook.timing import compare, single_threaded

# float64, both sides the same products in another order, reductions of a few hundred terms.
RTOL, ATOL = 1e-9, 1e-11
SMALL = {"channels": (3, 4), "hidden": 5}  # a narrow network: fast tests, same code paths


def twins(rng: np.random.Generator, **sizes) -> tuple[dict[str, np.ndarray], tcnn.LeNet]:
    seed = int(rng.integers(2**31))
    params = ncnn.init_lenet(np.random.default_rng(seed), dtype=np.float64, **sizes)
    model = tcnn.init_lenet(np.random.default_rng(seed), dtype=torch.float64, **sizes)
    return params, model


def images(rng: np.random.Generator, n: int) -> np.ndarray:
    return rng.uniform(0, 1, size=(n, *ncnn.IMAGE_SHAPE))


@pytest.mark.parametrize("sizes", [SMALL, {}], ids=["small", "default"])
def test_same_seed_gives_both_twins_the_same_weights(sizes, rng):
    params, model = twins(rng, **sizes)
    state = model.state_dict()
    assert list(state) == list(params)
    for name, array in params.items():
        assert_close(array, state[name], rtol=0, atol=0)


@pytest.mark.parametrize("batch", [1, 4])
def test_lenet_forward_and_all_gradients_equal_torch(batch, rng):
    params, model = twins(rng, **SMALL)
    x = images(rng, batch)
    targets = rng.integers(0, 10, size=batch)
    logits, cache = ncnn.lenet_forward(params, x)
    loss, dlogits = ncnn.cross_entropy(logits, targets)
    dx, grads = ncnn.lenet_backward(dlogits, params, cache)

    tx = torch.tensor(x, requires_grad=True)
    tlogits = model(tx)
    tloss = tcnn.cross_entropy(tlogits, torch.from_numpy(targets))
    tloss.backward()
    assert_close(logits, tlogits, rtol=RTOL, atol=ATOL)
    assert loss == pytest.approx(tloss.item(), rel=1e-12)
    assert_close(dx, tx.grad, rtol=RTOL, atol=ATOL)
    for name, parameter in model.named_parameters():
        assert_close(grads[name], parameter.grad, rtol=RTOL, atol=ATOL)


def test_lenet_gradient_equals_central_differences(rng):
    params, _ = twins(rng, channels=(2, 2), hidden=3)
    x = images(rng, 2)
    targets = np.array([3, 7])
    logits, cache = ncnn.lenet_forward(params, x)
    _, grads = ncnn.lenet_backward(ncnn.cross_entropy(logits, targets)[1], params, cache)
    for name in ("conv1.weight", "conv2.bias", "fc1.weight"):

        def loss(value, name=name):
            return ncnn.cross_entropy(ncnn.lenet_forward({**params, name: value}, x)[0], targets)[0]

        # max pooling and ReLU are piecewise linear: h = 1e-6 stays on one piece for random inputs
        assert relative_error(grads[name], numerical_gradient(loss, params[name])) < 1e-6


def test_a_backward_that_skips_the_relu_mask_is_caught(rng):
    """Negative control: the comparison above fails for a backward that forgets a ReLU."""
    params, model = twins(rng, **SMALL)
    x = images(rng, 3)
    logits, cache = ncnn.lenet_forward(params, x)
    dlogits = rng.normal(size=logits.shape)
    wrong_cache = cache._replace(relu3=np.ones_like(cache.relu3))
    _, right = ncnn.lenet_backward(dlogits, params, cache)
    _, wrong = ncnn.lenet_backward(dlogits, params, wrong_cache)
    model(torch.from_numpy(x)).backward(torch.from_numpy(dlogits))
    torch_grad = model.fc1.weight.grad.numpy()
    assert relative_error(right["fc1.weight"], torch_grad) < 1e-10
    assert relative_error(wrong["fc1.weight"], torch_grad) > 1e-2


def test_one_epoch_moves_both_twins_to_the_same_weights(rng):
    params, model = twins(rng, **SMALL)
    x, y = images(rng, 40), rng.integers(0, 10, size=40)
    optimizer = Adam(lr=1e-2)
    result = ncnn.train_epoch(
        params, optimizer, optimizer.init(list(params.values())), x, y, 16, np.random.default_rng(3)
    )
    torch_loss = tcnn.train_epoch(
        model,
        torch.optim.Adam(model.parameters(), lr=1e-2),
        torch.from_numpy(x),
        torch.from_numpy(y),
        16,
        np.random.default_rng(3),
    )
    assert result.mean_loss == pytest.approx(torch_loss, rel=1e-10)
    for name, value in model.state_dict().items():
        assert_close(result.params[name], value, rtol=1e-8, atol=1e-10)
    assert all(array.dtype == np.float64 for array in result.params.values())


def test_saliency_equals_autograd_and_predict_equals_argmax(rng):
    params, model = twins(rng, **SMALL)
    x = images(rng, 5)
    classes = rng.integers(0, 10, size=5)
    assert_close(
        ncnn.saliency(params, x, classes),
        tcnn.saliency(model, torch.from_numpy(x), torch.from_numpy(classes)),
        rtol=RTOL,
        atol=ATOL,
    )
    logits, _ = ncnn.lenet_forward(params, x)
    np.testing.assert_array_equal(ncnn.predict(params, x, batch_size=2), logits.argmax(axis=1))
    np.testing.assert_array_equal(tcnn.predict(model, torch.from_numpy(x)).numpy(), logits.argmax(axis=1))


def test_lenet_errors_say_what_was_expected(rng):
    params, _ = twins(rng, **SMALL)
    with pytest.raises(ValueError, match=r"x must hold \(N, 1, 16, 16\) images, got shape \(2, 1, 8, 8\)"):
        ncnn.lenet_forward(params, np.zeros((2, 1, 8, 8)))
    with pytest.raises(ValueError, match=r"params\['fc1.weight'\] must have shape \(5, 64\), got \(5, 63\)"):
        ncnn.lenet_forward({**params, "fc1.weight": np.zeros((5, 63))}, images(rng, 1))
    with pytest.raises(KeyError, match=r"fc2\.bias"):
        ncnn.lenet_forward({name: value for name, value in params.items() if name != "fc2.bias"}, images(rng, 1))
    with pytest.raises(ValueError, match=r"targets must lie in \[0, 10\), got values from 0 to 10"):
        ncnn.cross_entropy(np.zeros((2, 10)), np.array([0, 10]))
    with pytest.raises(ValueError, match=r"targets must be 2 integer classes"):
        ncnn.cross_entropy(np.zeros((2, 10)), np.array([0.0, 1.0]))
    with pytest.raises(ValueError, match=r"channels\[1\] must be >= 1"):
        ncnn.init_lenet(rng, channels=(3, 0))


def test_cross_entropy_is_stable_for_huge_logits():
    loss, dlogits = ncnn.cross_entropy(np.array([[1e4, 0.0, -1e4]]), np.array([0]))
    assert loss == 0.0 and np.all(np.isfinite(dlogits))


# ---- batch normalisation ------------------------------------------------------------------------


def batch_norm_case(rng: np.random.Generator, shape: tuple[int, int, int, int]):
    channels = shape[1]
    x = rng.normal(2.0, 3.0, size=shape)
    weight, bias = rng.normal(size=channels), rng.normal(size=channels)
    running = ncnn.RunningStats(rng.normal(size=channels), rng.uniform(0.5, 2, size=channels))
    return x, weight, bias, running


@settings(max_examples=20, deadline=None)
@given(
    shape=st.tuples(st.integers(1, 4), st.integers(1, 5), st.integers(1, 4), st.integers(1, 4)).filter(
        lambda s: s[0] * s[2] * s[3] > 1
    ),
    momentum=st.sampled_from([0.0, 0.1, 0.5]),
)
def test_batch_norm_forward_backward_and_running_stats_equal_torch(shape, momentum):
    rng = np.random.default_rng(sum(shape))
    x, weight, bias, running = batch_norm_case(rng, shape)
    out, cache, new_running = ncnn.batch_norm2d(x, weight, bias, running, momentum=momentum)
    dout = rng.normal(size=shape)
    dx, dweight, dbias = ncnn.batch_norm2d_backward(dout, cache)

    tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x, weight, bias))
    mean, var = torch.tensor(running.mean), torch.tensor(running.var)
    tout = tcnn.batch_norm2d(tx, tw, tb, mean, var, training=True, momentum=momentum)
    tout.backward(torch.from_numpy(dout))
    assert_close(out, tout, rtol=1e-10, atol=1e-10)
    for ours, theirs in (
        (dx, tx.grad),
        (dweight, tw.grad),
        (dbias, tb.grad),
        (new_running.mean, mean),
        (new_running.var, var),
    ):
        assert_close(ours, theirs, rtol=1e-9, atol=1e-9)


def test_batch_norm_inference_uses_the_running_averages(rng):
    x, weight, bias, running = batch_norm_case(rng, (3, 2, 4, 4))
    out, cache, kept = ncnn.batch_norm2d(x, weight, bias, running, training=False)
    expected = tcnn.batch_norm2d(*map(torch.from_numpy, (x, weight, bias, running.mean, running.var)), training=False)
    assert cache is None and kept is running
    assert_close(out, expected, rtol=1e-12, atol=1e-12)


def test_batch_norm_input_gradient_is_not_just_the_scaled_output_gradient(rng):
    """Negative control: treating the batch statistics as constants gives a different, wrong dx."""
    x, weight, bias, running = batch_norm_case(rng, (4, 2, 3, 3))
    _, cache, _ = ncnn.batch_norm2d(x, weight, bias, running)
    dout = rng.normal(size=x.shape)
    dx, _, _ = ncnn.batch_norm2d_backward(dout, cache)
    naive = dout * (weight * cache.inverse_std)[:, None, None]
    assert relative_error(naive, dx) > 1e-2
    np.testing.assert_allclose(dx.sum(axis=(0, 2, 3)), 0, atol=1e-10)  # shifting a channel changes nothing


def test_batch_norm_errors(rng):
    x, weight, bias, running = batch_norm_case(rng, (2, 3, 2, 2))
    with pytest.raises(ValueError, match=r"weight must have one entry per channel, shape \(3,\), got \(2,\)"):
        ncnn.batch_norm2d(x, weight[:2], bias, running)
    with pytest.raises(ValueError, match="more than one value per channel"):
        ncnn.batch_norm2d(x[:1, :, :1, :1], weight, bias, running)


@pytest.mark.parametrize(("batch_norm", "residual"), [(False, False), (True, False), (True, True)])
def test_deep_cnn_builds_and_maps_images_to_ten_scores(batch_norm, residual):
    model = tcnn.DeepCNN(depth=3, width=4, batch_norm=batch_norm, residual=residual)
    assert model(torch.zeros(2, 1, 16, 16)).shape == (2, 10)
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules()) == batch_norm


# ---- data ---------------------------------------------------------------------------------------


def test_digits_split_is_stratified_disjoint_and_reproducible():
    digits = load_digits(np.random.default_rng(0))
    again = load_digits(np.random.default_rng(0))
    assert digits.x_train.shape == (1438, 1, 16, 16) and digits.x_test.shape == (359, 1, 16, 16)
    assert digits.x_train.dtype == np.float32 and 0 <= digits.x_train.min() and digits.x_train.max() <= 1
    np.testing.assert_array_equal(digits.x_test, again.x_test)
    share = np.bincount(digits.y_test, minlength=10) / np.bincount(np.r_[digits.y_train, digits.y_test])
    assert np.all(np.abs(share - 0.2) < 0.01)
    train_rows = {row.tobytes() for row in digits.x_train.reshape(len(digits.x_train), -1)}
    duplicates = sum(row.tobytes() in train_rows for row in digits.x_test.reshape(len(digits.x_test), -1))
    assert duplicates == 0  # no test image appears among the training images


def test_upsampling_repeats_each_pixel_in_a_block():
    small = load_digits(np.random.default_rng(0), upsample=1)
    large = load_digits(np.random.default_rng(0), upsample=2)
    np.testing.assert_array_equal(large.x_train[:, :, ::2, ::2], small.x_train)
    np.testing.assert_array_equal(large.x_train[:, :, 1::2, 1::2], small.x_train)


def test_random_shift_moves_each_image_by_at_most_max_shift(rng):
    x = np.zeros((50, 1, 9, 9))
    x[:, 0, 4, 4] = 1  # a single bright pixel in the middle
    shifted = random_shift(x, 2, rng)
    rows, cols = np.nonzero(shifted[:, 0].reshape(50, -1))[1] // 9, np.nonzero(shifted[:, 0].reshape(50, -1))[1] % 9
    assert shifted.sum() == 50  # each pixel moved, none lost
    assert set(rows - 4) == set(cols - 4) == {-2, -1, 0, 1, 2}
    np.testing.assert_array_equal(random_shift(x, 0, rng), x)


# ---- timing -------------------------------------------------------------------------------------


def test_compare_times_each_function_and_ratios_follow():
    calls = {"fast": 0, "slow": 0}

    def fast():
        calls["fast"] += 1

    def slow():
        calls["slow"] += 1
        time.sleep(0.002)

    comparison = compare({"fast": fast, "slow": slow}, repeats=4, number=2, warmup=1)
    assert calls == {"fast": 10, "slow": 10}  # (1 warm-up + 4) rounds of 2 calls
    assert comparison.seconds("slow").median >= 0.002
    assert comparison.ratio("slow", "fast").median > 10
    assert comparison.ratio("fast", "slow").median < 0.1
    with pytest.raises(KeyError, match="no timing called 'medium'"):
        comparison.seconds("medium")
    with pytest.raises(ValueError, match="repeats must be >= 1"):
        compare({"fast": fast}, repeats=0)


def test_single_threaded_limits_both_libraries_and_restores_them():
    from threadpoolctl import threadpool_info

    before = torch.get_num_threads()
    with single_threaded():
        assert torch.get_num_threads() == 1
        assert all(pool["num_threads"] == 1 for pool in threadpool_info())
    assert torch.get_num_threads() == before
