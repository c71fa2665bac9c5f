"""A small reverse-mode automatic differentiation engine on NumPy arrays (chapter 2, "Backpropagation").

A `Tensor` holds an array and remembers how it was made: its parents (the tensors it was computed
from), the name of the operation, and a `backward` rule. Each rule is a short function written
right beside its forward computation; it receives dL/d(out), the gradient of the final loss with
respect to the operation's output, and returns dL/d(input) for each parent, by the chain rule:

    out = a * b      backward(grad) = (grad * b, grad * a)

`loss.backward()` visits the graph from the loss back to the leaves in reverse topological order,
so every tensor has received the gradient from all of its uses before its own rule runs, and adds
up the contributions of a tensor used more than once.

Operations follow NumPy broadcasting. An input that broadcasting stretched (a bias (C,) added to
every row of an (N, C) array) influenced every element it was copied to, so its gradient is the
sum of theirs: `unbroadcast` sums the incoming gradient back down to the input's shape.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable

import numpy as np

from dlbook._validation import require_bool, require_real

BackwardRule = Callable[[np.ndarray], tuple[np.ndarray, ...]]


def _as_float_array(data: object) -> np.ndarray:
    """float32 and float64 arrays as they are (no copy); anything else converted to float64."""
    if isinstance(data, Tensor):
        raise TypeError("Tensor(data) needs an array or a number, got a Tensor; pass tensor.data for its values")
    array = np.asarray(data)
    if array.dtype in (np.float32, np.float64):
        return array
    return array.astype(np.float64)


class Tensor:
    """An array with a gradient, and a record of the operation that produced it.

    data: the values, a float64 array (float32 arrays are kept as float32; numbers, lists and
        integer arrays become float64). A float array is not copied: the tensor shares its memory,
        like `torch.from_numpy`, and the engine never writes into it.
    requires_grad: whether backward() computes dL/d(this tensor). Results of operations require
        a gradient when any of their inputs does.
    grad: dL/d(this tensor), an array of the shape of `data`, filled in by backward(); None before.
    parents, op: the tensors this one was computed from and the operation's name ("" for a leaf).
    """

    # Make NumPy hand `array + tensor` and `array @ tensor` to Tensor.__radd__, __rmatmul__, ...
    __array_ufunc__ = None

    def __init__(self, data: object, requires_grad: bool = False) -> None:
        self.data = _as_float_array(data)
        self.requires_grad = require_bool("requires_grad", requires_grad)
        self.grad: np.ndarray | None = None
        self.parents: tuple[Tensor, ...] = ()
        self.op = ""
        self._backward: BackwardRule | None = None

    @property
    def shape(self) -> tuple[int, ...]:
        return self.data.shape

    @property
    def ndim(self) -> int:
        return self.data.ndim

    @property
    def dtype(self) -> np.dtype:
        return self.data.dtype

    def numpy(self) -> np.ndarray:
        """The values as a NumPy array (the same memory, as in torch)."""
        return self.data

    def item(self) -> float:
        """The value of a one-element tensor as a Python float, e.g. `loss.item()`."""
        return self.data.item()

    def __array__(self, dtype: object = None, copy: object = None) -> np.ndarray:
        return self.data if dtype is None else self.data.astype(dtype)

    def __repr__(self) -> str:
        op = f", op={self.op!r}" if self.op else ""
        return f"Tensor({self.data!r}, requires_grad={self.requires_grad}{op})"

    # ---- elementwise arithmetic, with broadcasting ------------------------------------------

    def __add__(self, other: Operand) -> Tensor:
        other = _lift(other, self.dtype)
        a, b = self.data, other.data

        def backward(grad):  # d(a + b)/da = d(a + b)/db = 1
            return unbroadcast(grad, a.shape), unbroadcast(grad, b.shape)

        return _result(a + b, (self, other), "+", backward)

    def __sub__(self, other: Operand) -> Tensor:
        other = _lift(other, self.dtype)
        a, b = self.data, other.data

        def backward(grad):  # d(a - b)/da = 1, d(a - b)/db = -1
            return unbroadcast(grad, a.shape), unbroadcast(-grad, b.shape)

        return _result(a - b, (self, other), "-", backward)

    def __mul__(self, other: Operand) -> Tensor:
        other = _lift(other, self.dtype)
        a, b = self.data, other.data

        def backward(grad):  # d(a * b)/da = b, d(a * b)/db = a
            return unbroadcast(grad * b, a.shape), unbroadcast(grad * a, b.shape)

        return _result(a * b, (self, other), "*", backward)

    def __truediv__(self, other: Operand) -> Tensor:
        other = _lift(other, self.dtype)
        a, b = self.data, other.data

        def backward(grad):  # d(a / b)/da = 1 / b, d(a / b)/db = -a / b^2
            return unbroadcast(grad / b, a.shape), unbroadcast(-grad * a / b**2, b.shape)

        return _result(a / b, (self, other), "/", backward)

    def __radd__(self, other: Operand) -> Tensor:  # 2 + x
        return _lift(other, self.dtype) + self

    def __rsub__(self, other: Operand) -> Tensor:  # 2 - x
        return _lift(other, self.dtype) - self

    def __rmul__(self, other: Operand) -> Tensor:  # 2 * x
        return _lift(other, self.dtype) * self

    def __rtruediv__(self, other: Operand) -> Tensor:  # 2 / x
        return _lift(other, self.dtype) / self

    def __neg__(self) -> Tensor:
        def backward(grad):
            return (-grad,)

        return _result(-self.data, (self,), "neg", backward)

    def __pow__(self, exponent: float) -> Tensor:
        """x ** p for a number p (not a tensor)."""
        if isinstance(exponent, Tensor):
            raise TypeError("the exponent of ** must be a number, got a Tensor; use exp(p * log(x)) for x ** p")
        p = require_real("exponent", exponent)
        x = self.data

        def backward(grad):  # d(x^p)/dx = p x^(p - 1)
            return (grad * p * x ** (p - 1),)

        return _result(x**p, (self,), f"**{exponent}", backward)

    # ---- matrix product ---------------------------------------------------------------------

    def __matmul__(self, other: Operand) -> Tensor:
        """a @ b for matrices (N, D) @ (D, M) -> (N, M); a vector on either side, (D,), also works."""
        other = _lift(other, self.dtype)
        a, b = self.data, other.data
        _check_matmul(a.shape, b.shape)

        def backward(grad):
            # For matrices: dL/da = grad @ b^T, dL/db = a^T @ grad. A vector is viewed as a matrix,
            # (D,) as (1, D) on the left and as (D, 1) on the right, so the same rule serves.
            a2 = a.reshape(1, -1) if a.ndim == 1 else a  # (N, D)
            b2 = b.reshape(-1, 1) if b.ndim == 1 else b  # (D, M)
            g2 = grad.reshape(a2.shape[0], b2.shape[1])  # (N, M)
            return (g2 @ b2.T).reshape(a.shape), (a2.T @ g2).reshape(b.shape)

        return _result(a @ b, (self, other), "@", backward)

    def __rmatmul__(self, other: Operand) -> Tensor:  # array @ x
        return _lift(other, self.dtype) @ self

    # ---- reductions and shape changes -------------------------------------------------------

    def sum(self, axis: int | tuple[int, ...] | None = None, keepdims: bool = False) -> Tensor:
        """Sum over `axis` (all axes when None), as `np.sum`."""
        shape = self.shape

        def backward(grad):  # every summed element gets the gradient of the sum it went into
            return (_spread(grad, shape, axis, keepdims),)

        return _result(self.data.sum(axis=axis, keepdims=keepdims), (self,), "sum", backward)

    def mean(self, axis: int | tuple[int, ...] | None = None, keepdims: bool = False) -> Tensor:
        """Mean over `axis` (all axes when None), as `np.mean`."""
        shape, out = self.shape, self.data.mean(axis=axis, keepdims=keepdims)
        count = self.data.size // max(np.size(out), 1)  # how many elements each mean averages

        def backward(grad):  # as for sum, divided by the number of elements averaged
            return (_spread(grad / count, shape, axis, keepdims),)

        return _result(out, (self,), "mean", backward)

    def reshape(self, *shape: int | tuple[int, ...]) -> Tensor:
        """x.reshape(2, 3) or x.reshape((2, 3)), as `np.reshape` (one -1 allowed)."""
        new_shape = shape[0] if len(shape) == 1 and isinstance(shape[0], tuple | list) else shape
        old_shape = self.shape

        def backward(grad):
            return (grad.reshape(old_shape),)

        return _result(self.data.reshape(new_shape), (self,), "reshape", backward)

    def transpose(self, *axes: int | tuple[int, ...]) -> Tensor:
        """Permute the axes, as `np.transpose`; with no arguments, reverse them."""
        axes = axes[0] if len(axes) == 1 and isinstance(axes[0], tuple | list) else axes
        axes = tuple(axes) if axes else tuple(reversed(range(self.ndim)))
        out = np.transpose(self.data, axes)
        inverse = tuple(np.argsort(axes))  # the permutation that undoes `axes`

        def backward(grad):
            return (np.transpose(grad, inverse),)

        return _result(out, (self,), "transpose", backward)

    @property
    def T(self) -> Tensor:  # noqa: N802 (NumPy's and torch's name)
        return self.transpose()

    # ---- elementwise functions --------------------------------------------------------------

    def exp(self) -> Tensor:
        y = np.exp(self.data)

        def backward(grad):  # d(e^x)/dx = e^x
            return (grad * y,)

        return _result(y, (self,), "exp", backward)

    def log(self) -> Tensor:
        x = self.data

        def backward(grad):  # d(log x)/dx = 1 / x
            return (grad / x,)

        return _result(np.log(x), (self,), "log", backward)

    def relu(self) -> Tensor:
        x = self.data

        def backward(grad):  # 1 where x > 0, else 0 (at x = 0 too, as in torch)
            return (grad * (x > 0),)

        return _result(np.maximum(x, 0), (self,), "relu", backward)

    def tanh(self) -> Tensor:
        y = np.tanh(self.data)

        def backward(grad):  # d(tanh x)/dx = 1 - tanh(x)^2
            return (grad * (1 - y**2),)

        return _result(y, (self,), "tanh", backward)

    def sigmoid(self) -> Tensor:
        # 1 / (1 + e^-x) overflows for x << 0; with e = e^-|x| <= 1 both branches are safe.
        x = self.data
        e = np.exp(-np.abs(x))
        y = np.where(x >= 0, 1 / (1 + e), e / (1 + e))

        def backward(grad):  # d(sigma(x))/dx = sigma(x) (1 - sigma(x))
            return (grad * y * (1 - y),)

        return _result(y, (self,), "sigmoid", backward)

    # ---- backpropagation --------------------------------------------------------------------

    def backward(self, grad: np.ndarray | None = None) -> None:
        """Compute dL/dt for every tensor t in the graph below this one (L = this tensor).

        grad: dL/d(this tensor), of this tensor's shape; may be left out when this tensor holds a
            single number (a loss), where it is 1.
        Gradients are added to `.grad` (of intermediate results too, unlike torch), so two
        backward() calls add up, as in torch: call zero_grad() in between to start afresh.
        """
        if not self.requires_grad:
            raise RuntimeError(
                "backward() needs a tensor computed from one with requires_grad=True; this one does not depend on any"
            )
        if grad is None:
            if self.data.size != 1:
                raise ValueError(
                    f"backward() without a gradient needs a scalar (a tensor of size 1, such as a loss), "
                    f"got shape {self.shape}; pass grad=dL/d(output) of that shape"
                )
            grad = np.ones_like(self.data)
        grad = np.asarray(grad, dtype=self.dtype)
        if grad.shape != self.shape:
            raise ValueError(f"grad must have the tensor's shape, expected {self.shape}, got {grad.shape}")

        grads = {id(self): grad}  # dL/dt so far, keyed by tensor, during this pass only
        for node in reversed(topological_order(self)):  # outputs before the inputs they came from
            node_grad = grads.pop(id(node), None)
            if node_grad is None or not node.requires_grad:
                continue
            node.grad = _stored(node_grad if node.grad is None else node.grad + node_grad, node)
            if node._backward is None:  # a leaf
                continue
            for parent, parent_grad in zip(node.parents, node._backward(node_grad), strict=True):
                if parent_grad.shape != parent.shape:
                    raise RuntimeError(
                        f"the backward rule of {node.op!r} returned a gradient of shape {parent_grad.shape} "
                        f"for an input of shape {parent.shape}"
                    )
                if parent.requires_grad:  # a tensor used several times collects every use's share
                    previous = grads.get(id(parent))
                    grads[id(parent)] = parent_grad if previous is None else previous + parent_grad

    def zero_grad(self) -> None:
        """Reset `.grad` to None on this tensor and every tensor in the graph below it."""
        for node in topological_order(self):
            node.grad = None


Operand = Tensor | np.ndarray | float


def _stored(grad: np.ndarray, node: Tensor) -> np.ndarray:
    # A fresh array in the tensor's dtype: a stored gradient never aliases another tensor's.
    return np.array(grad, dtype=node.dtype)


def _lift(value: Operand, dtype: np.dtype) -> Tensor:
    """A Tensor as it is; a number as a constant of the other operand's dtype; an array as a constant."""
    if isinstance(value, Tensor):
        return value
    if isinstance(value, numbers.Real):
        return Tensor(np.asarray(value, dtype=dtype))
    if isinstance(value, np.ndarray | list | tuple):
        return Tensor(value)
    raise TypeError(f"cannot combine a Tensor with {type(value).__name__}; use a Tensor, an array or a number")


