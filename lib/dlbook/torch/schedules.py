"""PyTorch twins of `dlbook.np.schedules`: the same schedules, built on `torch.optim.lr_scheduler`.

`schedule.build(optimizer)` returns the real PyTorch scheduler; call its `.step()` after each
`optimizer.step()`. `learning_rates` runs that scheduler and reads off the rates it sets.
"""

from __future__ import annotations

import torch
from torch.optim import lr_scheduler

from dlbook._validation import require_int, require_positive
from dlbook.hyperparameters import (
    CosineAnnealingLRHyperparameters,
    LinearLRHyperparameters,
    StepLRHyperparameters,
    WarmupCosineHyperparameters,
)


class StepLR(StepLRHyperparameters):
    def build(self, optimizer: torch.optim.Optimizer) -> lr_scheduler.LRScheduler:
        return lr_scheduler.StepLR(optimizer, step_size=self.step_size, gamma=self.gamma)


class CosineAnnealingLR(CosineAnnealingLRHyperparameters):
    def build(self, optimizer: torch.optim.Optimizer) -> lr_scheduler.LRScheduler:
        return lr_scheduler.CosineAnnealingLR(optimizer, T_max=self.T_max, eta_min=self.eta_min)


class LinearLR(LinearLRHyperparameters):
    def build(self, optimizer: torch.optim.Optimizer) -> lr_scheduler.LRScheduler:
        return lr_scheduler.LinearLR(
            optimizer, start_factor=self.start_factor, end_factor=self.end_factor, total_iters=self.total_iters
        )


class WarmupCosine(WarmupCosineHyperparameters):
    def build(self, optimizer: torch.optim.Optimizer) -> lr_scheduler.LRScheduler:
        warmup = lr_scheduler.LinearLR(
            optimizer, start_factor=self.start_factor, end_factor=1.0, total_iters=self.warmup_steps
        )
        cosine = lr_scheduler.CosineAnnealingLR(
            optimizer, T_max=self.total_steps - self.warmup_steps, eta_min=self.eta_min
        )
        return lr_scheduler.SequentialLR(optimizer, schedulers=[warmup, cosine], milestones=[self.warmup_steps])


Schedule = StepLR | CosineAnnealingLR | LinearLR | WarmupCosine


def learning_rates(schedule: Schedule, base_lr: float, steps: int) -> list[float]:
    """The learning rates of steps 0, 1, ..., steps - 1, as PyTorch's scheduler sets them."""
    base_lr = require_positive("base_lr", base_lr)
    steps = require_int("steps", steps)
    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=base_lr)
    scheduler = schedule.build(optimizer)
    rates = []
    for _ in range(steps):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return rates
