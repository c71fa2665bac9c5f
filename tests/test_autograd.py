"""The scalar autograd engine of `dlbook.np.autograd`: every operation's value and gradient equal
float64 torch.autograd and central finite differences, gradients accumulate as in PyTorch, forward
mode (Dual) agrees with reverse mode (Value) at n passes against 1, and the graph draws
(style: Tests 1, 2, 4, 5, 6 and 7)."""

from __future__ import annotations

import inspect
import itertools
import math
import sys
from types import SimpleNamespace

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Circle, FancyBboxPatch

from conftest import numerical_gradient
from dlbook.graph_drawing import draw_graph
from dlbook.np import autograd
from dlbook.np.autograd import (
    Dual,
    OperationCount,
    Value,
    count_operations,
    gradient_forward_mode,
    gradient_reverse_mode,
    topological_order,
)

# Both sides evaluate the same float64 formulas, operation by operation, so they differ only where
# a math and a torch kernel round differently (tanh, sigmoid: an ulp), which 1 - tanh(x)^2 near
# saturation amplifies; measured: under 1e-14 relative. rtol 1e-12, and an atol for gradients that
# cancel to ~0 (torch's 7e-18 against our exact 0).
TORCH_RTOL, TORCH_ATOL = 1e-12, 1e-14
# Central differences with h = 1e-6: truncation ~h^2 |f'''| / 6 and rounding ~eps |f| / h, both
# below 1e-6 relative on these inputs (kept 0.1 away from every pole and kink).
FD_H = 1e-6
FD_RTOL, FD_ATOL = 1e-6, 1e-6

# One expression, three kinds of numbers: the same Python function runs on our Values and Duals
# (through the module's exp, log, ...), on plain floats (the same helpers call math), and on torch
# tensors with torch's own functions, so our helpers are checked against torch's, not with them.
OURS = SimpleNamespace(
    exp=autograd.exp, log=autograd.log, tanh=autograd.tanh, relu=autograd.relu, sigmoid=autograd.sigmoid
)
TORCH = SimpleNamespace(exp=torch.exp, log=torch.log, tanh=torch.tanh, relu=torch.relu, sigmoid=torch.sigmoid)


def neuron(ops, w1, x1, w2, x2, b):
    return ops.tanh(w1 * x1 + w2 * x2 + b)


def reused(ops, a, b):
    return a * a + a * b + b


def two_branches(ops, x):
    y = ops.tanh(x)  # y feeds both terms
    return y * 2 + ops.exp(y)


def mixed_arithmetic(ops, x, y):
    return (x / 3 - 1) * (2 - y) + 1 / (x * y) - x**2 / y + 0.5 * -y


def cross_entropy(ops, w, x, b):
    p = ops.sigmoid(w * x + b)
    return -(0.3 * ops.log(p) + 0.7 * ops.log(1 - p))


def two_layer(ops, x, w1, w2, v1, v2):
    return ops.sigmoid(v1 * ops.relu(w1 * x + 0.5) + v2 * ops.relu(w2 * x - 0.5))


def long_chain(ops, x):
    for _ in range(40):
        x = ops.tanh(1.5 * x + 0.1) + 0.1 * x  # 5 operations a step, 200 in all
    return x


def tanh_times(ops, x, y):
    return ops.tanh(x) * y + x  # tanh of an input: the negative control below overrides its rule


