"""PyTorch twin of `dlbook.np.mlp`: the same names, signatures and weight layout, run by torch autograd.

The weights are drawn with NumPy, by the very function the NumPy twin uses
(`dlbook.np.mlp.init_mlp_arrays`), and only then turned into float64 torch tensors. A torch
Generator would draw other numbers for the same seed; sharing the draw means that both twins start
from identical weights, so that any difference after training comes from the engines alone.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

# The names shared by both twins (the choices and the std formula) are defined once, in the NumPy twin.
from dlbook.np.mlp import ACTIVATIONS, INITS, init_mlp_arrays, init_std
from dlbook.torch.optim import Optimizer

__all__ = [
    "ACTIVATIONS",
    "INITS",
    "accuracy",
    "cross_entropy",
    "init_mlp",
    "init_std",
    "layer_gradient_norms",
    "mlp_forward",
    "mlp_layers",
    "train_mlp",
]

_ACTIVATIONS = {"relu": torch.relu, "tanh": torch.tanh, "sigmoid": torch.sigmoid}


def init_mlp(layer_sizes: Sequence[int], init: str, rng: np.random.Generator) -> list[torch.Tensor]:
    """[W1, b1, W2, b2, ...]: W_l (fan_in, fan_out), b_l (fan_out,), float64, requires_grad=True.

    rng is a NumPy Generator, as in the NumPy twin: the same seed gives the same weights in both.
    """
    arrays = init_mlp_arrays(layer_sizes, init, rng)
    return [torch.tensor(array, dtype=torch.float64, requires_grad=True) for array in arrays]


def _as_tensor(x: np.ndarray | torch.Tensor) -> torch.Tensor:
    return x if isinstance(x, torch.Tensor) else torch.as_tensor(x)


def _as_targets(targets: np.ndarray | torch.Tensor) -> torch.Tensor:
    return _as_tensor(targets).long()


def mlp_layers(
    params: Sequence[torch.Tensor], x: np.ndarray | torch.Tensor, activation: str = "relu"
) -> list[torch.Tensor]:
    """Every layer's output: [h1, ..., h_{L-1}, logits], h_l = act(h_{l-1} @ W_l + b_l), h_0 = x (N, D)."""
    if activation not in _ACTIVATIONS:
        raise ValueError(f"activation must be one of {', '.join(map(repr, ACTIVATIONS))}, got {activation!r}")
    act = _ACTIVATIONS[activation]
    h, outputs = _as_tensor(x), []
    n_layers = len(params) // 2
    for layer in range(n_layers):
        h = h @ params[2 * layer] + params[2 * layer + 1]  # (N, fan_out)
        if layer < n_layers - 1:
            h = act(h)
        outputs.append(h)
    return outputs


def mlp_forward(params: Sequence[torch.Tensor], x: np.ndarray | torch.Tensor, activation: str = "relu") -> torch.Tensor:
    """The logits (N, C) of the MLP for inputs x (N, D)."""
    return mlp_layers(params, x, activation)[-1]


def cross_entropy(logits: torch.Tensor, targets: np.ndarray | torch.Tensor) -> torch.Tensor:
    """`torch.nn.functional.cross_entropy`: the mean over the N rows. targets: (N,) integer classes."""
    return torch.nn.functional.cross_entropy(logits, _as_targets(targets))


def accuracy(logits: torch.Tensor, targets: np.ndarray | torch.Tensor) -> float:
    """The fraction of rows whose largest logit is at the target class."""
    return (logits.detach().argmax(dim=1) == _as_targets(targets)).double().mean().item()


def layer_gradient_norms(params: Sequence[torch.Tensor]) -> list[float]:
    """The Frobenius norm of each weight matrix's gradient, first layer first (after backward())."""
    norms = []
    for i in range(0, len(params), 2):
        if params[i].grad is None:
            raise ValueError(f"params[{i}] has no gradient yet: call loss.backward() first")
        norms.append(torch.linalg.norm(params[i].grad).item())
    return norms


def train_mlp(
    params: Sequence[torch.Tensor],
    X: np.ndarray | torch.Tensor,
    y: np.ndarray | torch.Tensor,
    optimizer: Optimizer,
    steps: int,
    activation: str = "relu",
) -> list[float]:
    """Full-batch training with `optimizer.build(params)`, a `torch.optim` optimizer; params are
    trained in place. Returns the loss before each step, `steps` floats."""
    torch_optimizer = optimizer.build(params)
    X, y = _as_tensor(X), _as_targets(y)
    losses = []
    for _ in range(steps):
        torch_optimizer.zero_grad()
        loss = cross_entropy(mlp_forward(params, X, activation), y)
        loss.backward()
        torch_optimizer.step()
        losses.append(loss.item())
    return losses
