"""Optimizers in NumPy, step for step the same as `torch.optim` (chapter 1).

Each optimizer is a frozen dataclass of hyperparameters with two pure methods:

    state = optimizer.init(params)
    params, state = optimizer.step(params, grads, state)

Nothing is hidden on the object and nothing is changed in place: the state (momentum buffers,
moment estimates, the step count) is a value you can print, copy and plot. `params` and `grads`
are lists of float arrays of any shapes, one gradient per parameter, as in `torch.optim`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from dlbook._validation import (
    require_float_array,
    require_int,
    require_matching,
    require_positive,
    require_state_matches,
)
from dlbook.hyperparameters import (
    AdamHyperparameters,
    AdamWHyperparameters,
    RMSpropHyperparameters,
    SGDHyperparameters,
)
from dlbook.np.schedules import Schedule
from dlbook.trajectory import Trajectory, check_finite

Params = list[np.ndarray]


def _step_lr(default: float, lr: float | None) -> float:
    return default if lr is None else require_positive("lr", lr)


@dataclass(frozen=True)
class SGDState:
    """momentum_buffers: one velocity per parameter, None before the first step."""

    momentum_buffers: tuple[np.ndarray | None, ...]


class SGD(SGDHyperparameters):
    """Gradient descent with optional momentum, Nesterov momentum and L2 weight decay.

    g = grad + weight_decay * p
    b = g on the first step, then momentum * b + (1 - dampening) * g
    d = g + momentum * b if nesterov else b      (d = g when momentum is 0)
    p = p - lr * d
    """

    def init(self, params: Sequence[np.ndarray]) -> SGDState:
        return SGDState(momentum_buffers=(None,) * len(params))

    def step(
        self, params: Sequence[np.ndarray], grads: Sequence[np.ndarray], state: SGDState, lr: float | None = None
    ) -> tuple[Params, SGDState]:
        require_matching(params, grads)
        require_state_matches(params, state.momentum_buffers, "momentum_buffers")
        lr = _step_lr(self.lr, lr)
        new_params, buffers = [], []
        for param, grad, buffer in zip(params, grads, state.momentum_buffers, strict=True):
            grad = grad + self.weight_decay * param
            if self.momentum > 0:
                buffer = grad if buffer is None else self.momentum * buffer + (1 - self.dampening) * grad
                grad = grad + self.momentum * buffer if self.nesterov else buffer
            new_params.append(np.asarray(param - lr * grad))
            buffers.append(buffer)
        return new_params, SGDState(momentum_buffers=tuple(buffers))


@dataclass(frozen=True)
class RMSpropState:
    square_avg: tuple[np.ndarray, ...]
    grad_avg: tuple[np.ndarray, ...]
    momentum_buffers: tuple[np.ndarray, ...]


class RMSprop(RMSpropHyperparameters):
    """RMSProp: divide each coordinate's step by a running root-mean-square of its gradients.

    s = alpha * s + (1 - alpha) * g**2                  (s starts at 0)
    d = sqrt(s - m**2) + eps if centered else sqrt(s) + eps,  m = running mean of g
    b = momentum * b + g / d;  p = p - lr * b           (p = p - lr * g / d when momentum is 0)
    """

    def init(self, params: Sequence[np.ndarray]) -> RMSpropState:
        zeros = tuple(np.zeros_like(param) for param in params)
        return RMSpropState(square_avg=zeros, grad_avg=zeros, momentum_buffers=zeros)

    def step(
        self, params: Sequence[np.ndarray], grads: Sequence[np.ndarray], state: RMSpropState, lr: float | None = None
    ) -> tuple[Params, RMSpropState]:
        require_matching(params, grads)
        require_state_matches(params, state.square_avg, "square_avg")
        lr = _step_lr(self.lr, lr)
        new_params, square_avgs, grad_avgs, buffers = [], [], [], []
        for param, grad, square_avg, grad_avg, buffer in zip(
            params, grads, state.square_avg, state.grad_avg, state.momentum_buffers, strict=True
        ):
            grad = grad + self.weight_decay * param
            square_avg = self.alpha * square_avg + (1 - self.alpha) * grad**2
            if self.centered:
                grad_avg = self.alpha * grad_avg + (1 - self.alpha) * grad
                denominator = np.sqrt(square_avg - grad_avg**2) + self.eps
            else:
                denominator = np.sqrt(square_avg) + self.eps
            if self.momentum > 0:
                buffer = self.momentum * buffer + grad / denominator
                param = param - lr * buffer
            else:
                param = param - lr * grad / denominator
            new_params.append(np.asarray(param))
            square_avgs.append(square_avg)
            grad_avgs.append(grad_avg)
            buffers.append(buffer)
        return new_params, RMSpropState(tuple(square_avgs), tuple(grad_avgs), tuple(buffers))


@dataclass(frozen=True)
class AdamState:
    """step: steps taken so far; exp_avg, exp_avg_sq: the first and second moment estimates."""

    step: int
    exp_avg: tuple[np.ndarray, ...]
    exp_avg_sq: tuple[np.ndarray, ...]


def _adam_update(
    param: np.ndarray, grad: np.ndarray, exp_avg: np.ndarray, exp_avg_sq: np.ndarray,
    step: int, lr: float, betas: tuple[float, float], eps: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    beta1, beta2 = betas
    exp_avg = beta1 * exp_avg + (1 - beta1) * grad
    exp_avg_sq = beta2 * exp_avg_sq + (1 - beta2) * grad**2
    # Both averages start at zero, so early on they are biased towards it; dividing by
    # 1 - beta**step removes that bias exactly for a constant gradient.
    bias_correction1 = 1 - beta1**step
    bias_correction2 = 1 - beta2**step
    denominator = np.sqrt(exp_avg_sq) / math.sqrt(bias_correction2) + eps  # a Python float keeps float32 float32
    return param - (lr / bias_correction1) * exp_avg / denominator, exp_avg, exp_avg_sq


class Adam(AdamHyperparameters):
    """Adam: momentum on the gradient, RMSProp's scaling, both corrected for their zero start.

    m = beta1 * m + (1 - beta1) * g;   v = beta2 * v + (1 - beta2) * g**2
    p = p - lr * (m / (1 - beta1**t)) / (sqrt(v / (1 - beta2**t)) + eps)
    with g = grad + weight_decay * p (L2 regularisation, as in `torch.optim.Adam`).
    """

    def init(self, params: Sequence[np.ndarray]) -> AdamState:
        zeros = tuple(np.zeros_like(param) for param in params)
        return AdamState(step=0, exp_avg=zeros, exp_avg_sq=zeros)

    def _decay(self, param: np.ndarray, grad: np.ndarray, lr: float) -> tuple[np.ndarray, np.ndarray]:
        return param, grad + self.weight_decay * param

    def step(
        self, params: Sequence[np.ndarray], grads: Sequence[np.ndarray], state: AdamState, lr: float | None = None
    ) -> tuple[Params, AdamState]:
        require_matching(params, grads)
        require_state_matches(params, state.exp_avg, "exp_avg")
        lr = _step_lr(self.lr, lr)
        step = state.step + 1
        new_params, exp_avgs, exp_avg_sqs = [], [], []
        for param, grad, exp_avg, exp_avg_sq in zip(params, grads, state.exp_avg, state.exp_avg_sq, strict=True):
            param, grad = self._decay(param, grad, lr)
            param, exp_avg, exp_avg_sq = _adam_update(
                param, grad, exp_avg, exp_avg_sq, step, lr, self.betas, self.eps
            )
            new_params.append(np.asarray(param))
            exp_avgs.append(exp_avg)
            exp_avg_sqs.append(exp_avg_sq)
        return new_params, AdamState(step, tuple(exp_avgs), tuple(exp_avg_sqs))


class AdamW(AdamWHyperparameters, Adam):
    """AdamW: Adam whose weight decay shrinks the parameters directly, p = p * (1 - lr * weight_decay),
    instead of passing through the adaptive scaling (Loshchilov and Hutter, 2019)."""

    def _decay(self, param: np.ndarray, grad: np.ndarray, lr: float) -> tuple[np.ndarray, np.ndarray]:
        return param * (1 - lr * self.weight_decay), grad


Optimizer = SGD | RMSprop | Adam | AdamW


def minimize(
    value_and_grad: Callable[[np.ndarray], tuple[float, np.ndarray]],
    x0: np.ndarray,
    optimizer: Optimizer,
    steps: int,
    schedule: Schedule | None = None,
) -> Trajectory:
    """Run `steps` optimizer steps from `x0` and record where they went.

    value_and_grad: maps a point (D,) to (loss, gradient (D,)).
    x0: (D,) float, the starting point; it is not modified.
    schedule: optional learning-rate schedule; step t uses `schedule.lr_at(t, optimizer.lr)`.
    Raises FloatingPointError if the loss overflows, as it does when the learning rate is too large.
    """
    point = require_float_array("x0", x0, ndim=1).astype(np.float64)
    steps = require_int("steps", steps)
    state = optimizer.init([point])
    points, losses, lrs = [point], [], []
    # Overflow is reported below as divergence, with its likely cause, not as NumPy warnings.
    with np.errstate(over="ignore", invalid="ignore"):
        for t in range(steps):
            loss, grad = value_and_grad(point)
            check_finite(float(loss), t, optimizer.lr)
            lr = optimizer.lr if schedule is None else schedule.lr_at(t, optimizer.lr)
            [point], state = optimizer.step([point], [np.asarray(grad, dtype=np.float64)], state, lr=lr)
            points.append(point)
            losses.append(float(loss))
            lrs.append(lr)
        losses.append(float(value_and_grad(point)[0]))
    check_finite(losses[-1], steps, optimizer.lr)
    return Trajectory(points=np.array(points), losses=np.array(losses), lrs=np.array(lrs))