# name -> (expression(ops, *inputs), domain of every input: "real" is 0.1 <= |x| <= 3 so that
# division, relu and log stay off their poles and kinks; "positive" is 0.1 <= x <= 3).
EXPRESSIONS = {
    "x + y": (lambda ops, x, y: x + y, "real"),
    "x + 2.5": (lambda ops, x: x + 2.5, "real"),
    "2.5 + x": (lambda ops, x: 2.5 + x, "real"),
    "x - y": (lambda ops, x, y: x - y, "real"),
    "x - 2.5": (lambda ops, x: x - 2.5, "real"),
    "2.5 - x": (lambda ops, x: 2.5 - x, "real"),
    "x * y": (lambda ops, x, y: x * y, "real"),
    "x * 2.5": (lambda ops, x: x * 2.5, "real"),
    "2.5 * x": (lambda ops, x: 2.5 * x, "real"),
    "x / y": (lambda ops, x, y: x / y, "real"),
    "x / 2.5": (lambda ops, x: x / 2.5, "real"),
    "2.5 / x": (lambda ops, x: 2.5 / x, "real"),
    "-x": (lambda ops, x: -x, "real"),
    "x ** 2": (lambda ops, x: x**2, "real"),
    "x ** 3": (lambda ops, x: x**3, "real"),
    "x ** -2": (lambda ops, x: x**-2, "real"),
    "x ** 2.0": (lambda ops, x: x**2.0, "real"),
    "x ** 0.5": (lambda ops, x: x**0.5, "positive"),
    "x ** -1.5": (lambda ops, x: x**-1.5, "positive"),
    "exp(x)": (lambda ops, x: ops.exp(x), "real"),
    "log(x)": (lambda ops, x: ops.log(x), "positive"),
    "tanh(x)": (lambda ops, x: ops.tanh(x), "real"),
    "relu(x)": (lambda ops, x: ops.relu(x), "real"),
    "sigmoid(x)": (lambda ops, x: ops.sigmoid(x), "real"),
    "x * x": (lambda ops, x: x * x, "real"),
    "neuron": (neuron, "real"),
    "a*a + a*b + b": (reused, "real"),
    "two_branches": (two_branches, "real"),
    "mixed_arithmetic": (mixed_arithmetic, "real"),
    "cross_entropy": (cross_entropy, "real"),
    "two_layer_relu": (two_layer, "real"),
    "long_chain": (long_chain, "real"),
    "tanh_times": (tanh_times, "real"),
}


def arity(expression) -> int:
    return len(inspect.signature(expression).parameters) - 1  # all but ops


def random_inputs(rng: np.random.Generator, name: str) -> list[float]:
    expression, domain = EXPRESSIONS[name]
    magnitudes = rng.uniform(0.1, 3.0, size=arity(expression))
    signs = np.ones_like(magnitudes) if domain == "positive" else rng.choice([-1.0, 1.0], size=magnitudes.size)
    return [float(x) for x in signs * magnitudes]


def ours(expression, inputs: list[float], value_class: type[Value] = Value) -> tuple[float, list[float]]:
    """Value and gradient by our reverse mode: one forward pass on Values, one backward()."""
    leaves = [value_class(x) for x in inputs]
    out = expression(OURS, *leaves)
    out.backward()
    return out.data, [leaf.grad for leaf in leaves]


def torch_autograd(expression, inputs: list[float]) -> tuple[float, list[float]]:
    """Value and gradient by torch.autograd on float64 scalar tensors."""
    leaves = [torch.tensor(x, dtype=torch.float64, requires_grad=True) for x in inputs]
    out = expression(TORCH, *leaves)
    out.backward()
    return out.item(), [leaf.grad.item() for leaf in leaves]


def assert_matches_torch(expression, inputs: list[float], value_class: type[Value] = Value) -> None:
    value, grads = ours(expression, inputs, value_class)
    expected_value, expected_grads = torch_autograd(expression, inputs)
    np.testing.assert_allclose(value, expected_value, rtol=TORCH_RTOL, atol=TORCH_ATOL)
    np.testing.assert_allclose(grads, expected_grads, rtol=TORCH_RTOL, atol=TORCH_ATOL)


def on_floats(expression):
    """The expression as a plain function of a point, evaluated on floats (math functions)."""
    return lambda point: expression(OURS, *(float(x) for x in point))


# ---- every operation against torch.autograd and finite differences ---------------------------


