"""A multilayer perceptron on the `dlbook.np.tensor` engine: initialisation, forward pass, loss and
full-batch training (chapter 2, "Backpropagation").

The parameters are a flat list [W1, b1, W2, b2, ...] with W_l of shape (fan_in, fan_out) and b_l of
shape (fan_out,), so a layer is h @ W + b. (`torch.nn.Linear` stores the transpose, (fan_out,
fan_in); the twin in `dlbook.torch.mlp` uses this module's layout.)
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import numpy as np

from dlbook._validation import require_float_array, require_int
from dlbook.np.optim import Optimizer
from dlbook.np.tensor import Tensor, cross_entropy, require_targets

__all__ = [
    "ACTIVATIONS",
    "INITS",
    "accuracy",
    "cross_entropy",
    "init_mlp",
    "init_mlp_arrays",
    "init_std",
    "layer_gradient_norms",
    "mlp_forward",
    "mlp_layers",
    "train_mlp",
]

INITS = ("naive", "small", "xavier", "he")
ACTIVATIONS = ("relu", "tanh", "sigmoid")


def _require_choice(name: str, value: object, options: tuple[str, ...]) -> str:
    if value not in options:
        listed = ", ".join(repr(option) for option in options)
        raise ValueError(f"{name} must be one of {listed}, got {value!r}")
    return value


def init_std(init: str, fan_in: int, fan_out: int) -> float:
    """The standard deviation of the normal draw for a (fan_in, fan_out) weight matrix.

    "naive": 1, plain N(0, 1); activations grow by about sqrt(fan_in) per layer.
    "small": 0.01; activations shrink by about 0.01 sqrt(fan_in) per layer.
    "xavier": sqrt(2 / (fan_in + fan_out)), Glorot and Bengio (2010), for tanh.
    "he": sqrt(2 / fan_in), He et al. (2015), for ReLU, which zeroes half of its inputs.
    """
    init = _require_choice("init", init, INITS)
    return {
        "naive": 1.0,
        "small": 0.01,
        "xavier": math.sqrt(2 / (fan_in + fan_out)),
        "he": math.sqrt(2 / fan_in),
    }[init]


def init_mlp_arrays(layer_sizes: Sequence[int], init: str, rng: np.random.Generator) -> list[np.ndarray]:
    """[W1, b1, W2, b2, ...] as float64 NumPy arrays: W_l ~ N(0, init_std^2), (fan_in, fan_out); b_l = 0.

    layer_sizes: [D, H1, ..., C], the input width, the hidden widths and the number of classes.
    The weights are drawn from `rng` layer by layer, so a seed fixes them; both twins start here.
    """
    if isinstance(layer_sizes, str | bytes) or not isinstance(layer_sizes, Sequence) or len(layer_sizes) < 2:
        raise ValueError(f"layer_sizes must be a sequence of at least 2 widths [D, ..., C], got {layer_sizes!r}")
    sizes = [require_int(f"layer_sizes[{i}]", size, minimum=1) for i, size in enumerate(layer_sizes)]
    _require_choice("init", init, INITS)
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a np.random.Generator, e.g. np.random.default_rng(0), got {type(rng).__name__}")
    arrays = []
    for fan_in, fan_out in itertools.pairwise(sizes):
        arrays.append(rng.normal(0.0, init_std(init, fan_in, fan_out), size=(fan_in, fan_out)))
        arrays.append(np.zeros(fan_out))
    return arrays


def init_mlp(layer_sizes: Sequence[int], init: str, rng: np.random.Generator) -> list[Tensor]:
    """[W1, b1, W2, b2, ...] as Tensors with requires_grad=True; see `init_mlp_arrays`.

    init: "naive" | "small" | "xavier" | "he" (see `init_std`).
    """
    return [Tensor(array, requires_grad=True) for array in init_mlp_arrays(layer_sizes, init, rng)]


def _activation(name: str):
    _require_choice("activation", name, ACTIVATIONS)
    return {"relu": Tensor.relu, "tanh": Tensor.tanh, "sigmoid": Tensor.sigmoid}[name]


def _check_params(params: Sequence[Tensor]) -> None:
    if len(params) < 2 or len(params) % 2:
        raise ValueError(f"params must be [W1, b1, W2, b2, ...], an even number of tensors, got {len(params)}")
    for i in range(0, len(params), 2):
        W, b = params[i], params[i + 1]
        if W.ndim != 2 or b.shape != (W.shape[1],):
            raise ValueError(
                f"params[{i}] must be a weight matrix (fan_in, fan_out) and params[{i + 1}] its bias (fan_out,), "
                f"got shapes {W.shape} and {b.shape}"
            )
        if i and params[i - 2].shape[1] != W.shape[0]:
            raise ValueError(
                f"params[{i}] must take the {params[i - 2].shape[1]} outputs of the layer before, "
                f"expected shape ({params[i - 2].shape[1]}, ...), got {W.shape}"
            )


def mlp_layers(params: Sequence[Tensor], x: np.ndarray | Tensor, activation: str = "relu") -> list[Tensor]:
    """Every layer's output: [h1, ..., h_{L-1}, logits], h_l = act(h_{l-1} @ W_l + b_l), h_0 = x.

    params: [W1, b1, ...] as made by init_mlp; x: (N, D) float array or Tensor.
    activation: "relu" | "tanh" | "sigmoid", applied after every layer but the last.
    Returns L tensors: the hidden activations (N, H_l) after the nonlinearity, then the logits (N, C).
    """
    act = _activation(activation)
    _check_params(params)
    h = x if isinstance(x, Tensor) else Tensor(require_float_array("x", x, ndim=2))
    if h.ndim != 2 or h.shape[1] != params[0].shape[0]:
        raise ValueError(
            f"x must have shape (N, {params[0].shape[0]}) to match the first weight matrix {params[0].shape}, "
            f"got shape {h.shape}"
        )
    outputs = []
    n_layers = len(params) // 2
    for layer in range(n_layers):
        W, b = params[2 * layer], params[2 * layer + 1]
        h = h @ W + b  # (N, fan_out)
        if layer < n_layers - 1:
            h = act(h)
        outputs.append(h)
    return outputs


def mlp_forward(params: Sequence[Tensor], x: np.ndarray | Tensor, activation: str = "relu") -> Tensor:
    """The logits (N, C) of the MLP for inputs x (N, D): the last entry of mlp_layers."""
    return mlp_layers(params, x, activation)[-1]


def accuracy(logits: Tensor | np.ndarray, targets: np.ndarray) -> float:
    """The fraction of rows whose largest logit is at the target class. logits: (N, C); targets: (N,) int."""
    scores = np.asarray(logits)
    if scores.ndim != 2:
        raise ValueError(f"logits must have shape (N, C), got shape {scores.shape}")
    targets = require_targets(targets, scores.shape[0], scores.shape[1])
    return float(np.mean(scores.argmax(axis=1) == targets))


def layer_gradient_norms(params: Sequence[Tensor]) -> list[float]:
    """The Frobenius norm ||dL/dW_l|| of each weight matrix's gradient, first layer first.

    Call after loss.backward(). Norms that shrink (or grow) layer by layer towards the input are
    the vanishing (or exploding) gradients of a deep network.
    """
    _check_params(params)
    norms = []
    for i in range(0, len(params), 2):
        if params[i].grad is None:
            raise ValueError(f"params[{i}] has no gradient yet: call loss.backward() first")
        norms.append(float(np.linalg.norm(params[i].grad)))
    return norms


def train_mlp(
    params: Sequence[Tensor],
    X: np.ndarray,
    y: np.ndarray,
    optimizer: Optimizer,
    steps: int,
    activation: str = "relu",
) -> list[float]:
    """Full-batch training: `steps` optimizer steps on the mean cross-entropy of the whole data set.

    params: [W1, b1, ...] from init_mlp; trained in place (each step writes the optimizer's new
        arrays into the tensors' .data), as a torch optimizer does.
    X: (N, D) float inputs; y: (N,) integer classes; optimizer: a `dlbook.np.optim` optimizer,
        e.g. `Adam(lr=0.01)`.
    Returns the loss before each step, `steps` floats.
    """
    steps = require_int("steps", steps)
    state = optimizer.init([p.data for p in params])
    losses = []
    for _ in range(steps):
        for p in params:
            p.grad = None
        loss = cross_entropy(mlp_forward(params, X, activation), y)
        loss.backward()
        new_arrays, state = optimizer.step([p.data for p in params], [p.grad for p in params], state)
        for p, array in zip(params, new_arrays, strict=True):
            p.data = array
        losses.append(loss.item())
    return losses
