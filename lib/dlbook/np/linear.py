"""Linear regression in NumPy: predictions, the mean-squared error and its gradient, and the
closed-form least-squares answer that gradient descent should reach (chapter 1)."""

from __future__ import annotations

import numpy as np

from dlbook._validation import require_float_array, require_int
from dlbook.data import minibatch_indices
from dlbook.np.optim import Optimizer
from dlbook.np.schedules import Schedule


def _check(X: np.ndarray, y: np.ndarray | None, w: np.ndarray | None = None) -> None:
    require_float_array("X", X, ndim=2)
    if y is not None:
        require_float_array("y", y, ndim=1)
        if y.shape[0] != X.shape[0]:
            raise ValueError(f"y must have one target per row of X: X has {X.shape[0]} rows, y has {y.shape[0]}")
    if w is not None:
        require_float_array("w", w, ndim=1)
        if w.shape[0] != X.shape[1]:
            raise ValueError(f"w must have one weight per column of X: expected ({X.shape[1]},), got {w.shape}")


def predict(X: np.ndarray, w: np.ndarray, b: np.ndarray) -> np.ndarray:
    """y_hat = X w + b.  X: (N, D), w: (D,), b: () -> y_hat: (N,)."""
    _check(X, None, w)
    return X @ w + b


def mse_loss(X: np.ndarray, y: np.ndarray, w: np.ndarray, b: np.ndarray) -> float:
    """L = mean((X w + b - y)^2) / 2.  X: (N, D), y: (N,), w: (D,), b: ()."""
    _check(X, y, w)
    residual = X @ w + b - y  # (N,)
    return 0.5 * float(np.mean(residual**2))


def mse_loss_grad(X: np.ndarray, y: np.ndarray, w: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """dL/dw = X^T r / N and dL/db = mean(r), with residual r = X w + b - y.  Returns ((D,), ())."""
    _check(X, y, w)
    residual = X @ w + b - y  # (N,)
    return X.T @ residual / X.shape[0], np.asarray(residual.mean())


def least_squares(X: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The (w, b) minimising mse_loss exactly: the least-squares solution of [X 1] [w; b] = y."""
    _check(X, y)
    design = np.hstack([X, np.ones((X.shape[0], 1), dtype=X.dtype)])  # (N, D + 1)
    solution, *_ = np.linalg.lstsq(design, y, rcond=None)
    return solution[:-1], np.asarray(solution[-1])


def fit(
    X: np.ndarray,
    y: np.ndarray,
    optimizer: Optimizer,
    batch_size: int,
    epochs: int,
    rng: np.random.Generator,
    schedule: Schedule | None = None,
) -> tuple[tuple[np.ndarray, np.ndarray], np.ndarray]:
    """Train (w, b) from zeros by mini-batch gradient descent on mse_loss.

    Each epoch shuffles the N examples with `rng` and takes one optimizer step per batch; step t
    (counted over all epochs) uses `schedule.lr_at(t, optimizer.lr)` when a schedule is given.
    Returns the final (w: (D,), b: ()) and the full-data loss before training and after each
    epoch: (epochs + 1,).
    """
    _check(X, y)
    epochs = require_int("epochs", epochs)
    params = [np.zeros(X.shape[1]), np.array(0.0)]
    state, losses, step = optimizer.init(params), [mse_loss(X, y, *params)], 0
    for _ in range(epochs):
        for batch in minibatch_indices(X.shape[0], batch_size, rng):
            lr = None if schedule is None else schedule.lr_at(step, optimizer.lr)
            params, state = optimizer.step(params, list(mse_loss_grad(X[batch], y[batch], *params)), state, lr=lr)
            step += 1
        losses.append(mse_loss(X, y, *params))
    return (params[0], params[1]), np.array(losses)