@pytest.mark.parametrize("name", EXPRESSIONS)
def test_value_and_gradient_equal_torch_autograd_in_float64(name, rng):
    expression, _ = EXPRESSIONS[name]
    for _ in range(5):
        assert_matches_torch(expression, random_inputs(rng, name))


@st.composite
def expression_and_inputs(draw):
    name = draw(st.sampled_from(sorted(EXPRESSIONS)))
    expression, domain = EXPRESSIONS[name]
    magnitude = st.floats(0.1, 3.0)
    signed = st.tuples(magnitude, st.booleans()).map(lambda m: m[0] if m[1] else -m[0])
    inputs = draw(st.lists(magnitude if domain == "positive" else signed, min_size=arity(expression),
                           max_size=arity(expression)))
    return name, inputs


@settings(max_examples=60, deadline=None)
@given(case=expression_and_inputs())
def test_any_inputs_give_torch_autograd_value_and_gradient(case):
    name, inputs = case
    assert_matches_torch(EXPRESSIONS[name][0], inputs)


@pytest.mark.parametrize("name", EXPRESSIONS)
def test_gradient_equals_central_finite_differences(name, rng):
    expression, _ = EXPRESSIONS[name]
    for _ in range(3):
        inputs = random_inputs(rng, name)
        _, grads = ours(expression, inputs)
        numerical = numerical_gradient(on_floats(expression), np.array(inputs), FD_H)
        np.testing.assert_allclose(grads, numerical, rtol=FD_RTOL, atol=FD_ATOL)


@pytest.mark.parametrize("name", EXPRESSIONS)
def test_the_same_function_on_floats_gives_exactly_the_value_data(name, rng):
    expression, _ = EXPRESSIONS[name]
    inputs = random_inputs(rng, name)
    assert on_floats(expression)(inputs) == ours(expression, inputs)[0]


@pytest.mark.parametrize("x", [-1000.0, -700.0, -30.0, 30.0, 700.0, 1000.0])
def test_sigmoid_is_stable_for_large_inputs_and_matches_torch(x):
    value, (grad,) = ours(lambda ops, x: ops.sigmoid(x), [x])  # no OverflowError from e^1000
    expected_value, (expected_grad,) = torch_autograd(lambda ops, x: ops.sigmoid(x), [x])
    assert 0.0 <= value <= 1.0 and grad >= 0.0
    np.testing.assert_allclose([value, grad], [expected_value, expected_grad], rtol=TORCH_RTOL, atol=1e-300)
    assert Dual(x, 1.0).sigmoid().value == value
    assert autograd.sigmoid(x) == value


def test_relu_at_exactly_zero_has_the_documented_subgradient_zero_as_torch():
    assert ours(lambda ops, x: ops.relu(x), [0.0]) == (0.0, [0.0])
    assert torch_autograd(lambda ops, x: ops.relu(x), [0.0]) == (0.0, [0.0])
    assert Dual(0.0, 1.0).relu().tangent == 0.0


# ---- the negative control: a wrong backward rule must fail the same checks ---------------------


class ValueWithWrongTanh(Value):
    def tanh(self) -> Value:
        """Deliberately wrong: d/dx = 1 - tanh(x) instead of 1 - tanh(x)^2."""
        t = math.tanh(self.data)

        def backward(grad: float) -> tuple[float]:
            return (grad * (1 - t),)

        return autograd._result(t, (self,), "tanh", backward)


def test_a_wrong_backward_rule_fails_the_comparison_with_torch_and_finite_differences(rng):
    expression, _ = EXPRESSIONS["tanh_times"]
    inputs = random_inputs(rng, "tanh_times")
    assert_matches_torch(expression, inputs)  # the correct rule passes...
    with pytest.raises(AssertionError):
        assert_matches_torch(expression, inputs, value_class=ValueWithWrongTanh)  # ...the wrong one fails
    _, wrong = ours(expression, inputs, value_class=ValueWithWrongTanh)
    numerical = numerical_gradient(on_floats(expression), np.array(inputs), FD_H)
    assert not np.allclose(wrong, numerical, rtol=FD_RTOL, atol=FD_ATOL)


