"""Learning-rate schedules as plain formulas, equal to `torch.optim.lr_scheduler` (chapter 1).

Each schedule answers one question, `lr_at(step, base_lr)`: the learning rate that step number
`step` (counting from 0) uses. PyTorch computes the same numbers by updating the optimizer's rate
in place after every step; `tests/test_schedules.py` checks that the two agree.
"""

from __future__ import annotations

import math

from dlbook._validation import require_int, require_positive
from dlbook.hyperparameters import (
    CosineAnnealingLRHyperparameters,
    LinearLRHyperparameters,
    StepLRHyperparameters,
    WarmupCosineHyperparameters,
)


def _check(step: int, base_lr: float) -> tuple[int, float]:
    return require_int("step", step), require_positive("base_lr", base_lr)


class StepLR(StepLRHyperparameters):
    """lr = base_lr * gamma ** floor(step / step_size)."""

    def lr_at(self, step: int, base_lr: float) -> float:
        step, base_lr = _check(step, base_lr)
        return base_lr * self.gamma ** (step // self.step_size)


def _cosine(step: int, period: int, base_lr: float, eta_min: float) -> float:
    return eta_min + (base_lr - eta_min) * (1 + math.cos(math.pi * step / period)) / 2


class CosineAnnealingLR(CosineAnnealingLRHyperparameters):
    """lr = eta_min + (base_lr - eta_min) * (1 + cos(pi * step / T_max)) / 2  (Loshchilov and Hutter, 2017).

    Past `T_max` the cosine rises again, as PyTorch's does; stop training at `T_max`.
    """

    def lr_at(self, step: int, base_lr: float) -> float:
        step, base_lr = _check(step, base_lr)
        return _cosine(step, self.T_max, base_lr, self.eta_min)


class LinearLR(LinearLRHyperparameters):
    """lr = base_lr * factor, the factor going linearly from start_factor to end_factor, then held."""

    def lr_at(self, step: int, base_lr: float) -> float:
        step, base_lr = _check(step, base_lr)
        progress = min(step, self.total_iters) / self.total_iters
        return base_lr * (self.start_factor + (self.end_factor - self.start_factor) * progress)


class WarmupCosine(WarmupCosineHyperparameters):
    """Linear warm-up for `warmup_steps`, then a cosine decay that reaches `eta_min` at `total_steps`.

    The shape used to train most transformers (chapter 5): the warm-up keeps the first, badly
    informed Adam steps small; the cosine anneals the noise of the late ones.
    """

    def lr_at(self, step: int, base_lr: float) -> float:
        step, base_lr = _check(step, base_lr)
        if step < self.warmup_steps:
            warmup = LinearLR(start_factor=self.start_factor, end_factor=1.0, total_iters=self.warmup_steps)
            return warmup.lr_at(step, base_lr)
        return _cosine(step - self.warmup_steps, self.total_steps - self.warmup_steps, base_lr, self.eta_min)


Schedule = StepLR | CosineAnnealingLR | LinearLR | WarmupCosine


def learning_rates(schedule: Schedule, base_lr: float, steps: int) -> list[float]:
    """The learning rates of steps 0, 1, ..., steps - 1 under `schedule`."""
    return [schedule.lr_at(step, base_lr) for step in range(require_int("steps", steps))]
