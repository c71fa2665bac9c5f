"""The closed-form schedules of `dlbook.np.schedules` equal the rates `torch.optim.lr_scheduler` sets."""

from __future__ import annotations

import math

import numpy as np
import pytest

from dlbook.np import schedules as np_schedules
from dlbook.torch import schedules as torch_schedules

# NumPy evaluates each rate from its formula; torch updates the rate recursively, step after step,
# so the two drift apart by a few ulps per step: 300 steps stay far inside rtol 1e-12. The atol
# (relative to base_lr) only covers rates that should be exactly zero, such as eta_min = 0 at T_max.
RTOL = 1e-12
ATOL_PER_BASE_LR = 1e-14
STEPS = 300

CASES = [
    ("StepLR", dict(step_size=30)),
    ("StepLR", dict(step_size=7, gamma=0.5)),
    ("StepLR", dict(step_size=1, gamma=0.97)),
    ("StepLR", dict(step_size=1000, gamma=0.1)),
    ("CosineAnnealingLR", dict(T_max=300)),
    ("CosineAnnealingLR", dict(T_max=100, eta_min=1e-5)),
    ("CosineAnnealingLR", dict(T_max=37)),
    ("CosineAnnealingLR", dict(T_max=1)),
    ("LinearLR", dict()),
    ("LinearLR", dict(start_factor=0.1, end_factor=0.5, total_iters=50)),
    ("LinearLR", dict(start_factor=1.0, end_factor=0.25, total_iters=300)),
    ("LinearLR", dict(start_factor=0.5, total_iters=1)),
    ("WarmupCosine", dict(warmup_steps=10, total_steps=300)),
    ("WarmupCosine", dict(warmup_steps=50, total_steps=200, start_factor=0.1, eta_min=1e-5)),
    ("WarmupCosine", dict(warmup_steps=1, total_steps=2)),
    ("WarmupCosine", dict(warmup_steps=299, total_steps=300, start_factor=1.0)),
]


def case_id(case: tuple[str, dict]) -> str:
    name, kwargs = case
    return f"{name}({', '.join(f'{k}={v}' for k, v in kwargs.items())})"


@pytest.mark.parametrize("base_lr", [0.1, 3e-4])
@pytest.mark.parametrize("case", CASES, ids=[case_id(case) for case in CASES])
def test_numpy_schedule_equals_torch_scheduler_for_300_steps(case, base_lr):
    name, kwargs = case
    ours = np_schedules.learning_rates(getattr(np_schedules, name)(**kwargs), base_lr, STEPS)
    theirs = torch_schedules.learning_rates(getattr(torch_schedules, name)(**kwargs), base_lr, STEPS)
    assert len(ours) == len(theirs) == STEPS
    np.testing.assert_allclose(ours, theirs, rtol=RTOL, atol=ATOL_PER_BASE_LR * base_lr)


def test_comparison_detects_a_cosine_with_an_off_by_one_step():
    # Negative control: the same comparison fails for a schedule shifted by one step.
    schedule = np_schedules.CosineAnnealingLR(T_max=100)
    shifted = [schedule.lr_at(step + 1, 0.1) for step in range(STEPS)]
    theirs = torch_schedules.learning_rates(torch_schedules.CosineAnnealingLR(T_max=100), 0.1, STEPS)
    assert not np.allclose(shifted, theirs, rtol=RTOL, atol=ATOL_PER_BASE_LR * 0.1)


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(warmup_steps=10, total_steps=100),
        dict(warmup_steps=25, total_steps=60, start_factor=0.2, eta_min=1e-4),
        dict(warmup_steps=1, total_steps=3, start_factor=0.5, eta_min=0.01),
    ],
)
def test_warmup_cosine_rises_from_start_factor_peaks_at_warmup_steps_and_ends_at_eta_min(kwargs):
    base_lr = 0.5
    schedule = np_schedules.WarmupCosine(**kwargs)
    warmup, total = kwargs["warmup_steps"], kwargs["total_steps"]
    eta_min = kwargs.get("eta_min", 0.0)
    rates = np.array([schedule.lr_at(step, base_lr) for step in range(total + 1)])
    assert rates[0] == pytest.approx(kwargs.get("start_factor", 0.01) * base_lr, rel=1e-15)
    assert rates[warmup] == pytest.approx(base_lr, rel=1e-15)
    assert np.argmax(rates) == warmup
    assert rates[total] == pytest.approx(eta_min, rel=1e-12, abs=1e-15)
    assert np.all(np.diff(rates[: warmup + 1]) > 0)  # a linear warm-up: equal increments
    np.testing.assert_allclose(np.diff(rates[: warmup + 1]), (rates[warmup] - rates[0]) / warmup, rtol=1e-9)
    assert np.all(np.diff(rates[warmup:]) < 0)  # then a strictly falling cosine
    midpoint = (warmup + total) / 2
    if midpoint == int(midpoint):
        assert rates[int(midpoint)] == pytest.approx((base_lr + eta_min) / 2, rel=1e-12)