# ---- accumulation ------------------------------------------------------------------------------


def test_a_node_used_twice_gets_the_sum_of_both_uses():
    x = Value(0.7)
    (x * x).backward()
    assert x.grad == 2 * 0.7
    x = Value(0.7)
    y = x.tanh()
    (y * 2 + y.exp()).backward()  # y feeds two branches
    assert y.grad == pytest.approx(2 + math.exp(y.data), rel=1e-15)
    assert x.grad == pytest.approx((2 + math.exp(y.data)) * (1 - y.data**2), rel=1e-15)


def build_neuron() -> tuple[Value, list[Value]]:
    inputs = [Value(x) for x in (0.5, 1.0, -1.5, 2.0, 0.1)]
    return neuron(OURS, *inputs), inputs


def test_backward_sets_the_root_gradient_to_one():
    out, _ = build_neuron()
    out.backward()
    assert out.grad == 1.0


def test_backward_twice_without_zero_grad_doubles_every_gradient():
    out, _ = build_neuron()
    nodes = topological_order(out)
    out.backward()
    once = [node.grad for node in nodes]
    out.backward()
    # Every node, intermediate ones included, gets the same contribution again: exactly twice.
    assert [node.grad for node in nodes] == [2 * grad for grad in once]
    assert out.grad == 2.0


def test_zero_grad_resets_every_node_and_backward_is_then_correct_again():
    out, inputs = build_neuron()
    out.backward()
    once = [x.grad for x in inputs]
    out.backward()
    out.zero_grad()
    assert all(node.grad == 0.0 for node in topological_order(out))
    out.backward()
    assert [x.grad for x in inputs] == once
    _, expected = torch_autograd(neuron, [x.data for x in inputs])
    np.testing.assert_allclose(once, expected, rtol=TORCH_RTOL, atol=TORCH_ATOL)


# ---- the graph: topological order, deep chains ---------------------------------------------------


def reachable(root: Value) -> set[Value]:
    """Every node root depends on, found independently of topological_order (small graphs only)."""
    return {root}.union(*(reachable(parent) for parent in root.parents))


@pytest.mark.parametrize("name", ["neuron", "a*a + a*b + b", "two_branches", "cross_entropy", "x * x"])
def test_topological_order_lists_each_node_once_after_all_its_parents(name, rng):
    expression, _ = EXPRESSIONS[name]
    out = expression(OURS, *(Value(x) for x in random_inputs(rng, name)))
    order = topological_order(out)
    assert len(order) == len(set(order))
    assert set(order) == reachable(out)
    position = {node: i for i, node in enumerate(order)}
    assert all(position[parent] < position[node] for node in order for parent in node.parents)
    assert order[-1] is out and not order[0].parents


def test_a_chain_of_5000_operations_backpropagates_without_recursion_error():
    assert 5000 > sys.getrecursionlimit()  # a recursive graph walk would fail here
    x = Value(0.5)
    y = x
    for _ in range(5000):
        y = y * 1.0001
    assert len(topological_order(y)) == 1 + 2 * 5000  # x, then a constant and a product per step
    y.backward()
    assert x.grad == pytest.approx(1.0001**5000, rel=1e-12)
    y.zero_grad()
    assert x.grad == 0.0


# ---- forward mode with dual numbers --------------------------------------------------------------


@pytest.mark.parametrize("name", EXPRESSIONS)
def test_forward_mode_gradient_equals_reverse_mode_and_torch(name, rng):
    expression, _ = EXPRESSIONS[name]
    inputs = random_inputs(rng, name)

    def f(*xs):
        return expression(OURS, *xs)

    forward, forward_passes = gradient_forward_mode(f, inputs)
    reverse, backward_passes = gradient_reverse_mode(f, inputs)
    assert (forward_passes, backward_passes) == (len(inputs), 1)
    np.testing.assert_allclose(forward, reverse, rtol=TORCH_RTOL, atol=TORCH_ATOL)
    np.testing.assert_allclose(forward, torch_autograd(expression, inputs)[1], rtol=TORCH_RTOL, atol=TORCH_ATOL)


