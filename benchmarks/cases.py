"""The benchmark cases: each NumPy kernel of `dlbook.np` next to its PyTorch CPU twin, on the same data.

A case's `setup` builds the inputs once, from a seeded NumPy Generator, and returns two functions of
no arguments: one forward (+ backward) pass, or one optimizer step, in NumPy and in PyTorch. Both
compute the same thing from the same numbers (tests/ proves that the twins agree), so the ratio of
their times compares the kernels alone. The shapes are those the book times in its chapters.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812 (torch's own spelling)

from dlbook.np import attention as np_attention
from dlbook.np import conv as np_conv
from dlbook.np import mlp as np_mlp
from dlbook.np import optim as np_optim
from dlbook.np import rnn as np_rnn
from dlbook.torch import mlp as torch_mlp
from dlbook.torch import optim as torch_optim
from dlbook.torch import rnn as torch_rnn

Step = Callable[[], object]
Pair = tuple[Step, Step]  # (numpy, torch)


@dataclass(frozen=True)
class Case:
    """name: the row of the table; shape: what is computed, in words; target: the largest NumPy / PyTorch
    time ratio the book aims for (None: no target); setup: rng -> (numpy function, torch function)."""

    name: str
    shape: str
    dtype: str
    setup: Callable[[np.random.Generator], Pair]
    target: float | None = None


def _normal(rng: np.random.Generator, shape: tuple[int, ...], dtype: type = np.float32) -> np.ndarray:
    return rng.normal(size=shape).astype(dtype)


def _leaf(array: np.ndarray) -> torch.Tensor:
    """A torch tensor sharing the array's memory, with requires_grad=True."""
    return torch.from_numpy(array).requires_grad_()


# ---- optimizer steps (chapter 1) ---------------------------------------------------------------

OPTIMIZER_SHAPES = ((256, 256), (256,), (256, 128), (128,))  # 98,688 entries: two dense layers


def _numpy_steps(optimizer: np_optim.Optimizer, params: list[np.ndarray], grads: list[np.ndarray]) -> Step:
    """One NumPy step per call; the new parameters and state replace the old, as torch updates in place."""
    state = optimizer.init(params)

    def step() -> None:
        nonlocal params, state
        params, state = optimizer.step(params, grads, state)

    return step


def _torch_steps(optimizer: torch_optim.Optimizer, params: list[np.ndarray], grads: list[np.ndarray]) -> Step:
    """`torch.optim`'s step() with these hyperparameters, on copies of the parameters and fixed gradients."""
    tensors = [torch.tensor(param, requires_grad=True) for param in params]
    for tensor, grad in zip(tensors, grads, strict=True):
        tensor.grad = torch.tensor(grad)
    return optimizer.build(tensors).step


def _optimizer_pair(numpy_optimizer: np_optim.Optimizer, torch_optimizer: torch_optim.Optimizer) -> Callable:
    def setup(rng: np.random.Generator) -> Pair:
        params = [_normal(rng, shape) for shape in OPTIMIZER_SHAPES]
        grads = [_normal(rng, shape) for shape in OPTIMIZER_SHAPES]
        return _numpy_steps(numpy_optimizer, params, grads), _torch_steps(torch_optimizer, params, grads)

    return setup


# ---- MLP on chapter 2's Tensor engine ------------------------------------------------------------

MLP_SIZES = [2, 64, 64, 3]
MLP_POINTS = 300


def _mlp(rng: np.random.Generator) -> Pair:
    X, y = rng.normal(size=(MLP_POINTS, MLP_SIZES[0])), rng.integers(0, MLP_SIZES[-1], MLP_POINTS)
    params = np_mlp.init_mlp(MLP_SIZES, "he", np.random.default_rng(1))
    torch_params = torch_mlp.init_mlp(MLP_SIZES, "he", np.random.default_rng(1))  # the same weights
    X_t, y_t = torch.from_numpy(X), torch.from_numpy(y)

    def numpy_mlp() -> None:
        for param in params:
            param.grad = None
        np_mlp.cross_entropy(np_mlp.mlp_forward(params, X), y).backward()

    def torch_mlp_step() -> tuple[torch.Tensor, ...]:
        loss = torch_mlp.cross_entropy(torch_mlp.mlp_forward(torch_params, X_t), y_t)
        return torch.autograd.grad(loss, torch_params)

    return numpy_mlp, torch_mlp_step


# ---- convolution and pooling (chapter 3) --------------------------------------------------------


def _conv2d(rng: np.random.Generator) -> Pair:
    x, weight = _normal(rng, (32, 16, 16, 16)), _normal(rng, (32, 16, 3, 3))
    bias, dout = _normal(rng, (32,)), _normal(rng, (32, 32, 16, 16))
    x_t, weight_t, bias_t = _leaf(x), _leaf(weight), _leaf(bias)
    dout_t = torch.from_numpy(dout)

    def numpy_conv() -> object:
        _, cache = np_conv.conv2d(x, weight, bias, padding=1)
        return np_conv.conv2d_backward(dout, cache)

    def torch_conv() -> object:
        out = F.conv2d(x_t, weight_t, bias_t, padding=1)
        return torch.autograd.grad(out, (x_t, weight_t, bias_t), dout_t)

    return numpy_conv, torch_conv


