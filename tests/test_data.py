"""The generated data sets of `dlbook.data`: seeded, shaped as documented, every index once per epoch."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dlbook.data import make_linear_regression, minibatch_indices


def test_make_linear_regression_is_deterministic_for_a_seed():
    first = make_linear_regression(20, 3, noise=0.5, rng=np.random.default_rng(7))
    second = make_linear_regression(20, 3, noise=0.5, rng=np.random.default_rng(7))
    other = make_linear_regression(20, 3, noise=0.5, rng=np.random.default_rng(8))
    for a, b in zip(first, second, strict=True):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(first[0], other[0])


@pytest.mark.parametrize(("n", "d"), [(1, 1), (1, 5), (17, 1), (40, 3)])
def test_make_linear_regression_returns_the_documented_shapes_and_dtypes(n, d, rng):
    X, y, true_w, true_b = make_linear_regression(n, d, noise=0.1, rng=rng)
    assert X.shape == (n, d)
    assert y.shape == (n,)
    assert true_w.shape == (d,)
    assert isinstance(true_b, float)
    assert X.dtype == y.dtype == true_w.dtype == np.float64


def test_make_linear_regression_without_noise_is_exactly_linear(rng):
    X, y, true_w, true_b = make_linear_regression(25, 4, noise=0.0, rng=rng)
    np.testing.assert_array_equal(y, X @ true_w + true_b)


def test_make_linear_regression_noise_has_the_asked_scale(rng):
    X, y, true_w, true_b = make_linear_regression(20_000, 2, noise=0.3, rng=rng)
    residual = y - (X @ true_w + true_b)
    assert np.std(residual) == pytest.approx(0.3, rel=0.03)  # ~5 standard errors of the std at N = 20000


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        (dict(n_samples=0), ValueError, r"n_samples must be >= 1, got 0"),
        (dict(n_samples=2.0), TypeError, r"n_samples must be an integer, got float 2\.0"),
        (dict(n_features=0), ValueError, r"n_features must be >= 1, got 0"),
        (dict(noise=-0.1), ValueError, r"noise must be >= 0, got -0\.1"),
        (dict(noise="0.1"), TypeError, r"noise must be a real number, got str"),
    ],
    ids=["n_samples-0", "n_samples-float", "n_features-0", "noise-negative", "noise-str"],
)
def test_make_linear_regression_rejects_bad_arguments_naming_them(kwargs, error, message, rng):
    arguments = dict(n_samples=10, n_features=2, noise=0.1) | kwargs
    with pytest.raises(error, match=message):
        make_linear_regression(**arguments, rng=rng)


@pytest.mark.parametrize(
    ("n", "batch_size", "sizes"),
    [(10, 3, [3, 3, 3, 1]), (12, 4, [4, 4, 4]), (5, 8, [5]), (4, 1, [1, 1, 1, 1]), (1, 1, [1]), (7, 7, [7])],
)
def test_minibatch_indices_covers_every_index_once_in_batches_of_the_asked_size(n, batch_size, sizes, rng):
    batches = list(minibatch_indices(n, batch_size, rng))
    assert [len(batch) for batch in batches] == sizes
    np.testing.assert_array_equal(np.sort(np.concatenate(batches)), np.arange(n))
    assert all(np.issubdtype(batch.dtype, np.integer) for batch in batches)


@settings(max_examples=50, deadline=None)
@given(n=st.integers(1, 200), batch_size=st.integers(1, 64), seed=st.integers(0, 2**32 - 1))
def test_any_epoch_is_a_permutation_cut_into_full_batches_and_one_smaller_last(n, batch_size, seed):
    batches = list(minibatch_indices(n, batch_size, np.random.default_rng(seed)))
    sizes = [len(batch) for batch in batches]
    assert len(batches) == -(-n // batch_size)  # ceil(n / batch_size)
    assert all(size == batch_size for size in sizes[:-1])
    assert 1 <= sizes[-1] <= batch_size
    np.testing.assert_array_equal(np.sort(np.concatenate(batches)), np.arange(n))


def test_minibatch_indices_is_deterministic_for_a_seed_and_shuffles_afresh_each_epoch():
    first = np.concatenate(list(minibatch_indices(50, 8, np.random.default_rng(3))))
    again = np.concatenate(list(minibatch_indices(50, 8, np.random.default_rng(3))))
    np.testing.assert_array_equal(first, again)
    rng = np.random.default_rng(3)
    epoch_1 = np.concatenate(list(minibatch_indices(50, 8, rng)))
    epoch_2 = np.concatenate(list(minibatch_indices(50, 8, rng)))
    np.testing.assert_array_equal(epoch_1, first)
    assert not np.array_equal(epoch_1, epoch_2)
    assert not np.array_equal(epoch_1, np.arange(50))


@pytest.mark.parametrize(
    ("n", "batch_size", "error", "message"),
    [
        (0, 2, ValueError, r"n_samples must be >= 1, got 0"),
        (10, 0, ValueError, r"batch_size must be >= 1, got 0"),
        (10, -3, ValueError, r"batch_size must be >= 1, got -3"),
        (10, 2.5, TypeError, r"batch_size must be an integer, got float 2\.5"),
        (10.0, 2, TypeError, r"n_samples must be an integer, got float 10\.0"),
    ],
)
def test_minibatch_indices_rejects_bad_arguments_when_iterated(n, batch_size, error, message, rng):
    with pytest.raises(error, match=message):
        list(minibatch_indices(n, batch_size, rng))


@pytest.mark.parametrize(("n", "batch_size"), [(0, 2), (10, 0), (10, 2.5)])
def test_minibatch_indices_rejects_bad_arguments_at_the_call_not_at_the_first_batch(n, batch_size, rng):
    # Validation at the public boundary: the error must point at the call that passed the bad
    # value, not surface later inside a training loop's `for` statement.
    with pytest.raises((ValueError, TypeError), match=r"n_samples|batch_size"):
        minibatch_indices(n, batch_size, rng)


# ---- make_spirals and make_moons (chapter 2) --------------------------------------------------

from dlbook.data import make_moons, make_spirals  # noqa: E402  (appended section)


@pytest.mark.parametrize(("n_per_class", "n_classes"), [(1, 1), (1, 3), (100, 3), (7, 5)])
def test_make_spirals_returns_the_documented_shapes_dtypes_and_balanced_labels(n_per_class, n_classes, rng):
    X, y = make_spirals(n_per_class, n_classes, noise=0.2, rng=rng)
    assert X.shape == (n_per_class * n_classes, 2) and X.dtype == np.float64
    assert y.shape == (n_per_class * n_classes,) and y.dtype == np.int64
    np.testing.assert_array_equal(np.bincount(y, minlength=n_classes), [n_per_class] * n_classes)


def test_make_spirals_radii_run_from_0_to_1_on_every_arm(rng):
    X, y = make_spirals(50, 3, noise=0.3, rng=rng)
    radius = np.linalg.norm(X, axis=1)
    for k in range(3):  # angle noise moves points around the circle, never in or out
        np.testing.assert_allclose(radius[y == k], np.linspace(0, 1, 50), atol=1e-15)


def test_make_spirals_arms_without_noise_are_rotated_copies_of_each_other(rng):
    X, y = make_spirals(40, 4, noise=0.0, rng=rng)
    quarter_turn = np.array([[0.0, -1.0], [1.0, 0.0]])  # rotation by 2 pi / 4
    for k in range(3):
        np.testing.assert_allclose(X[y == k] @ quarter_turn.T, X[y == k + 1], atol=1e-12)


def test_make_spirals_and_make_moons_are_deterministic_for_a_seed():
    for make in (lambda r: make_spirals(30, 3, 0.2, r), lambda r: make_moons(31, 0.1, r)):
        first, again = make(np.random.default_rng(5)), make(np.random.default_rng(5))
        other = make(np.random.default_rng(6))
        np.testing.assert_array_equal(first[0], again[0])
        np.testing.assert_array_equal(first[1], again[1])
        assert not np.array_equal(first[0], other[0])


@pytest.mark.parametrize("n_samples", [2, 3, 100, 101])
def test_make_moons_returns_the_documented_shapes_and_labels_balanced_to_one(n_samples, rng):
    X, y = make_moons(n_samples, noise=0.1, rng=rng)
    assert X.shape == (n_samples, 2) and X.dtype == np.float64
    assert y.shape == (n_samples,) and y.dtype == np.int64
    counts = np.bincount(y, minlength=2)
    assert counts.sum() == n_samples and counts[0] - counts[1] in (0, 1)


def test_make_moons_without_noise_lies_on_two_interleaving_unit_half_circles(rng):
    X, y = make_moons(60, noise=0.0, rng=rng)
    upper, lower = X[y == 0], X[y == 1]
    np.testing.assert_allclose(np.linalg.norm(upper, axis=1), 1.0, atol=1e-15)
    assert np.all(upper[:, 1] >= 0)
    np.testing.assert_allclose(np.linalg.norm(lower - [1.0, 0.5], axis=1), 1.0, atol=1e-15)
    assert np.all(lower[:, 1] <= 0.5)
    assert upper[:, 0].max() > lower[:, 0].min()  # the arcs reach into each other


def test_make_moons_noise_has_the_asked_scale(rng):
    X0, _ = make_moons(20_000, noise=0.0, rng=rng)
    X, _ = make_moons(20_000, noise=0.2, rng=rng)
    assert np.std(X - X0) == pytest.approx(0.2, rel=0.02)  # 40 000 draws: ~0.35 % standard error


@pytest.mark.parametrize(
    ("make", "kwargs", "error", "message"),
    [
        (make_spirals, dict(n_per_class=0), ValueError, r"n_per_class must be >= 1, got 0"),
        (make_spirals, dict(n_classes=0), ValueError, r"n_classes must be >= 1, got 0"),
        (make_spirals, dict(n_classes=2.0), TypeError, r"n_classes must be an integer, got float 2\.0"),
        (make_spirals, dict(noise=-0.1), ValueError, r"noise must be >= 0, got -0\.1"),
        (make_moons, dict(n_samples=1), ValueError, r"n_samples must be >= 2, got 1"),
        (make_moons, dict(n_samples=10.0), TypeError, r"n_samples must be an integer, got float 10\.0"),
        (make_moons, dict(noise=float("nan")), ValueError, r"noise must be finite, got nan"),
    ],
    ids=[
        "spirals-n-0",
        "spirals-classes-0",
        "spirals-classes-float",
        "spirals-noise-negative",
        "moons-n-1",
        "moons-n-float",
        "moons-noise-nan",
    ],
)
def test_make_spirals_and_make_moons_reject_bad_arguments_naming_them(make, kwargs, error, message, rng):
    defaults = dict(n_per_class=10, n_classes=3, noise=0.1) if make is make_spirals else dict(n_samples=10, noise=0.1)
    with pytest.raises(error, match=message):
        make(**(defaults | kwargs), rng=rng)