def _result(data: np.ndarray, parents: tuple[Tensor, ...], op: str, backward: BackwardRule) -> Tensor:
    """The output tensor of an operation; it keeps its parents and rule only if a gradient is needed."""
    out = Tensor(data, requires_grad=any(parent.requires_grad for parent in parents))
    out.op = op
    if out.requires_grad:
        out.parents, out._backward = parents, backward
    return out


def unbroadcast(grad: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Sum `grad` over the axes that broadcasting added or stretched, back down to `shape`.

    grad: the gradient of a broadcast result, e.g. (N, C); shape: the input's shape, e.g. (C,) or
    (1, C). Returns an array of `shape`.
    """
    extra = grad.ndim - len(shape)
    if extra < 0:
        raise ValueError(f"cannot unbroadcast a gradient of shape {grad.shape} to the larger shape {shape}")
    grad = grad.sum(axis=tuple(range(extra)))  # the leading axes broadcasting added
    stretched = tuple(axis for axis, size in enumerate(shape) if size == 1 and grad.shape[axis] != 1)
    return grad.sum(axis=stretched, keepdims=True)  # the length-1 axes it stretched


def _spread(grad: np.ndarray, shape: tuple[int, ...], axis: object, keepdims: bool) -> np.ndarray:
    """Broadcast the gradient of a reduction back over the elements that were reduced."""
    if axis is not None and not keepdims:
        grad = np.expand_dims(grad, axis)  # put the reduced axes back, with length 1
    return np.broadcast_to(grad, shape)


def _check_matmul(a_shape: tuple[int, ...], b_shape: tuple[int, ...]) -> None:
    if not (1 <= len(a_shape) <= 2 and 1 <= len(b_shape) <= 2):
        raise ValueError(f"@ takes matrices or vectors (1 or 2 dimensions), got shapes {a_shape} @ {b_shape}")
    if a_shape[-1] != b_shape[0]:
        raise ValueError(
            f"@ needs the inner dimensions to match: {a_shape} @ {b_shape} has {a_shape[-1]} != {b_shape[0]}"
        )


def topological_order(root: Tensor) -> list[Tensor]:
    """Every tensor in the graph below `root` (root included), each after all of its parents.

    An explicit stack instead of recursion, so that a graph thousands of operations deep does not
    hit Python's recursion limit.
    """
    order, visited, stack = [], set(), [(root, False)]
    while stack:
        node, parents_done = stack.pop()
        if parents_done:
            order.append(node)
        elif id(node) not in visited:
            visited.add(id(node))
            stack.append((node, True))  # comes back once every parent below it is in `order`
            stack.extend((parent, False) for parent in node.parents if id(parent) not in visited)
    return order


def graph_nbytes(root: Tensor) -> int:
    """Bytes of all the arrays the graph below `root` holds: inputs, parameters and every
    intermediate result, root included.

    The graph keeps every intermediate result alive until backward() has run, which is the
    activation memory of backpropagation: it grows with the batch size and the depth. (A leaner
    engine would free the results no backward rule reads, such as the product before a bias.)
    (Each tensor's `data` is counted once; no operation here keeps any other array of its own,
    except the integer targets of `cross_entropy`, which are not counted.)
    """
    if not isinstance(root, Tensor):
        raise TypeError(f"graph_nbytes needs a Tensor, got {type(root).__name__}")
    return sum(node.data.nbytes for node in topological_order(root))


# ---- softmax and the cross-entropy loss -------------------------------------------------------


def _log_softmax(z: np.ndarray, axis: int) -> np.ndarray:
    # log softmax is unchanged by a shift; shifting the largest entry to 0 keeps exp() from overflowing.
    shifted = z - z.max(axis=axis, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))


def softmax(x: Tensor, axis: int = -1) -> Tensor:
    """s = exp(x) / sum(exp(x)) along `axis`, computed stably."""
    x = _lift(x, np.float64)
    s = np.exp(_log_softmax(x.data, axis))

    def backward(grad):  # ds_i/dx_j = s_i (1[i = j] - s_j), so dL/dx = s * (grad - sum(grad * s))
        return (s * (grad - (grad * s).sum(axis=axis, keepdims=True)),)

    return _result(s, (x,), "softmax", backward)


def log_softmax(x: Tensor, axis: int = -1) -> Tensor:
    """log softmax(x) = x - max - log(sum(exp(x - max))) along `axis`: no overflow for any finite x."""
    x = _lift(x, np.float64)
    y = _log_softmax(x.data, axis)

    def backward(grad):  # d(log s_i)/dx_j = 1[i = j] - s_j, so dL/dx = grad - s * sum(grad)
        return (grad - np.exp(y) * grad.sum(axis=axis, keepdims=True),)

    return _result(y, (x,), "log_softmax", backward)


def require_targets(targets: object, n: int, n_classes: int) -> np.ndarray:
    """Require class labels: an integer array of shape (N,) with values in [0, n_classes)."""
    if not isinstance(targets, np.ndarray) or not np.issubdtype(targets.dtype, np.integer):
        got = f"dtype {targets.dtype}" if isinstance(targets, np.ndarray) else type(targets).__name__
        raise TypeError(f"targets must be an integer NumPy array of class indices, got {got}")
    if targets.shape != (n,):
        raise ValueError(
            f"targets must have one class index per row of logits, expected shape ({n},), got {targets.shape}"
        )
    if n > 0 and (targets.min() < 0 or targets.max() >= n_classes):
        raise ValueError(
            f"targets must lie in [0, {n_classes}) for {n_classes} classes, got values from "
            f"{targets.min()} to {targets.max()}"
        )
    return targets


def cross_entropy(logits: Tensor, targets: np.ndarray) -> Tensor:
    """The mean cross-entropy loss -mean_n log softmax(logits_n)[targets_n].

    logits: (N, C) float Tensor of class scores; targets: (N,) integer array, values in [0, C).
    Returns a scalar Tensor, equal to `torch.nn.functional.cross_entropy(logits, targets)`.
    Computed through a stable log-softmax, so logits of +-1000 give a finite loss. The backward
    rule is the fused result of softmax and log: dL/dlogits = (softmax(logits) - onehot(targets)) / N.
    """
    logits = _lift(logits, np.float64)
    if logits.ndim != 2:
        raise ValueError(f"logits must have shape (N, C), got shape {logits.shape}")
    n, n_classes = logits.shape
    if n == 0:
        raise ValueError("logits must hold at least one row, got shape (0, C)")
    targets = require_targets(targets, n, n_classes)
    z, rows = logits.data, np.arange(n)
    loss = -_log_softmax(z, axis=1)[rows, targets].mean()

    def backward(grad):
        # The softmax is recomputed from the logits rather than kept, so the graph holds only the logits.
        probs = np.exp(_log_softmax(z, axis=1))  # (N, C)
        probs[rows, targets] -= 1  # softmax - onehot
        return (grad * probs / n,)

    return _result(loss, (logits,), "cross_entropy", backward)
