"""The loss surfaces of `dlbook.np.surfaces`: values equal the torch twins', hand gradients equal
autograd and central finite differences (style: Tests 1, 2 and 6)."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import assert_close, numerical_gradient
from dlbook.np import surfaces as np_surfaces
from dlbook.torch import surfaces as torch_surfaces

# NumPy and torch evaluate the same float64 expressions, so values and gradients agree to a few
# ulps of the largest term: rtol 1e-12, plus an atol for components that cancel to nearly zero.
# Rosenbrock's terms reach ~1e4 on [-3, 3]^2, where one ulp is ~2e-12; so atol = 1e-11.
TWIN_RTOL = 1e-12
TWIN_ATOL = 1e-11
# Central differences with h = 1e-6: truncation ~h^2 |f'''| < 1e-8, rounding ~eps |f| / h < 1e-6.
FD_H = 1e-6
FD_RTOL, FD_ATOL = 1e-6, 1e-5

# name -> (NumPy value, NumPy gradient, torch value, keyword arguments); each surface is tested
# with its defaults and with other constants.
SURFACES = {
    "quadratic": (np_surfaces.quadratic, np_surfaces.quadratic_grad, torch_surfaces.quadratic, {}),
    "quadratic-ill-conditioned": (
        np_surfaces.quadratic,
        np_surfaces.quadratic_grad,
        torch_surfaces.quadratic,
        dict(curvatures=(0.5, 50.0)),
    ),
    "rosenbrock": (np_surfaces.rosenbrock, np_surfaces.rosenbrock_grad, torch_surfaces.rosenbrock, {}),
    "rosenbrock-a2-b10": (
        np_surfaces.rosenbrock,
        np_surfaces.rosenbrock_grad,
        torch_surfaces.rosenbrock,
        dict(a=2.0, b=10.0),
    ),
    "double_well": (np_surfaces.double_well, np_surfaces.double_well_grad, torch_surfaces.double_well, {}),
}
ALL_FUNCTIONS = [
    np_surfaces.quadratic,
    np_surfaces.rosenbrock,
    np_surfaces.double_well,
    np_surfaces.quadratic_grad,
    np_surfaces.rosenbrock_grad,
    np_surfaces.double_well_grad,
]


def random_points(rng: np.random.Generator, *shape: int) -> np.ndarray:
    return rng.uniform(-2.5, 2.5, size=(*shape, 2))  # (..., 2)


def grid(height: int = 7, width: int = 9) -> np.ndarray:
    X, Y = np.meshgrid(np.linspace(-2, 2, width), np.linspace(-1, 3, height))  # (H, W) each
    return np.stack([X, Y], axis=-1)  # (H, W, 2)


def autograd(torch_value, points: np.ndarray, kwargs: dict) -> tuple[torch.Tensor, torch.Tensor]:
    """Values and gradients of a torch surface at `points` (..., 2), by autograd in float64."""
    p = torch.tensor(points, dtype=torch.float64, requires_grad=True)
    values = torch_value(p, **kwargs)
    # Each value depends only on its own point, so the gradient of the sum is every point's gradient.
    values.sum().backward()
    return values, p.grad


@pytest.mark.parametrize("surface", SURFACES)
@pytest.mark.parametrize("shape", [(), (1,), (17,), (4, 5)], ids=lambda s: f"points{s}")
def test_numpy_value_equals_torch_value_on_random_points(surface, shape, rng):
    value, _, torch_value, kwargs = SURFACES[surface]
    points = random_points(rng, *shape)
    expected = torch_value(torch.from_numpy(points), **kwargs)
    assert value(points, **kwargs).shape == shape
    assert_close(value(points, **kwargs), expected, rtol=TWIN_RTOL, atol=TWIN_ATOL)


@pytest.mark.parametrize("surface", SURFACES)
def test_numpy_value_on_a_grid_equals_torch_value_and_pointwise_values(surface):
    value, _, torch_value, kwargs = SURFACES[surface]
    points = grid()
    values = value(points, **kwargs)
    assert values.shape == (7, 9)
    assert_close(values, torch_value(torch.from_numpy(points), **kwargs), rtol=TWIN_RTOL, atol=TWIN_ATOL)
    pointwise = [[value(points[i, j], **kwargs) for j in range(9)] for i in range(7)]
    np.testing.assert_array_equal(values, pointwise)


@pytest.mark.parametrize("surface", SURFACES)
@pytest.mark.parametrize("shape", [(), (1,), (17,), (4, 5)], ids=lambda s: f"points{s}")
def test_numpy_gradient_equals_torch_autograd(surface, shape, rng):
    _, gradient, torch_value, kwargs = SURFACES[surface]
    points = random_points(rng, *shape)
    _, expected = autograd(torch_value, points, kwargs)
    assert gradient(points, **kwargs).shape == points.shape
    assert_close(gradient(points, **kwargs), expected, rtol=TWIN_RTOL, atol=TWIN_ATOL)


@pytest.mark.parametrize("surface", SURFACES)
def test_numpy_gradient_on_a_grid_equals_torch_autograd(surface):
    _, gradient, torch_value, kwargs = SURFACES[surface]
    points = grid()
    _, expected = autograd(torch_value, points, kwargs)
    assert_close(gradient(points, **kwargs), expected, rtol=TWIN_RTOL, atol=TWIN_ATOL)


def finite_difference_gradients(value, points: np.ndarray, kwargs: dict) -> np.ndarray:
    """Central-difference gradient of `value` at every point of `points` (N, 2), one point at a time."""
    return np.stack([numerical_gradient(lambda q: value(q, **kwargs), point, FD_H) for point in points])


@pytest.mark.parametrize("surface", SURFACES)
def test_numpy_gradient_equals_central_finite_differences(surface, rng):
    value, gradient, _, kwargs = SURFACES[surface]
    points = random_points(rng, 20)
    np.testing.assert_allclose(
        gradient(points, **kwargs), finite_difference_gradients(value, points, kwargs), rtol=FD_RTOL, atol=FD_ATOL
    )


def rosenbrock_grad_with_a_sign_error(p: np.ndarray, a: float = 1.0, b: float = 100.0) -> np.ndarray:
    """Deliberately wrong: +2 (a - x) where the derivative of (a - x)^2 is -2 (a - x)."""
    x, y = p[..., 0], p[..., 1]
    return np.stack([2 * (a - x) - 4 * b * x * (y - x**2), 2 * b * (y - x**2)], axis=-1)


def test_finite_difference_check_detects_a_sign_error_in_the_gradient(rng):
    points = random_points(rng, 20)
    wrong = rosenbrock_grad_with_a_sign_error(points)
    numerical = finite_difference_gradients(np_surfaces.rosenbrock, points, {})
    assert not np.allclose(wrong, numerical, rtol=FD_RTOL, atol=FD_ATOL)
    # ...and the same check on autograd fails too.
    _, expected = autograd(torch_surfaces.rosenbrock, points, {})
    assert not np.allclose(wrong, expected.numpy(), rtol=TWIN_RTOL, atol=TWIN_ATOL)


@pytest.mark.parametrize(
    ("surface", "minimum"),
    [
        ("quadratic", (0.0, 0.0)),
        ("rosenbrock", (1.0, 1.0)),
        ("rosenbrock-a2-b10", (2.0, 4.0)),
        ("double_well", (0.0, 1.0)),
        ("double_well", (0.0, -1.0)),
    ],
)
def test_gradient_vanishes_at_the_documented_minimum(surface, minimum):
    value, gradient, _, kwargs = SURFACES[surface]
    point = np.array(minimum)
    np.testing.assert_array_equal(gradient(point, **kwargs), [0.0, 0.0])
    nearby = point + np.array([[1e-3, 0], [-1e-3, 0], [0, 1e-3], [0, -1e-3]])  # (4, 2)
    assert np.all(value(nearby, **kwargs) > value(point, **kwargs))


def test_double_well_has_a_saddle_at_the_origin():
    assert np.array_equal(np_surfaces.double_well_grad(np.zeros(2)), [0.0, 0.0])
    along_x, along_y = np.array([0.1, 0.0]), np.array([0.0, 0.1])
    assert np_surfaces.double_well(along_x) > 0 > np_surfaces.double_well(along_y)


@settings(max_examples=50, deadline=None)
@given(x=st.floats(-3, 3), y=st.floats(-3, 3), surface=st.sampled_from(sorted(SURFACES)))
def test_any_point_value_and_gradient_equal_torch_autograd(x, y, surface):
    value, gradient, torch_value, kwargs = SURFACES[surface]
    point = np.array([x, y])
    values, expected = autograd(torch_value, point, kwargs)
    assert_close(value(point, **kwargs), values, rtol=TWIN_RTOL, atol=TWIN_ATOL)
    assert_close(gradient(point, **kwargs), expected, rtol=TWIN_RTOL, atol=TWIN_ATOL)


@pytest.mark.parametrize("function", ALL_FUNCTIONS, ids=lambda f: f.__name__)
@pytest.mark.parametrize("shape", [(3,), (4, 3), (2, 1), ()], ids=lambda s: f"shape{s}")
def test_points_without_two_coordinates_on_the_last_axis_are_rejected_naming_the_shapes(function, shape):
    with pytest.raises(ValueError, match=rf"p must have shape \(\.\.\., 2\).*got shape {re.escape(str(shape))}"):
        function(np.zeros(shape))


@pytest.mark.parametrize("function", ALL_FUNCTIONS, ids=lambda f: f.__name__)
def test_integer_points_are_rejected_with_a_type_error(function):
    with pytest.raises(TypeError, match=r"p must have a floating dtype.*got dtype int"):
        function(np.array([1, 2]))


@pytest.mark.parametrize("function", ALL_FUNCTIONS, ids=lambda f: f.__name__)
def test_a_list_instead_of_an_array_is_rejected_with_a_type_error(function):
    with pytest.raises(TypeError, match=r"p must be a NumPy array, got list"):
        function([1.0, 2.0])


@pytest.mark.parametrize("function", [np_surfaces.quadratic, np_surfaces.quadratic_grad])
@pytest.mark.parametrize(
    ("curvatures", "error", "message"),
    [
        ((1.0, -2.0), ValueError, r"curvatures\[1\] must be > 0, got -2\.0"),
        ((1.0, 2.0, 3.0), ValueError, r"curvatures must be a pair"),
        ((1.0, "2"), TypeError, r"curvatures\[1\] must be a real number"),
    ],
)
def test_bad_curvatures_are_rejected(function, curvatures, error, message):
    with pytest.raises(error, match=message):
        function(np.zeros(2), curvatures=curvatures)


@pytest.mark.parametrize("function", ALL_FUNCTIONS, ids=lambda f: f.__name__)
def test_surface_functions_do_not_modify_their_input(function, rng):
    points = random_points(rng, 3, 4)
    before = points.copy()
    function(points)
    np.testing.assert_array_equal(points, before)
