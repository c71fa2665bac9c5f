"""PyTorch twins of `dlbook.np.linear`; the gradient comes from autograd instead of by hand."""

from __future__ import annotations

import numpy as np
import torch

from dlbook.data import minibatch_indices
from dlbook.torch.optim import Optimizer
from dlbook.torch.schedules import Schedule


def predict(X: torch.Tensor, w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """y_hat = X w + b.  X: (N, D), w: (D,), b: () -> y_hat: (N,)."""
    return X @ w + b


def mse_loss(X: torch.Tensor, y: torch.Tensor, w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """L = mean((X w + b - y)^2) / 2, a scalar tensor."""
    return 0.5 * torch.mean((X @ w + b - y) ** 2)


def least_squares(X: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The exact least-squares (w, b), by `torch.linalg.lstsq` on [X 1]."""
    design = torch.cat([X, torch.ones(X.shape[0], 1, dtype=X.dtype, device=X.device)], dim=1)  # (N, D + 1)
    solution = torch.linalg.lstsq(design, y.unsqueeze(1)).solution.squeeze(1)
    return solution[:-1], solution[-1]


def fit(
    X: torch.Tensor,
    y: torch.Tensor,
    optimizer: Optimizer,
    batch_size: int,
    epochs: int,
    rng: np.random.Generator,
    schedule: Schedule | None = None,
) -> tuple[tuple[torch.Tensor, torch.Tensor], np.ndarray]:
    """Train (w, b) from zeros with `torch.optim`, batches drawn exactly as `dlbook.np.linear.fit`
    draws them from `rng`, so that the twins can be compared step for step."""
    w = torch.zeros(X.shape[1], dtype=X.dtype, device=X.device, requires_grad=True)
    b = torch.zeros((), dtype=X.dtype, device=X.device, requires_grad=True)
    torch_optimizer = optimizer.build([w, b])
    scheduler = None if schedule is None else schedule.build(torch_optimizer)
    losses = []
    for _ in range(epochs):
        with torch.no_grad():
            losses.append(mse_loss(X, y, w, b).item())
        for batch in minibatch_indices(X.shape[0], batch_size, rng):
            batch = torch.from_numpy(batch).to(X.device)
            torch_optimizer.zero_grad()
            mse_loss(X[batch], y[batch], w, b).backward()
            torch_optimizer.step()
            if scheduler is not None:
                scheduler.step()
    with torch.no_grad():
        losses.append(mse_loss(X, y, w, b).item())
    return (w.detach(), b.detach()), np.array(losses)