@pytest.mark.parametrize("name", EXPRESSIONS)
def test_dual_value_equals_the_value_data_exactly(name, rng):
    expression, _ = EXPRESSIONS[name]
    inputs = random_inputs(rng, name)
    assert expression(OURS, *(Dual(x, 1.0) for x in inputs)).value == ours(expression, inputs)[0]


def public_operations(cls: type) -> set[str]:
    """The arithmetic and functions a class offers: public methods and reflected operators."""
    return {name for name in vars(cls) if not name.startswith("_") or name.startswith("__r")}


def test_dual_supports_the_same_operations_as_value():
    assert public_operations(Dual) == public_operations(Value) - {"backward", "zero_grad"}
    assert {"exp", "log", "tanh", "relu", "sigmoid", "__radd__", "__rsub__", "__rmul__", "__rtruediv__"} <= (
        public_operations(Dual)
    )
    assert all(hasattr(Dual, name) for name in ("__add__", "__sub__", "__mul__", "__truediv__", "__neg__", "__pow__"))


def sum_of_squares(*xs):
    return sum(x * x for x in xs)  # n products and n sums (the first adds to the constant 0)


@pytest.mark.parametrize("n", [1, 4, 16])
def test_forward_mode_costs_n_evaluations_and_reverse_mode_one_forward_and_one_backward(n):
    point = [0.1 * (i + 1) for i in range(n)]
    m = 2 * n  # operations in one evaluation of sum_of_squares
    assert count_operations(sum_of_squares, point, "forward") == OperationCount(forward=n * m, backward=0)
    assert count_operations(sum_of_squares, point, "reverse") == OperationCount(forward=m, backward=m)
    assert gradient_forward_mode(sum_of_squares, point)[1] == n
    assert gradient_reverse_mode(sum_of_squares, point)[1] == 1
    np.testing.assert_allclose(gradient_reverse_mode(sum_of_squares, point)[0], 2 * np.array(point), rtol=1e-15)


def test_operation_count_of_a_neuron_is_counted_by_hand():
    def f(w1, x1, w2, x2, b):
        return neuron(OURS, w1, x1, w2, x2, b)  # two products, two sums, one tanh

    point = [0.5, 1.0, -1.5, 2.0, 0.1]
    assert count_operations(f, point, "reverse") == OperationCount(forward=5, backward=5)
    assert count_operations(f, point, "forward").total == 5 * 5


def test_a_function_that_ignores_its_inputs_has_zero_gradient():
    for mode in (gradient_forward_mode, gradient_reverse_mode):
        assert mode(lambda x, y: 3.0, [1.0, 2.0])[0] == [0.0, 0.0]


def test_dispatch_helpers_use_the_math_module_on_plain_numbers():
    assert autograd.exp(1.5) == math.exp(1.5)
    assert autograd.log(1.5) == math.log(1.5)
    assert autograd.tanh(1.5) == math.tanh(1.5)
    assert autograd.relu(-1.5) == 0.0 and autograd.relu(1.5) == 1.5
    assert autograd.sigmoid(0.0) == 0.5
    assert isinstance(autograd.exp(Value(1.5)), Value) and isinstance(autograd.exp(Dual(1.5)), Dual)


# ---- repr ----------------------------------------------------------------------------------------


def test_repr_shows_data_and_grad_to_four_significant_digits():
    assert repr(Value(0.5)) == "Value(data=0.5, grad=0.0)"
    assert repr(Value(2 / 3, "a")) == "Value(data=0.6667, grad=0.0, label='a')"
    assert repr(Dual(2.0, 1 / 3)) == "Dual(value=2.0, tangent=0.3333)"


# ---- drawing -------------------------------------------------------------------------------------


