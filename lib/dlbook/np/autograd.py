"""Automatic differentiation on scalars, in reverse mode and in forward mode (chapter 2).

`Value` records every operation as a node of a computational graph; `backward()` then applies the
chain rule once per node, from the output back to the inputs (reverse mode, backpropagation).
`Dual` carries a derivative along with each number instead, so one evaluation gives the derivative
in one input direction (forward mode). Both support the same operations, so one function written
with `+ - * / **` and this module's `exp, log, tanh, relu, sigmoid` runs on floats, on Values and
on Duals:

    def neuron(w1, x1, w2, x2, b):
        return tanh(w1 * x1 + w2 * x2 + b)

    gradient_reverse_mode(neuron, [0.5, 1.0, -1.5, 2.0, 0.1])  # one forward and one backward pass
    gradient_forward_mode(neuron, [0.5, 1.0, -1.5, 2.0, 0.1])  # five forward passes

Each operation's backward rule is a closure written beside its forward computation: it receives
d(root)/d(result), the gradient of the final output with respect to the operation's result, and
returns d(root)/d(input) for each input, by the chain rule:

    out = x * y      backward(grad) = (grad * y, grad * x)

`tests/test_autograd.py` checks every rule against `torch.autograd` and finite differences.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

from dlbook._validation import _describe, require_real

BackwardRule = Callable[[float], tuple[float, ...]]


def _is_number(x: object) -> bool:
    return isinstance(x, numbers.Real) and not isinstance(x, bool)


def _operand(cls: type, other: object, op: str) -> Value | Dual:
    """`other` as an operand of `cls`: an instance as it is, a plain number as a constant."""
    if isinstance(other, cls):
        return other
    if _is_number(other):
        return cls(other)
    raise TypeError(
        f"{cls.__name__} {op} {type(other).__name__}: expected a number or a {cls.__name__}, got {_describe(other)}"
    )


def _exponent(exponent: object, base: float) -> float:
    """Check `base ** exponent`: a numeric exponent, and a real result."""
    if not _is_number(exponent):
        raise TypeError(
            f"the exponent of ** must be a number (int or float), got {_describe(exponent)}; "
            "for a variable exponent y write exp(y * log(x)) instead of x ** y"
        )
    if base < 0 and not float(exponent).is_integer():
        raise ValueError(f"x ** {exponent} with a non-integer exponent needs x >= 0, got x = {base}")
    return exponent


def _no_variable_exponent(base: object, exponent: object) -> TypeError:
    return TypeError(
        f"{_describe(base)} ** {type(exponent).__name__}: the exponent of ** must be a number (int or float); "
        "for a variable exponent y write exp(y * log(x)) instead of x ** y"
    )


def _log_domain(x: float) -> float:
    if x <= 0:
        raise ValueError(f"log needs x > 0, got x = {x}")
    return x


def _sigmoid(x: float) -> float:
    """1 / (1 + e^-x) without overflow: only e^-|x| <= 1 is ever computed."""
    z = math.exp(-abs(x))
    return 1 / (1 + z) if x >= 0 else z / (1 + z)


def _four_digits(x: float) -> str:
    """x rounded to 4 significant digits, written as a float: 0.5, 0.0, 0.6667, 1.235e-05."""
    return repr(float(f"{x:.4g}"))


def _result(data: float, parents: tuple[Value, ...], op: str, backward: BackwardRule) -> Value:
    """The node an operation makes: its value, the nodes it came from, and its backward rule."""
    out = Value(data)
    out.parents, out.op, out._backward = parents, op, backward
    return out


class Value:
    """A scalar node of a computational graph, for reverse-mode automatic differentiation.

    data:    the number this node holds.
    grad:    d(root)/d(this node), summed over root.backward() calls since the last zero_grad().
    label:   a name for drawings, e.g. "w1"; "" for none.
    parents: the nodes this one was computed from; () for a leaf (an input or a constant).
    op:      the operation that produced it ("+", "*", "exp", "**2", ...); "" for a leaf.

    A Value you make is a leaf, Value(2.0, "a"); operations on Values make the other nodes.
    """

    def __init__(self, data: float, label: str = "") -> None:
        if not _is_number(data):
            raise TypeError(f"data must be a real number, got {_describe(data)}")
        if not isinstance(label, str):
            raise TypeError(f"label must be a string, got {_describe(label)}")
        self.data = float(data)
        self.grad = 0.0
        self.label = label
        self.parents: tuple[Value, ...] = ()
        self.op = ""
        self._backward: BackwardRule | None = None  # d(root)/d(self) -> d(root)/d(each parent)

    def __repr__(self) -> str:
        label = f", label={self.label!r}" if self.label else ""
        return f"Value(data={_four_digits(self.data)}, grad={_four_digits(self.grad)}{label})"

    def __add__(self, other: Value | float) -> Value:
        """x + y; d/dx = 1, d/dy = 1."""
        other = _operand(Value, other, "+")

        def backward(grad: float) -> tuple[float, float]:
            return grad, grad

        return _result(self.data + other.data, (self, other), "+", backward)

    def __sub__(self, other: Value | float) -> Value:
        """x - y; d/dx = 1, d/dy = -1."""
        other = _operand(Value, other, "-")

        def backward(grad: float) -> tuple[float, float]:
            return grad, -grad

        return _result(self.data - other.data, (self, other), "-", backward)

    def __mul__(self, other: Value | float) -> Value:
        """x * y; d/dx = y, d/dy = x."""
        other = _operand(Value, other, "*")

        def backward(grad: float) -> tuple[float, float]:
            return grad * other.data, grad * self.data

        return _result(self.data * other.data, (self, other), "*", backward)

    def __truediv__(self, other: Value | float) -> Value:
        """x / y; d/dx = 1/y, d/dy = -x/y^2."""
        other = _operand(Value, other, "/")

        def backward(grad: float) -> tuple[float, float]:
            return grad / other.data, -grad * self.data / other.data**2

        return _result(self.data / other.data, (self, other), "/", backward)

    def __neg__(self) -> Value:
        """-x; d/dx = -1."""

        def backward(grad: float) -> tuple[float]:
            return (-grad,)

        return _result(-self.data, (self,), "neg", backward)

    def __pow__(self, exponent: float) -> Value:
        """x ** n for a number n; d/dx = n * x ** (n - 1)."""
        n = _exponent(exponent, self.data)

        def backward(grad: float) -> tuple[float]:
            return (grad * n * self.data ** (n - 1),)

        return _result(self.data**n, (self,), f"**{n:g}", backward)

    def exp(self) -> Value:
        """e^x; d/dx = e^x."""
        e = math.exp(self.data)

        def backward(grad: float) -> tuple[float]:
            return (grad * e,)

        return _result(e, (self,), "exp", backward)

    def log(self) -> Value:
        """ln(x) for x > 0; d/dx = 1/x."""
        x = _log_domain(self.data)

        def backward(grad: float) -> tuple[float]:
            return (grad / x,)

        return _result(math.log(x), (self,), "log", backward)

    def tanh(self) -> Value:
        """tanh(x); d/dx = 1 - tanh(x)^2."""
        t = math.tanh(self.data)

        def backward(grad: float) -> tuple[float]:
            return (grad * (1 - t**2),)

        return _result(t, (self,), "tanh", backward)

    def relu(self) -> Value:
        """max(x, 0); d/dx = 1 for x > 0, else 0 (at exactly 0 too: the subgradient PyTorch uses)."""
        slope = 1.0 if self.data > 0 else 0.0

        def backward(grad: float) -> tuple[float]:
            return (grad * slope,)

        return _result(self.data if self.data > 0 else 0.0, (self,), "relu", backward)

    def sigmoid(self) -> Value:
        """s(x) = 1 / (1 + e^-x); d/dx = s(x) (1 - s(x))."""
        s = _sigmoid(self.data)

        def backward(grad: float) -> tuple[float]:
            return (grad * s * (1 - s),)

        return _result(s, (self,), "sigmoid", backward)

    # A number on the left, as in 2 * x or 1 - x: turn it into a constant leaf and do the same.
    def __radd__(self, other: float) -> Value:
        return _operand(Value, other, "+") + self

    def __rsub__(self, other: float) -> Value:
        return _operand(Value, other, "-") - self

    def __rmul__(self, other: float) -> Value:
        return _operand(Value, other, "*") * self

    def __rtruediv__(self, other: float) -> Value:
        return _operand(Value, other, "/") / self

    def __rpow__(self, other: float) -> Value:
        raise _no_variable_exponent(other, self)

    def backward(self) -> None:
        """Backpropagation: add d(self)/d(node) to node.grad for this node and every node it depends on.

        One sweep in reverse topological order: a node is reached only after every node computed
        from it has passed back its share, so its gradient is complete (summed over all the paths
        to self) before it passes its own share on to its parents.

        Gradients accumulate, as in PyTorch: a second call without zero_grad() in between adds the
        same gradients again (self.grad becomes 2). Call zero_grad() first to start afresh.
        """
        grads = {self: 1.0}  # d(self)/d(node) from this call only, so earlier calls' sums are not passed on again
        for node in reversed(topological_order(self)):
            node.grad += grads[node]
            if node.parents:
                for parent, grad in zip(node.parents, node._backward(grads[node]), strict=True):
                    grads[parent] = grads.get(parent, 0.0) + grad

    def zero_grad(self) -> None:
        """Set grad to 0.0 on this node and on every node it depends on."""
        for node in topological_order(self):
            node.grad = 0.0


def topological_order(root: Value) -> list[Value]:
    """Every node that root depends on, root included, each once and after all its parents.

    Leaves come first and root last. An explicit stack instead of recursion, so that graphs
    deeper than Python's recursion limit (a chain of thousands of operations) work.
    """
    if not isinstance(root, Value):
        raise TypeError(f"root must be a Value, got {_describe(root)}")
    order, seen = [], set()
    stack = [(root, False)]  # (node, whether its parents are already in order)
    while stack:
        node, parents_done = stack.pop()
        if parents_done:
            order.append(node)
        elif node not in seen:
            seen.add(node)
            stack.append((node, True))
            stack.extend((parent, False) for parent in reversed(node.parents))  # first parent first
    return order


class Dual:
    """A dual number value + tangent * eps, with eps^2 = 0, for forward-mode differentiation.

    Evaluating f on Dual(x, 1) gives Dual(f(x), f'(x)): each operation carries the derivative
    of its result along with the result, by the same rules Value's backward closures use.
    """

    def __init__(self, value: float, tangent: float = 0.0) -> None:
        if not _is_number(value):
            raise TypeError(f"value must be a real number, got {_describe(value)}")
        if not _is_number(tangent):
            raise TypeError(f"tangent must be a real number, got {_describe(tangent)}")
        self.value = float(value)
        self.tangent = float(tangent)

    def __repr__(self) -> str:
        return f"Dual(value={_four_digits(self.value)}, tangent={_four_digits(self.tangent)})"

    def __add__(self, other: Dual | float) -> Dual:
        """(a + a'eps) + (b + b'eps) = (a + b) + (a' + b')eps."""
        other = _operand(Dual, other, "+")
        return Dual(self.value + other.value, self.tangent + other.tangent)

    def __sub__(self, other: Dual | float) -> Dual:
        """(a + a'eps) - (b + b'eps) = (a - b) + (a' - b')eps."""
        other = _operand(Dual, other, "-")
        return Dual(self.value - other.value, self.tangent - other.tangent)

    def __mul__(self, other: Dual | float) -> Dual:
        """(a + a'eps)(b + b'eps) = ab + (a'b + ab')eps."""
        other = _operand(Dual, other, "*")
        return Dual(self.value * other.value, self.tangent * other.value + self.value * other.tangent)

    def __truediv__(self, other: Dual | float) -> Dual:
        """(a + a'eps) / (b + b'eps) = a/b + (a'/b - ab'/b^2)eps."""
        other = _operand(Dual, other, "/")
        return Dual(
            self.value / other.value, self.tangent / other.value - self.value * other.tangent / other.value**2
        )

    def __neg__(self) -> Dual:
        """-(a + a'eps) = -a - a'eps."""
        return Dual(-self.value, -self.tangent)

    def __pow__(self, exponent: float) -> Dual:
        """(a + a'eps) ** n = a^n + n a^(n-1) a'eps, for a number n."""
        n = _exponent(exponent, self.value)
        return Dual(self.value**n, n * self.value ** (n - 1) * self.tangent)

    def exp(self) -> Dual:
        """e^(a + a'eps) = e^a + e^a a'eps."""
        e = math.exp(self.value)
        return Dual(e, e * self.tangent)

    def log(self) -> Dual:
        """ln(a + a'eps) = ln a + (a'/a)eps, for a > 0."""
        a = _log_domain(self.value)
        return Dual(math.log(a), self.tangent / a)

    def tanh(self) -> Dual:
        """tanh(a + a'eps) = tanh a + (1 - tanh(a)^2) a'eps."""
        t = math.tanh(self.value)
        return Dual(t, (1 - t**2) * self.tangent)

    def relu(self) -> Dual:
        """relu(a + a'eps) = relu(a) + [a > 0] a'eps (slope 0 at exactly 0, as Value.relu)."""
        slope = 1.0 if self.value > 0 else 0.0
        return Dual(self.value if self.value > 0 else 0.0, slope * self.tangent)

    def sigmoid(self) -> Dual:
        """s(a + a'eps) = s(a) + s(a)(1 - s(a)) a'eps."""
        s = _sigmoid(self.value)
        return Dual(s, s * (1 - s) * self.tangent)

    def __radd__(self, other: float) -> Dual:
        return _operand(Dual, other, "+") + self

    def __rsub__(self, other: float) -> Dual:
        return _operand(Dual, other, "-") - self

    def __rmul__(self, other: float) -> Dual:
        return _operand(Dual, other, "*") * self

    def __rtruediv__(self, other: float) -> Dual:
        return _operand(Dual, other, "/") / self

    def __rpow__(self, other: float) -> Dual:
        raise _no_variable_exponent(other, self)


# One function, three kinds of numbers: these call the method of a Value or a Dual, and the math
# module's function on a plain number.
def _number(function: str, x: object) -> float:
    if not _is_number(x):
        raise TypeError(f"{function} expects a Value, a Dual or a number, got {_describe(x)}")
    return float(x)


def exp(x: Value | Dual | float) -> Value | Dual | float:
    """e^x."""
    return x.exp() if isinstance(x, (Value, Dual)) else math.exp(_number("exp", x))


def log(x: Value | Dual | float) -> Value | Dual | float:
    """ln(x), for x > 0 (ValueError otherwise)."""
    return x.log() if isinstance(x, (Value, Dual)) else math.log(_log_domain(_number("log", x)))


def tanh(x: Value | Dual | float) -> Value | Dual | float:
    """tanh(x)."""
    return x.tanh() if isinstance(x, (Value, Dual)) else math.tanh(_number("tanh", x))


def relu(x: Value | Dual | float) -> Value | Dual | float:
    """max(x, 0)."""
    if isinstance(x, (Value, Dual)):
        return x.relu()
    x = _number("relu", x)
    return x if x > 0 else 0.0


def sigmoid(x: Value | Dual | float) -> Value | Dual | float:
    """1 / (1 + e^-x), without overflow for large |x|."""
    return x.sigmoid() if isinstance(x, (Value, Dual)) else _sigmoid(_number("sigmoid", x))


def _checked_point(f: object, point: object) -> list[float]:
    if not callable(f):
        raise TypeError(f"f must be a function of the point's coordinates, got {_describe(f)}")
    if isinstance(point, (str, bytes)) or not hasattr(point, "__iter__"):
        raise TypeError(f"point must be a sequence of numbers, got {_describe(point)}")
    point = [require_real(f"point[{i}]", x) for i, x in enumerate(point)]
    if not point:
        raise ValueError("point must hold at least one coordinate, got an empty sequence")
    return point


def _output(result: object, cls: type) -> Value | Dual:
    """f's result as a `cls`; a plain number means f does not depend on its inputs."""
    if isinstance(result, cls):
        return result
    if _is_number(result):
        return cls(result)
    name = cls.__name__
    raise TypeError(f"f must return a {name} or a number when called on {name}s, got {_describe(result)}")


def gradient_forward_mode(f: Callable[..., Dual | float], point: Sequence[float]) -> tuple[list[float], int]:
    """The gradient of a scalar function f(x_1, ..., x_n) at point, by forward mode.

    Pass i evaluates f on Duals with tangent 1 on x_i and 0 on the others, which gives the
    i-th partial derivative: n inputs need n passes.
    Returns (gradient, passes): the n partial derivatives, and the number of evaluations of f (n).
    """
    point = _checked_point(f, point)
    gradient = []
    for i in range(len(point)):
        inputs = [Dual(x, tangent=1.0 if j == i else 0.0) for j, x in enumerate(point)]
        gradient.append(_output(f(*inputs), Dual).tangent)
    return gradient, len(point)


def gradient_reverse_mode(f: Callable[..., Value | float], point: Sequence[float]) -> tuple[list[float], int]:
    """The gradient of a scalar function f(x_1, ..., x_n) at point, by reverse mode.

    f is evaluated once on Values, which records the graph (the forward pass); one backward()
    sweep over that graph gives all n partial derivatives, whatever n is.
    Returns (gradient, passes): the n partial derivatives, and the number of backward passes,
    which is 1 (after exactly 1 forward pass).
    """
    point = _checked_point(f, point)
    inputs = [Value(x) for x in point]
    _output(f(*inputs), Value).backward()
    return [x.grad for x in inputs], 1


@dataclass(frozen=True)
class OperationCount:
    """Elementary operations (one +, -, *, /, **, neg, exp, log, tanh, relu or sigmoid each)
    executed to compute one gradient.

    forward:  operations evaluated in forward passes (on Duals, each also carries its tangent).
    backward: backward rules applied by Value.backward(); 0 in forward mode.
    """

    forward: int
    backward: int

    @property
    def total(self) -> int:
        return self.forward + self.backward


def count_operations(
    f: Callable[..., Value | Dual | float], point: Sequence[float], mode: Literal["forward", "reverse"]
) -> OperationCount:
    """How many elementary operations a gradient of f at point costs in forward or reverse mode.

    f is evaluated once on Values; every operation creates exactly one node, so the graph's
    non-leaf nodes are the m operations of one evaluation (operations whose result f throws
    away are not in the graph and not counted). Reverse mode evaluates f once and applies one
    backward rule per node: OperationCount(forward=m, backward=m). Forward mode evaluates f once
    per input on Duals, which execute the same operations as Values do: OperationCount(n * m, 0).
    """
    point = _checked_point(f, point)
    if mode not in ("forward", "reverse"):
        raise ValueError(f"mode must be 'forward' or 'reverse', got {mode!r}")
    graph = topological_order(_output(f(*[Value(x) for x in point]), Value))
    operations = sum(1 for node in graph if node.parents)
    if mode == "forward":
        return OperationCount(forward=len(point) * operations, backward=0)
    return OperationCount(forward=operations, backward=operations)