def _pooling(kind: str) -> Callable[[np.random.Generator], Pair]:
    numpy_forward, numpy_backward = {
        "max": (np_conv.max_pool2d, np_conv.max_pool2d_backward),
        "avg": (np_conv.avg_pool2d, np_conv.avg_pool2d_backward),
    }[kind]
    torch_forward = {"max": F.max_pool2d, "avg": F.avg_pool2d}[kind]

    def setup(rng: np.random.Generator) -> Pair:
        x, dout = _normal(rng, (32, 32, 16, 16)), _normal(rng, (32, 32, 8, 8))
        x_t, dout_t = _leaf(x), torch.from_numpy(dout)

        def numpy_pool() -> object:
            _, cache = numpy_forward(x, 2)
            return numpy_backward(dout, cache)

        def torch_pool() -> object:
            return torch.autograd.grad(torch_forward(x_t, 2), x_t, dout_t)

        return numpy_pool, torch_pool

    return setup


# ---- LSTM (chapter 4) ----------------------------------------------------------------------------


def _lstm(rng: np.random.Generator) -> Pair:
    steps, batch, n_in, hidden = 32, 32, 64, 128
    params = np_rnn.init_params("lstm", n_in, hidden, rng, dtype=np.float32)
    x, dout = _normal(rng, (steps, batch, n_in)), _normal(rng, (steps, batch, hidden))
    module = torch_rnn.to_torch(params, "lstm")  # a torch.nn.LSTM holding the same weights
    x_t, dout_t = _leaf(x), torch.from_numpy(dout)

    def numpy_lstm() -> object:
        _, _, cache = np_rnn.lstm(x, None, params)
        return np_rnn.lstm_backward(dout, None, cache)

    def torch_lstm() -> object:
        out, _ = module(x_t)
        return torch.autograd.grad(out, [x_t, *module.parameters()], dout_t)

    return numpy_lstm, torch_lstm


# ---- attention and layer norm (chapter 5) --------------------------------------------------------


def _attention(is_causal: bool) -> Callable[[np.random.Generator], Pair]:
    def setup(rng: np.random.Generator) -> Pair:
        q, k, v, dout = (_normal(rng, (8, 4, 128, 32)) for _ in range(4))  # (N, heads, L, d)
        q_t, k_t, v_t, dout_t = _leaf(q), _leaf(k), _leaf(v), torch.from_numpy(dout)

        def numpy_attention() -> object:
            _, cache = np_attention.scaled_dot_product_attention(q, k, v, is_causal=is_causal)
            return np_attention.scaled_dot_product_attention_backward(dout, cache)

        def torch_attention() -> object:
            out = F.scaled_dot_product_attention(q_t, k_t, v_t, is_causal=is_causal)
            return torch.autograd.grad(out, (q_t, k_t, v_t), dout_t)

        return numpy_attention, torch_attention

    return setup


def _layer_norm(rng: np.random.Generator) -> Pair:
    x, dout = _normal(rng, (8, 128, 128)), _normal(rng, (8, 128, 128))
    weight, bias = 1 + 0.1 * _normal(rng, (128,)), 0.1 * _normal(rng, (128,))
    x_t, weight_t, bias_t, dout_t = _leaf(x), _leaf(weight), _leaf(bias), torch.from_numpy(dout)

    def numpy_layer_norm() -> object:
        _, cache = np_attention.layer_norm(x, weight, bias)
        return np_attention.layer_norm_backward(dout, cache)

    def torch_layer_norm() -> object:
        out = F.layer_norm(x_t, x_t.shape[-1:], weight_t, bias_t)
        return torch.autograd.grad(out, (x_t, weight_t, bias_t), dout_t)

    return numpy_layer_norm, torch_layer_norm


# ---- the table -----------------------------------------------------------------------------------

CASES: tuple[Case, ...] = (
    Case(
        "adam step",
        "4 params, 98,688 entries",
        "float32",
        _optimizer_pair(np_optim.Adam(lr=1e-3), torch_optim.Adam(lr=1e-3)),
    ),
    Case(
        "sgd momentum step",
        "4 params, 98,688 entries",
        "float32",
        _optimizer_pair(np_optim.SGD(lr=1e-2, momentum=0.9), torch_optim.SGD(lr=1e-2, momentum=0.9)),
    ),
    Case("mlp fwd+bwd", "[2, 64, 64, 3], 300 points", "float64", _mlp),
    Case("conv2d fwd+bwd", "N32 C16 16x16, F32 3x3, pad 1", "float32", _conv2d, target=3.0),
    Case("max_pool2d fwd+bwd", "N32 C32 16x16, kernel 2", "float32", _pooling("max")),
    Case("avg_pool2d fwd+bwd", "N32 C32 16x16, kernel 2", "float32", _pooling("avg")),
    Case("lstm fwd+bwd", "T32 N32 D64 H128", "float32", _lstm, target=3.0),
    Case("attention fwd+bwd", "N8 heads4 L128 d32", "float32", _attention(is_causal=False), target=1.5),
    Case("causal attention fwd+bwd", "N8 heads4 L128 d32", "float32", _attention(is_causal=True), target=1.5),
    Case("layer_norm fwd+bwd", "(8, 128, 128), over 128", "float32", _layer_norm),
)