def value_boxes(ax) -> list[FancyBboxPatch]:
    return [patch for patch in ax.patches if isinstance(patch, FancyBboxPatch)]


def value_texts(ax) -> list:
    return [text for text in ax.texts if "data" in text.get_text()]


def test_draw_graph_draws_one_box_per_value_and_one_circle_per_operation():
    a, b = Value(2.0, "a"), Value(-3.0, "b")
    c = a * b
    c.label = "c"
    d = c + a
    d.backward()
    figures_before = plt.get_fignums()
    fig = draw_graph(d)
    assert isinstance(fig, Figure)
    assert plt.get_fignums() == figures_before  # not registered with pyplot: nothing to close or show
    (ax,) = fig.axes
    assert len(value_boxes(ax)) == len(value_texts(ax)) == 4  # a, b, c, d
    assert len([patch for patch in ax.patches if isinstance(patch, Circle)]) == 2  # *, +
    texts = {text.get_text() for text in ax.texts}
    assert {"a\ndata 2.000\ngrad -2.000", "b\ndata -3.000\ngrad 2.000", "c\ndata -6.000\ngrad 1.000"} <= texts
    assert {"\u00d7", "+"} <= texts
    assert "data -4.000\ngrad 1.000" in texts  # d has no label


def test_draw_graph_draws_into_the_given_axes():
    fig, ax = plt.subplots(figsize=(4, 3))
    out, _ = build_neuron()
    out.backward()
    assert draw_graph(out, ax=ax) is fig
    assert len(value_boxes(ax)) == len(topological_order(out))
    plt.close(fig)


def test_draw_graph_of_a_single_leaf_is_one_box():
    ax = draw_graph(Value(1.0, "x")).axes[0]
    assert [text.get_text() for text in ax.texts] == ["x\ndata 1.000\ngrad 0.000"]


def two_layer_network() -> Value:
    """A 25-node graph: two tanh neurons on two inputs, and a linear output neuron."""
    x1, x2 = Value(0.5, "x1"), Value(-1.0, "x2")
    h1 = (Value(0.3, "w11") * x1 + Value(-0.8, "w12") * x2 + Value(0.1, "b1")).tanh()
    h2 = (Value(-0.5, "w21") * x1 + Value(0.9, "w22") * x2 + Value(-0.2, "b2")).tanh()
    out = Value(1.2, "v1") * h1 + Value(-0.7, "v2") * h2 + Value(0.05, "c")
    out.backward()
    return out


def test_a_25_node_graph_is_legible_every_text_inside_its_box_and_no_boxes_overlap():
    out = two_layer_network()
    assert len(topological_order(out)) == 25
    fig = draw_graph(out)
    renderer = FigureCanvasAgg(fig).get_renderer()
    ax = fig.axes[0]
    boxes = [box.get_window_extent(renderer) for box in value_boxes(ax)]
    circles = [patch.get_window_extent(renderer) for patch in ax.patches if isinstance(patch, Circle)]
    assert len(boxes) == 25 and len(circles) == 25 - 11  # 11 leaves
    for box, text in zip(boxes, value_texts(ax), strict=True):
        extent = text.get_window_extent(renderer)
        assert box.x0 < extent.x0 and extent.x1 < box.x1 and box.y0 < extent.y0 and extent.y1 < box.y1
    for first, second in itertools.combinations(boxes + circles, 2):
        assert not first.overlaps(second)
    width, height = fig.get_size_inches()
    assert width < 16 and height < 8  # fits a page or a screen at 100 dpi


def test_draw_graph_refuses_a_graph_too_large_to_read():
    y = Value(1.0)
    for _ in range(60):
        y = y * 1.0
    with pytest.raises(ValueError, match=r"the graph has 121 value nodes, more than max_nodes=100"):
        draw_graph(y)


# ---- errors name what was expected and what came ------------------------------------------------


