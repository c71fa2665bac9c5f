"""Hyperparameters of the optimizers and learning-rate schedules, shared by both twins.

The field names and defaults are PyTorch's own (`torch.optim.Adam(params, lr=..., betas=...)`),
so one set of values drives the NumPy optimizer in `dlbook.np.optim` and its PyTorch twin in
`dlbook.torch.optim`. Each class checks its values once, when it is created: a negative learning
rate or a beta outside [0, 1) fails here, with a message, before any step is taken.

Chapter 1, "Momentum and adaptive methods" and "Learning-rate schedules", explains every field.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from dlbook._validation import (
    require_bool,
    require_in_unit_interval,
    require_int,
    require_nonnegative,
    require_positive,
    require_real,
)


def _set_float(instance: object, name: str, check: Callable[..., float], **options: bool) -> None:
    """Validate a field of a frozen dataclass and store it as a Python float. A NumPy scalar such as
    np.float64(0.1) would otherwise promote a float32 model to float64 at its first step."""
    object.__setattr__(instance, name, check(name, getattr(instance, name), **options))


def _require_betas(betas: object) -> tuple[float, float]:
    if not isinstance(betas, tuple | list) or len(betas) != 2:
        raise TypeError(f"betas must be a pair (beta1, beta2), got {betas!r}")
    return (require_in_unit_interval("betas[0]", betas[0]), require_in_unit_interval("betas[1]", betas[1]))


@dataclass(frozen=True)
class SGDHyperparameters:
    """Stochastic gradient descent, optionally with (Nesterov) momentum and L2 weight decay."""

    lr: float = 1e-3
    momentum: float = 0.0
    dampening: float = 0.0
    weight_decay: float = 0.0
    nesterov: bool = False

    def __post_init__(self) -> None:
        _set_float(self, "lr", require_positive)
        _set_float(self, "momentum", require_in_unit_interval)
        _set_float(self, "dampening", require_in_unit_interval, include_one=True)
        _set_float(self, "weight_decay", require_nonnegative)
        require_bool("nesterov", self.nesterov)
        if self.nesterov and (self.momentum <= 0 or self.dampening != 0):
            raise ValueError(
                f"nesterov=True needs momentum > 0 and dampening = 0, "
                f"got momentum={self.momentum}, dampening={self.dampening}"
            )


@dataclass(frozen=True)
class RMSpropHyperparameters:
    """RMSProp (Tieleman and Hinton, 2012): divide by a running root-mean-square of gradients."""

    lr: float = 1e-2
    alpha: float = 0.99
    eps: float = 1e-8
    weight_decay: float = 0.0
    momentum: float = 0.0
    centered: bool = False

    def __post_init__(self) -> None:
        _set_float(self, "lr", require_positive)
        _set_float(self, "alpha", require_in_unit_interval)
        _set_float(self, "eps", require_positive)
        _set_float(self, "weight_decay", require_nonnegative)
        _set_float(self, "momentum", require_in_unit_interval)
        require_bool("centered", self.centered)


@dataclass(frozen=True)
class AdamHyperparameters:
    """Adam (Kingma and Ba, 2015); `weight_decay` is L2 regularisation added to the gradient."""

    lr: float = 1e-3
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    weight_decay: float = 0.0

    def __post_init__(self) -> None:
        _set_float(self, "lr", require_positive)
        object.__setattr__(self, "betas", _require_betas(self.betas))
        _set_float(self, "eps", require_positive)
        _set_float(self, "weight_decay", require_nonnegative)


@dataclass(frozen=True)
class AdamWHyperparameters(AdamHyperparameters):
    """AdamW (Loshchilov and Hutter, 2019): Adam with weight decay decoupled from the gradient."""

    weight_decay: float = 1e-2


@dataclass(frozen=True)
class StepLRHyperparameters:
    """Multiply the learning rate by `gamma` every `step_size` steps."""

    step_size: int
    gamma: float = 0.1

    def __post_init__(self) -> None:
        require_int("step_size", self.step_size, minimum=1)
        _set_float(self, "gamma", require_positive)


@dataclass(frozen=True)
class CosineAnnealingLRHyperparameters:
    """Half a cosine from the base learning rate down to `eta_min` over `T_max` steps."""

    T_max: int  # PyTorch's name, kept so that one set of values drives both twins
    eta_min: float = 0.0

    def __post_init__(self) -> None:
        require_int("T_max", self.T_max, minimum=1)
        _set_float(self, "eta_min", require_nonnegative)


@dataclass(frozen=True)
class LinearLRHyperparameters:
    """Scale the learning rate linearly from `start_factor` to `end_factor` over `total_iters` steps."""

    start_factor: float = 1.0 / 3
    end_factor: float = 1.0
    total_iters: int = 5

    def __post_init__(self) -> None:
        for name in ("start_factor", "end_factor"):
            value = require_real(name, getattr(self, name))
            if not 0 < value <= 1:
                raise ValueError(f"{name} must lie in (0, 1], got {value}")
        require_int("total_iters", self.total_iters, minimum=1)


@dataclass(frozen=True)
class WarmupCosineHyperparameters:
    """Linear warm-up from `start_factor` x base over `warmup_steps`, then a cosine to `eta_min`.

    The cosine lasts `total_steps - warmup_steps` steps, so the rate reaches `eta_min` at
    `total_steps`.
    """

    warmup_steps: int
    total_steps: int
    start_factor: float = 0.01
    eta_min: float = 0.0

    def __post_init__(self) -> None:
        require_int("warmup_steps", self.warmup_steps, minimum=1)
        require_int("total_steps", self.total_steps, minimum=1)
        if self.total_steps <= self.warmup_steps:
            raise ValueError(
                f"total_steps must exceed warmup_steps, got total_steps={self.total_steps}, "
                f"warmup_steps={self.warmup_steps}"
            )
        start = require_real("start_factor", self.start_factor)
        if not 0 < start <= 1:
            raise ValueError(f"start_factor must lie in (0, 1], got {start}")
        _set_float(self, "eta_min", require_nonnegative)
