"""PyTorch twins of `dlbook.np.optim`: the same hyperparameters, run by `torch.optim` itself.

`dlbook.np.optim.Adam(lr=0.1)` steps in NumPy; `dlbook.torch.optim.Adam(lr=0.1).build(params)`
returns `torch.optim.Adam(params, lr=0.1)`. Because the field names are PyTorch's, the values pass
through unchanged, and `tests/test_optim.py` can hold the two to the same trajectory.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable

import numpy as np
import torch

from dlbook._validation import require_float_array, require_int
from dlbook.hyperparameters import (
    AdamHyperparameters,
    AdamWHyperparameters,
    RMSpropHyperparameters,
    SGDHyperparameters,
)
from dlbook.torch.schedules import Schedule
from dlbook.trajectory import Trajectory, check_finite


class _Buildable:
    def build(self, params: Iterable[torch.Tensor]) -> torch.optim.Optimizer:
        """The `torch.optim` optimizer of the same name, with these hyperparameters."""
        optimizer_class = getattr(torch.optim, type(self).__name__)
        return optimizer_class(params, **dataclasses.asdict(self))


class SGD(SGDHyperparameters, _Buildable):
    pass


class RMSprop(RMSpropHyperparameters, _Buildable):
    pass


class Adam(AdamHyperparameters, _Buildable):
    pass


class AdamW(AdamWHyperparameters, _Buildable):
    pass


Optimizer = SGD | RMSprop | Adam | AdamW


def minimize(
    loss_fn: Callable[[torch.Tensor], torch.Tensor],
    x0: np.ndarray,
    optimizer: Optimizer,
    steps: int,
    schedule: Schedule | None = None,
) -> Trajectory:
    """Run `steps` steps of the `torch.optim` optimizer from `x0`, gradients by autograd.

    loss_fn: maps a point, a float64 tensor (D,), to a scalar loss tensor.
    x0: (D,) float NumPy array, the starting point; it is not modified.
    schedule: optional learning-rate schedule, stepped after every optimizer step.
    Raises FloatingPointError if the loss overflows, as it does when the learning rate is too large.
    """
    require_float_array("x0", x0, ndim=1)
    steps = require_int("steps", steps)
    point = torch.tensor(x0, dtype=torch.float64, requires_grad=True)
    torch_optimizer = optimizer.build([point])
    scheduler = None if schedule is None else schedule.build(torch_optimizer)
    points, losses, lrs = [x0.astype(np.float64)], [], []
    for _ in range(steps):
        torch_optimizer.zero_grad()
        loss = loss_fn(point)
        check_finite(loss.item(), len(lrs), optimizer.lr)
        loss.backward()
        lrs.append(torch_optimizer.param_groups[0]["lr"])
        torch_optimizer.step()
        if scheduler is not None:
            scheduler.step()
        points.append(point.detach().numpy().copy())
        losses.append(loss.item())
    with torch.no_grad():
        losses.append(loss_fn(point).item())
    check_finite(losses[-1], steps, optimizer.lr)
    return Trajectory(points=np.array(points), losses=np.array(losses), lrs=np.array(lrs))