@pytest.mark.parametrize("cls", [Value, Dual])
def test_a_variable_exponent_is_rejected_with_a_type_error(cls):
    with pytest.raises(TypeError, match=rf"exponent of \*\* must be a number \(int or float\), got {cls.__name__}"):
        cls(2.0) ** cls(3.0)
    with pytest.raises(TypeError, match=rf"float 2\.0 \*\* {cls.__name__}: the exponent of \*\* must be a number"):
        2.0 ** cls(3.0)


@pytest.mark.parametrize("cls", [Value, Dual])
def test_a_negative_base_with_a_fractional_exponent_is_rejected(cls):
    with pytest.raises(ValueError, match=r"x \*\* 0\.5 with a non-integer exponent needs x >= 0, got x = -2\.0"):
        cls(-2.0) ** 0.5


@pytest.mark.parametrize("x", [0.0, -1.0])
@pytest.mark.parametrize("log", [lambda x: Value(x).log(), lambda x: Dual(x).log(), autograd.log])
def test_log_of_a_non_positive_number_is_rejected_with_a_value_error(log, x):
    with pytest.raises(ValueError, match=rf"log needs x > 0, got x = {x}"):
        log(x)


@pytest.mark.parametrize("cls", [Value, Dual])
def test_an_operand_that_is_not_a_number_is_rejected_naming_what_came(cls):
    name = cls.__name__
    with pytest.raises(TypeError, match=rf"{name} \+ str: expected a number or a {name}, got str 'a'"):
        cls(1.0) + "a"
    with pytest.raises(TypeError, match=rf"expected a number or a {name}, got str 'a'"):
        "a" * cls(1.0)
    with pytest.raises(TypeError, match=rf"expected a number or a {name}, got NoneType None"):
        cls(1.0) / None


def test_values_and_duals_do_not_mix():
    with pytest.raises(TypeError, match=r"Value \* Dual: expected a number or a Value, got Dual"):
        Value(1.0) * Dual(1.0)
    with pytest.raises(TypeError, match=r"Dual \+ Value: expected a number or a Dual, got Value"):
        Dual(1.0) + Value(1.0)


def test_bad_constructor_arguments_are_rejected():
    with pytest.raises(TypeError, match=r"data must be a real number, got str '1'"):
        Value("1")
    with pytest.raises(TypeError, match=r"data must be a real number, got bool True"):
        Value(True)
    with pytest.raises(TypeError, match=r"label must be a string, got int 3"):
        Value(1.0, 3)
    with pytest.raises(TypeError, match=r"tangent must be a real number, got NoneType None"):
        Dual(1.0, None)


def test_bad_arguments_to_the_public_functions_are_rejected():
    def f(x):
        return x * 2

    with pytest.raises(TypeError, match=r"f must be a function of the point's coordinates, got int 3"):
        gradient_forward_mode(3, [1.0])
    with pytest.raises(TypeError, match=r"point must be a sequence of numbers, got str 'ab'"):
        gradient_reverse_mode(f, "ab")
    with pytest.raises(TypeError, match=r"point\[1\] must be a real number, got str 'a'"):
        gradient_reverse_mode(f, [1.0, "a"])
    with pytest.raises(ValueError, match=r"point must hold at least one coordinate"):
        gradient_forward_mode(f, [])
    with pytest.raises(TypeError, match=r"f must return a Dual or a number when called on Duals, got str 'x'"):
        gradient_forward_mode(lambda x: "x", [1.0])
    with pytest.raises(ValueError, match=r"mode must be 'forward' or 'reverse', got 'sideways'"):
        count_operations(f, [1.0], "sideways")
    with pytest.raises(TypeError, match=r"root must be a Value, got float 1\.0"):
        topological_order(1.0)
    with pytest.raises(TypeError, match=r"root must be a Value, got Dual"):
        draw_graph(Dual(1.0))
    with pytest.raises(TypeError, match=r"exp expects a Value, a Dual or a number, got str 'a'"):
        autograd.exp("a")