def test_step_lr_multiplies_by_gamma_every_step_size_steps():
    schedule = np_schedules.StepLR(step_size=3, gamma=0.5)
    rates = np_schedules.learning_rates(schedule, 1.0, 10)
    assert rates == [1.0, 1.0, 1.0, 0.5, 0.5, 0.5, 0.25, 0.25, 0.25, 0.125]


def test_cosine_annealing_starts_at_base_lr_and_reaches_eta_min_at_t_max():
    schedule = np_schedules.CosineAnnealingLR(T_max=20, eta_min=0.01)
    assert schedule.lr_at(0, 0.5) == 0.5
    assert schedule.lr_at(10, 0.5) == pytest.approx(0.255, rel=1e-14)
    assert schedule.lr_at(20, 0.5) == pytest.approx(0.01, rel=1e-14)
    assert schedule.lr_at(20 + 7, 0.5) == pytest.approx(0.01 + 0.49 * (1 - math.cos(math.pi * 7 / 20)) / 2)


def test_linear_lr_goes_from_start_to_end_factor_then_holds():
    schedule = np_schedules.LinearLR(start_factor=0.25, end_factor=0.75, total_iters=4)
    rates = np_schedules.learning_rates(schedule, 2.0, 7)
    np.testing.assert_allclose(rates, [0.5, 0.75, 1.0, 1.25, 1.5, 1.5, 1.5], rtol=1e-15)


def test_learning_rates_of_zero_steps_is_empty():
    assert np_schedules.learning_rates(np_schedules.StepLR(step_size=2), 0.1, 0) == []
    assert torch_schedules.learning_rates(torch_schedules.StepLR(step_size=2), 0.1, 0) == []


BOTH_TWINS = pytest.mark.parametrize("module", [np_schedules, torch_schedules], ids=["numpy", "torch"])


@BOTH_TWINS
@pytest.mark.parametrize(
    ("name", "kwargs", "error", "message"),
    [
        ("CosineAnnealingLR", dict(T_max=0), ValueError, r"T_max must be >= 1, got 0"),
        ("CosineAnnealingLR", dict(T_max=10.0), TypeError, r"T_max must be an integer, got float 10\.0"),
        ("CosineAnnealingLR", dict(T_max=10, eta_min=-1e-3), ValueError, r"eta_min must be >= 0, got -0\.001"),
        (
            "WarmupCosine",
            dict(warmup_steps=10, total_steps=10),
            ValueError,
            r"total_steps must exceed warmup_steps, got total_steps=10, warmup_steps=10",
        ),
        (
            "WarmupCosine",
            dict(warmup_steps=20, total_steps=10),
            ValueError,
            r"total_steps must exceed warmup_steps, got total_steps=10, warmup_steps=20",
        ),
        ("WarmupCosine", dict(warmup_steps=0, total_steps=10), ValueError, r"warmup_steps must be >= 1, got 0"),
        (
            "WarmupCosine",
            dict(warmup_steps=5, total_steps=10, start_factor=0),
            ValueError,
            r"start_factor must lie in \(0, 1\], got 0",
        ),
        ("StepLR", dict(step_size=0), ValueError, r"step_size must be >= 1, got 0"),
        ("StepLR", dict(step_size=2.5), TypeError, r"step_size must be an integer, got float 2\.5"),
        ("StepLR", dict(step_size=10, gamma=-0.5), ValueError, r"gamma must be > 0, got -0\.5"),
        ("LinearLR", dict(start_factor=0), ValueError, r"start_factor must lie in \(0, 1\], got 0"),
        ("LinearLR", dict(end_factor=1.5), ValueError, r"end_factor must lie in \(0, 1\], got 1\.5"),
        ("LinearLR", dict(total_iters=0), ValueError, r"total_iters must be >= 1, got 0"),
    ],
    ids=lambda v: v if isinstance(v, str) and v.isidentifier() else None,
)
def test_bad_schedule_hyperparameter_is_rejected_with_a_message_naming_it_and_the_value(
    module, name, kwargs, error, message
):
    with pytest.raises(error, match=message):
        getattr(module, name)(**kwargs)


@BOTH_TWINS
@pytest.mark.parametrize(
    ("base_lr", "steps", "error", "message"),
    [
        (-0.1, 10, ValueError, r"base_lr must be > 0, got -0\.1"),
        (0.1, -1, ValueError, r"steps must be >= 0, got -1"),
        (0.1, 2.0, TypeError, r"steps must be an integer, got float 2\.0"),
    ],
)
def test_learning_rates_rejects_a_bad_base_lr_or_step_count(module, base_lr, steps, error, message):
    with pytest.raises(error, match=message):
        module.learning_rates(module.StepLR(step_size=2), base_lr, steps)


def test_lr_at_rejects_a_negative_step():
    with pytest.raises(ValueError, match=r"step must be >= 0, got -1"):
        np_schedules.StepLR(step_size=2).lr_at(-1, 0.1)
