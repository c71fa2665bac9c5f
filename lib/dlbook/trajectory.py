"""The record of an optimisation run, returned by both twins' `minimize`."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Trajectory:
    """Where an optimiser went.

    points: (S + 1, D) float64, the parameters before the first step and after each of S steps.
    losses: (S + 1,) float64, the loss at each of those points.
    lrs:    (S,) float64, the learning rate used by each step.
    """

    points: np.ndarray
    losses: np.ndarray
    lrs: np.ndarray

    @property
    def final(self) -> np.ndarray:
        """The parameters after the last step: (D,)."""
        return self.points[-1]


def check_finite(loss: float, step: int, lr: float) -> None:
    """Stop a run whose loss has overflowed, with the likely cause, instead of plotting NaNs."""
    if not np.isfinite(loss):
        raise FloatingPointError(
            f"the loss became {loss} at step {step}: the run diverged. The learning rate lr={lr} "
            f"is probably too large for this function; try a smaller one (chapter 1, section 1.1)."
        )
