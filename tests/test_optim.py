"""The NumPy optimizers of `dlbook.np.optim` follow `torch.optim` step for step (style: Tests 3).

Every comparison feeds the same gradients, drawn fresh each step from a seeded generator, to the
NumPy optimizer and to the real `torch.optim` optimizer built by the twin in `dlbook.torch.optim`,
in float64, and holds the parameters together after every one of many steps.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from conftest import assert_close, to_numpy
from dlbook.np import optim as np_optim
from dlbook.np import schedules as np_schedules
from dlbook.np import surfaces as np_surfaces
from dlbook.torch import optim as torch_optim
from dlbook.torch import schedules as torch_schedules
from dlbook.torch import surfaces as torch_surfaces

# The twins do the same float64 arithmetic, up to the order of a few operations (torch uses lerp
# for the moving averages), so they agree to a few ulps; 1e-10 leaves room for 200 steps of that.
RTOL, ATOL = 1e-10, 1e-12
STEPS = 200

# A 0-d parameter, a (1,), an odd (3, 5, 2), and two shapes drawn at random in `make_params`.
FIXED_SHAPES = [(), (1,), (3, 5, 2)]

# (name, hyperparameters): each runs through both the NumPy class and the torch twin of that name.
CONFIGS = [
    ("SGD", dict(lr=0.05)),
    ("SGD", dict(lr=0.05, momentum=0.9)),
    ("SGD", dict(lr=0.05, momentum=0.9, dampening=0.3)),
    ("SGD", dict(lr=0.05, momentum=0.9, nesterov=True)),
    ("SGD", dict(lr=0.05, weight_decay=0.1)),
    ("SGD", dict(lr=0.02, momentum=0.5, weight_decay=0.3, nesterov=True)),
    ("RMSprop", dict(lr=0.01)),
    ("RMSprop", dict(lr=0.01, momentum=0.9)),
    ("RMSprop", dict(lr=0.01, centered=True)),
    ("RMSprop", dict(lr=0.01, weight_decay=0.1)),
    ("RMSprop", dict(lr=0.005, alpha=0.9, eps=1e-6, momentum=0.5, centered=True, weight_decay=0.05)),
    ("Adam", dict()),
    ("Adam", dict(lr=0.02, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1)),
    ("AdamW", dict()),
    ("AdamW", dict(lr=0.01, weight_decay=0.5)),
]
CONFIG_IDS = [f"{name}-{'-'.join(f'{k}={v}' for k, v in kwargs.items()) or 'defaults'}" for name, kwargs in CONFIGS]


def make_params(rng: np.random.Generator) -> list[np.ndarray]:
    """Float64 parameters of the fixed shapes plus two random ones (1 to 3 axes of length 1 to 6)."""
    shapes = [*FIXED_SHAPES]
    for _ in range(2):
        shapes.append(tuple(int(n) for n in rng.integers(1, 7, size=rng.integers(1, 4))))
    return [np.array(rng.normal(size=shape)) for shape in shapes]


def draw_grads(rng: np.random.Generator, params: list[np.ndarray]) -> list[np.ndarray]:
    """Fresh gradients, one per parameter, each of its own scale between 1e-3 and 10."""
    return [np.array(10 ** rng.uniform(-3, 1) * rng.normal(size=p.shape)) for p in params]


@dataclass
class SideBySide:
    """What `run_side_by_side` saw: the parameters of both after every step, and the final states."""

    initial: list[np.ndarray]
    np_history: list[list[np.ndarray]]
    torch_history: list[list[np.ndarray]]
    np_state: object
    torch_optimizer: torch.optim.Optimizer
    torch_params: list[torch.Tensor]


def run_side_by_side(np_optimizer, torch_twin, rng: np.random.Generator, steps: int = STEPS, lrs=None) -> SideBySide:
    """Step a NumPy optimizer and `torch_twin.build(...)` on the same parameters and gradients.

    lrs: optional per-step learning rates, passed as `step(..., lr=)` to NumPy and written into
    torch's `param_groups[0]["lr"]`.
    """
    params = initial = make_params(rng)
    tensors = [torch.tensor(p.copy(), dtype=torch.float64, requires_grad=True) for p in params]
    torch_optimizer = torch_twin.build(tensors)
    state = np_optimizer.init(params)
    np_history, torch_history = [], []
    for t in range(steps):
        grads = draw_grads(rng, params)
        lr = None if lrs is None else lrs[t]
        params, state = np_optimizer.step(params, grads, state, lr=lr)
        if lr is not None:
            torch_optimizer.param_groups[0]["lr"] = lr
        for tensor, grad in zip(tensors, grads, strict=True):
            tensor.grad = torch.from_numpy(grad.copy())
        torch_optimizer.step()
        np_history.append(params)
        torch_history.append([to_numpy(tensor).copy() for tensor in tensors])
    return SideBySide(initial, np_history, torch_history, state, torch_optimizer, tensors)


def agree(np_params: list[np.ndarray], torch_params: list[np.ndarray]) -> bool:
    pairs = zip(np_params, torch_params, strict=True)
    return all(a.shape == b.shape and np.allclose(a, b, rtol=RTOL, atol=ATOL) for a, b in pairs)


def first_disagreement(run: SideBySide) -> int | None:
    """The first step after which the two optimizers' parameters differ, or None if they never do."""
    for t, (np_params, torch_params) in enumerate(zip(run.np_history, run.torch_history, strict=True)):
        if not agree(np_params, torch_params):
            return t
    return None


def assert_states_agree(name: str, hyper: dict, run: SideBySide) -> None:
    """The NumPy state holds what torch keeps in `optimizer.state[p]`, under the names that map."""
    torch_states = [run.torch_optimizer.state[p] for p in run.torch_params]
    state = run.np_state
    if name == "SGD":
        for buffer, torch_state in zip(state.momentum_buffers, torch_states, strict=True):
            if hyper.get("momentum", 0) > 0:
                assert_close(buffer, torch_state["momentum_buffer"], rtol=RTOL, atol=ATOL)
            else:
                assert buffer is None
                assert torch_state.get("momentum_buffer") is None
    elif name == "RMSprop":
        for i, torch_state in enumerate(torch_states):
            assert_close(state.square_avg[i], torch_state["square_avg"], rtol=RTOL, atol=ATOL)
            if hyper.get("centered", False):
                assert_close(state.grad_avg[i], torch_state["grad_avg"], rtol=RTOL, atol=ATOL)
            if hyper.get("momentum", 0) > 0:
                assert_close(state.momentum_buffers[i], torch_state["momentum_buffer"], rtol=RTOL, atol=ATOL)
    else:  # Adam, AdamW
        for i, torch_state in enumerate(torch_states):
            assert state.step == float(torch_state["step"]) == STEPS
            assert_close(state.exp_avg[i], torch_state["exp_avg"], rtol=RTOL, atol=ATOL)
            assert_close(state.exp_avg_sq[i], torch_state["exp_avg_sq"], rtol=RTOL, atol=ATOL)


def twins(name: str, hyper: dict):
    return getattr(np_optim, name)(**hyper), getattr(torch_optim, name)(**hyper)


@pytest.mark.parametrize(("name", "hyper"), CONFIGS, ids=CONFIG_IDS)
def test_numpy_optimizer_follows_torch_for_200_steps(name, hyper, rng):
    run = run_side_by_side(*twins(name, hyper), rng)
    assert first_disagreement(run) is None
    final = run.np_history[-1]
    assert [p.shape for p in final] == [p.shape for p in run.initial]
    assert [p.shape for p in final[:3]] == FIXED_SHAPES
    assert all(p.dtype == np.float64 and np.all(np.isfinite(p)) for p in final)
    # The parameters moved: agreeing on parameters that stood still would prove nothing.
    moved = [np.max(np.abs(a - b)) for a, b in zip(final, run.initial, strict=True)]
    assert min(moved) > 1e-5  # far above the 1e-10 the comparison tolerates


@pytest.mark.parametrize(("name", "hyper"), CONFIGS, ids=CONFIG_IDS)
def test_numpy_optimizer_state_equals_torch_optimizer_state_after_200_steps(name, hyper, rng):
    run = run_side_by_side(*twins(name, hyper), rng)
    assert_states_agree(name, hyper, run)


@pytest.mark.parametrize(
    ("name", "hyper"),
    [
        ("SGD", dict(lr=0.05, momentum=0.9, dampening=0.1)),
        ("SGD", dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.01)),
        ("RMSprop", dict(lr=0.01, momentum=0.9, centered=True)),
        ("Adam", dict(lr=0.01, weight_decay=0.1)),
        ("AdamW", dict(lr=0.01, weight_decay=0.3)),
    ],
    ids=lambda value: value if isinstance(value, str) else None,
)
def test_per_step_lr_equals_setting_torch_param_group_lr(name, hyper):
    lrs = list(hyper["lr"] * 10 ** np.random.default_rng(1).uniform(-1, 1, size=STEPS))
    run = run_side_by_side(*twins(name, hyper), np.random.default_rng(2), lrs=lrs)
    assert first_disagreement(run) is None
    # The per-step rates mattered: with the same gradients and a constant rate, NumPy ends elsewhere.
    constant = run_side_by_side(*twins(name, hyper), np.random.default_rng(2))
    assert not agree(constant.np_history[-1], run.np_history[-1])


def test_per_step_lr_changes_the_step():
    params, grads = [np.array([1.0, -2.0])], [np.array([0.5, 0.25])]
    optimizer = np_optim.SGD(lr=0.1)
    state = optimizer.init(params)
    default, _ = optimizer.step(params, grads, state)
    override, _ = optimizer.step(params, grads, state, lr=0.4)
    np.testing.assert_array_equal(default[0], params[0] - 0.1 * grads[0])
    np.testing.assert_array_equal(override[0], params[0] - 0.4 * grads[0])


# --- Negative control: a wrong Adam must not pass the same comparison -------------------------


class AdamWithoutBiasCorrection(np_optim.Adam):
    """Adam as it would be written by someone who forgot 1 - beta**t: deliberately wrong."""

    def step(self, params, grads, state, lr=None):
        lr = self.lr if lr is None else lr
        beta1, beta2 = self.betas
        new_params, exp_avgs, exp_avg_sqs = [], [], []
        for param, grad, m, v in zip(params, grads, state.exp_avg, state.exp_avg_sq, strict=True):
            grad = grad + self.weight_decay * param
            m = beta1 * m + (1 - beta1) * grad
            v = beta2 * v + (1 - beta2) * grad**2
            new_params.append(param - lr * m / (np.sqrt(v) + self.eps))
            exp_avgs.append(m)
            exp_avg_sqs.append(v)
        return new_params, np_optim.AdamState(state.step + 1, tuple(exp_avgs), tuple(exp_avg_sqs))


def test_comparison_detects_an_adam_without_bias_correction(rng):
    hyper = dict(lr=0.01)
    run = run_side_by_side(AdamWithoutBiasCorrection(**hyper), torch_optim.Adam(**hyper), rng)
    assert first_disagreement(run) == 0  # wrong from the very first step
    assert not agree(run.np_history[-1], run.torch_history[-1])
    assert not np.allclose(run.np_history[-1][2], run.torch_history[-1][2], rtol=RTOL, atol=ATOL)


# --- minimize: the NumPy loop with hand gradients equals the torch loop with autograd ---------

SURFACES = {
    "rosenbrock": (
        np_surfaces.rosenbrock,
        np_surfaces.rosenbrock_grad,
        torch_surfaces.rosenbrock,
        np.array([-1.2, 1.0]),
    ),
    "double_well": (
        np_surfaces.double_well,
        np_surfaces.double_well_grad,
        torch_surfaces.double_well,
        np.array([1.5, 0.2]),
    ),
}
MINIMIZE_OPTIMIZERS = [
    ("SGD", dict(lr=5e-4, momentum=0.9)),
    ("SGD", dict(lr=1e-3, momentum=0.5, nesterov=True)),
    ("RMSprop", dict(lr=1e-2, centered=True)),
    ("Adam", dict(lr=5e-2)),
    ("AdamW", dict(lr=5e-2, weight_decay=0.1)),
]
SCHEDULES = {
    "constant": None,
    "warmup-cosine": dict(name="WarmupCosine", warmup_steps=20, total_steps=150, start_factor=0.1),
    "step": dict(name="StepLR", step_size=40, gamma=0.5),
}


def schedule_twins(spec: dict | None):
    if spec is None:
        return None, None
    spec = dict(spec)
    name = spec.pop("name")
    return getattr(np_schedules, name)(**spec), getattr(torch_schedules, name)(**spec)


@pytest.mark.parametrize("surface", SURFACES)
@pytest.mark.parametrize("schedule", SCHEDULES)
@pytest.mark.parametrize(("name", "hyper"), MINIMIZE_OPTIMIZERS, ids=lambda v: v if isinstance(v, str) else None)
def test_minimize_twins_give_the_same_trajectory_for_150_steps(surface, schedule, name, hyper):
    value, grad, torch_value, x0 = SURFACES[surface]
    np_schedule, torch_schedule = schedule_twins(SCHEDULES[schedule])
    np_optimizer, torch_optimizer = twins(name, hyper)
    x0_before = x0.copy()
    ours = np_optim.minimize(lambda p: (value(p), grad(p)), x0, np_optimizer, 150, schedule=np_schedule)
    theirs = torch_optim.minimize(torch_value, x0, torch_optimizer, 150, schedule=torch_schedule)
    np.testing.assert_array_equal(x0, x0_before)
    assert ours.points.shape == theirs.points.shape == (151, 2)
    assert ours.losses.shape == theirs.losses.shape == (151,)
    assert ours.lrs.shape == theirs.lrs.shape == (150,)
    np.testing.assert_array_equal(ours.points[0], x0)
    np.testing.assert_allclose(ours.lrs, theirs.lrs, rtol=1e-12, atol=0)
    np.testing.assert_allclose(ours.points, theirs.points, rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(ours.losses, theirs.losses, rtol=RTOL, atol=ATOL)
    np.testing.assert_array_equal(ours.final, ours.points[-1])
    assert ours.losses[-1] < ours.losses[0]


# --- Purity: step changes nothing it was given, and returns a new state -----------------------


@pytest.mark.parametrize(("name", "hyper"), CONFIGS, ids=CONFIG_IDS)
def test_step_does_not_modify_its_inputs_and_returns_a_new_state(name, hyper, rng):
    optimizer = getattr(np_optim, name)(**hyper)
    params = make_params(rng)
    state = optimizer.init(params)
    for _ in range(2):  # so that every buffer of the state is in use
        params, state = optimizer.step(params, draw_grads(rng, params), state)
    grads = draw_grads(rng, params)
    params_before, grads_before, state_before = copy.deepcopy((params, grads, state))

    new_params, new_state = optimizer.step(params, grads, state)

    for a, b in zip(params + grads, params_before + grads_before, strict=True):
        np.testing.assert_array_equal(a, b)
    assert _states_equal(state, state_before)
    assert new_state is not state
    assert type(new_state) is type(state)
    for new, old in zip(new_params, params, strict=True):
        assert new is not old
        assert not np.shares_memory(new, old)


def _states_equal(a: object, b: object) -> bool:
    """Equality of two optimizer states field by field, arrays compared by value."""
    for field in a.__dataclass_fields__:
        x, y = getattr(a, field), getattr(b, field)
        if isinstance(x, tuple):
            if len(x) != len(y):
                return False
            for u, v in zip(x, y, strict=True):
                if (u is None) != (v is None) or (u is not None and not np.array_equal(u, v)):
                    return False
        elif x != y:
            return False
    return True


# --- Properties -------------------------------------------------------------------------------

finite = st.floats(-1e3, 1e3, allow_nan=False, allow_infinity=False)
shapes = hnp.array_shapes(min_dims=0, max_dims=3, min_side=1, max_side=4)


@settings(max_examples=40, deadline=None)
@given(lr=st.floats(1e-6, 10.0), data=st.data())
def test_one_sgd_step_without_momentum_is_exactly_p_minus_lr_g(lr, data):
    shape = data.draw(shapes)
    p = data.draw(hnp.arrays(np.float64, shape, elements=finite))
    g = data.draw(hnp.arrays(np.float64, shape, elements=finite))
    optimizer = np_optim.SGD(lr=lr)
    [new], _ = optimizer.step([p], [g], optimizer.init([p]))
    np.testing.assert_array_equal(new, p - lr * g)


@settings(max_examples=40, deadline=None)
@given(lr=st.floats(1e-4, 1.0), data=st.data())
def test_first_adam_step_moves_every_coordinate_by_lr_against_the_gradient(lr, data):
    # Bias correction makes m_hat = g and sqrt(v_hat) = |g| on step 1, so the step is
    # lr * g / (|g| + eps) = lr * sign(g) * (1 - O(eps / |g|)); with |g| >= 1e-2, eps = 1e-8 that
    # is lr within a relative 1e-6, and float64 rounding of p - step adds ~1e-15 / lr.
    shape = data.draw(shapes)
    p = data.draw(hnp.arrays(np.float64, shape, elements=st.floats(-10, 10)))
    magnitude = data.draw(hnp.arrays(np.float64, shape, elements=st.floats(1e-2, 1e3)))
    sign = data.draw(hnp.arrays(np.float64, shape, elements=st.sampled_from([-1.0, 1.0])))
    g = np.array(sign * magnitude)  # np.array: a 0-d product comes back as a NumPy scalar
    optimizer = np_optim.Adam(lr=lr)
    [new], state = optimizer.step([p], [g], optimizer.init([p]))
    np.testing.assert_allclose(p - new, lr * sign, rtol=1e-5, atol=0)
    assert state.step == 1


@settings(max_examples=40, deadline=None)
@given(lr=st.floats(1e-4, 1.0), weight_decay=st.floats(0.0, 0.9), data=st.data())
def test_adamw_with_zero_gradient_shrinks_p_by_exactly_one_minus_lr_times_weight_decay(lr, weight_decay, data):
    shape = data.draw(shapes)
    p = data.draw(hnp.arrays(np.float64, shape, elements=finite))
    optimizer = np_optim.AdamW(lr=lr, weight_decay=weight_decay)
    [new], _ = optimizer.step([p], [np.zeros_like(p)], optimizer.init([p]))
    np.testing.assert_array_equal(new, p * (1 - lr * weight_decay))


# --- Validation: the same constructor checks in both twins ------------------------------------

BOTH_TWINS = pytest.mark.parametrize("module", [np_optim, torch_optim], ids=["numpy", "torch"])
ALL_NAMES = ["SGD", "RMSprop", "Adam", "AdamW"]


@BOTH_TWINS
@pytest.mark.parametrize("name", ALL_NAMES)
@pytest.mark.parametrize(
    ("lr", "error", "message"),
    [
        (-0.1, ValueError, r"lr must be > 0, got -0\.1"),
        (0, ValueError, r"lr must be > 0, got 0"),
        ("0.1", TypeError, r"lr must be a real number, got str '0\.1'"),
        (float("nan"), ValueError, r"lr must be finite, got nan"),
        (True, TypeError, r"lr must be a real number, got bool True"),
    ],
)
def test_bad_lr_is_rejected_with_a_message_naming_lr_and_the_value(module, name, lr, error, message):
    with pytest.raises(error, match=message):
        getattr(module, name)(lr=lr)


@BOTH_TWINS
@pytest.mark.parametrize(
    ("name", "hyper", "error", "message"),
    [
        ("Adam", dict(betas=(1.0, 0.999)), ValueError, r"betas\[0\] must lie in \[0, 1\), got 1\.0"),
        ("AdamW", dict(betas=(0.9, 1.5)), ValueError, r"betas\[1\] must lie in \[0, 1\), got 1\.5"),
        ("Adam", dict(betas=(0.9,)), TypeError, r"betas must be a pair \(beta1, beta2\), got \(0\.9,\)"),
        ("AdamW", dict(betas=0.9), TypeError, r"betas must be a pair \(beta1, beta2\), got 0\.9"),
        ("SGD", dict(momentum=-0.1), ValueError, r"momentum must lie in \[0, 1\), got -0\.1"),
        ("RMSprop", dict(momentum=-0.1), ValueError, r"momentum must lie in \[0, 1\), got -0\.1"),
        ("SGD", dict(dampening=1.5), ValueError, r"dampening must lie in \[0, 1\], got 1\.5"),
        ("SGD", dict(nesterov=True, momentum=0), ValueError, r"nesterov=True needs momentum > 0.*got momentum=0"),
        ("SGD", dict(nesterov=True, momentum=0.9, dampening=0.1), ValueError, r"dampening = 0.*dampening=0\.1"),
        ("SGD", dict(nesterov=1), TypeError, r"nesterov must be True or False, got int 1"),
        ("SGD", dict(weight_decay=-1e-4), ValueError, r"weight_decay must be >= 0, got -0\.0001"),
        ("RMSprop", dict(eps=0), ValueError, r"eps must be > 0, got 0"),
        ("RMSprop", dict(alpha=1.0), ValueError, r"alpha must lie in \[0, 1\), got 1\.0"),
        ("RMSprop", dict(centered="yes"), TypeError, r"centered must be True or False, got str 'yes'"),
        ("Adam", dict(eps=0), ValueError, r"eps must be > 0, got 0"),
        ("AdamW", dict(eps=0.0), ValueError, r"eps must be > 0, got 0\.0"),
        ("AdamW", dict(weight_decay=-0.01), ValueError, r"weight_decay must be >= 0, got -0\.01"),
    ],
    ids=lambda v: v if isinstance(v, str) and v.isidentifier() else None,
)
def test_bad_hyperparameter_is_rejected_with_a_message_naming_it_and_the_value(module, name, hyper, error, message):
    with pytest.raises(error, match=message):
        getattr(module, name)(**hyper)


@BOTH_TWINS
@pytest.mark.parametrize("name", ALL_NAMES)
def test_hyperparameters_are_frozen(module, name):
    optimizer = getattr(module, name)()
    with pytest.raises(AttributeError):
        optimizer.lr = 1.0


@pytest.mark.parametrize(
    ("name", "hyper"),
    [
        ("SGD", dict(lr=0.123, momentum=0.7, dampening=0.2, weight_decay=0.01, nesterov=False)),
        ("RMSprop", dict(lr=0.123, alpha=0.9, eps=1e-6, weight_decay=0.01, momentum=0.3, centered=True)),
        ("Adam", dict(lr=0.123, betas=(0.8, 0.95), eps=1e-7, weight_decay=0.01)),
        ("AdamW", dict(lr=0.123, betas=(0.8, 0.95), eps=1e-7, weight_decay=0.2)),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_torch_twin_builds_the_torch_optimizer_of_that_name_with_the_same_hyperparameters(name, hyper):
    built = getattr(torch_optim, name)(**hyper).build([torch.zeros(3, requires_grad=True)])
    assert type(built) is getattr(torch.optim, name)
    for key, value in hyper.items():
        assert built.param_groups[0][key] == value


@pytest.mark.parametrize("name", ALL_NAMES)
def test_step_rejects_a_missing_gradient_naming_both_counts(name):
    optimizer = getattr(np_optim, name)(lr=0.1)
    params = [np.zeros(3), np.zeros((2, 2))]
    with pytest.raises(ValueError, match=r"2 parameters, 1 gradients"):
        optimizer.step(params, [np.zeros(3)], optimizer.init(params))


@pytest.mark.parametrize("name", ALL_NAMES)
def test_step_rejects_a_gradient_of_the_wrong_shape_naming_expected_and_actual(name):
    optimizer = getattr(np_optim, name)(lr=0.1)
    params = [np.zeros(3), np.zeros((2, 2))]
    grads = [np.zeros(3), np.zeros((2, 3))]
    with pytest.raises(ValueError, match=r"grads\[1\].*params\[1\].*expected \(2, 2\), got \(2, 3\)"):
        optimizer.step(params, grads, optimizer.init(params))


@pytest.mark.parametrize("name", ALL_NAMES)
def test_step_rejects_integer_parameters_with_a_type_error(name):
    optimizer = getattr(np_optim, name)(lr=0.1)
    params = [np.zeros(3), np.arange(4)]
    with pytest.raises(TypeError, match=r"params\[1\] must have a floating dtype.*got dtype int"):
        optimizer.step(params, [np.zeros(3), np.zeros(4)], optimizer.init(params))


@pytest.mark.parametrize("name", ALL_NAMES)
def test_step_rejects_integer_gradients_with_a_type_error(name):
    optimizer = getattr(np_optim, name)(lr=0.1)
    params = [np.zeros(4)]
    with pytest.raises(TypeError, match=r"grads\[0\] must have a floating dtype.*got dtype int"):
        optimizer.step(params, [np.arange(4)], optimizer.init(params))


@pytest.mark.parametrize("name", ALL_NAMES)
@pytest.mark.parametrize(("lr", "error"), [(-0.5, ValueError), (0.0, ValueError), ("0.1", TypeError)])
def test_step_rejects_a_bad_per_step_lr(name, lr, error):
    optimizer = getattr(np_optim, name)(lr=0.1)
    params = [np.zeros(3)]
    with pytest.raises(error, match=r"lr must be"):
        optimizer.step(params, [np.ones(3)], optimizer.init(params), lr=lr)


@pytest.mark.parametrize("name", ALL_NAMES)
def test_step_rejects_a_state_built_for_a_different_number_of_parameters(name):
    # A state from init([p]) used with [p, q] must not silently drop q from the result, and the
    # error should say that the state is what does not match.
    optimizer = getattr(np_optim, name)(lr=0.1)
    params = [np.ones(3), np.ones(2)]
    grads = [np.ones(3), np.ones(2)]
    with pytest.raises(ValueError, match=r"state"):
        optimizer.step(params, grads, optimizer.init(params[:1]))


@pytest.mark.parametrize(
    ("name", "hyper"),
    [("SGD", dict(momentum=0.9)), ("RMSprop", dict()), ("Adam", dict()), ("AdamW", dict())],
    ids=ALL_NAMES,
)
def test_step_rejects_a_state_whose_buffers_have_other_shapes_than_the_parameters(name, hyper):
    # A state of (3,) buffers used with a (1,) parameter must not broadcast it into a (3,) one.
    optimizer = getattr(np_optim, name)(lr=0.1, **hyper)
    old = [np.ones(3)]
    _, state = optimizer.step(old, [np.ones(3)], optimizer.init(old))
    with pytest.raises(ValueError, match=r"state") as error:
        optimizer.step([np.ones(1)], [np.ones(1)], state)
    assert "(3,)" in str(error.value)
    assert "(1,)" in str(error.value)


def quadratic_value_and_grad(p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return np_surfaces.quadratic(p), np_surfaces.quadratic_grad(p)


@pytest.mark.parametrize(
    ("module", "loss"),
    [(np_optim, quadratic_value_and_grad), (torch_optim, torch_surfaces.quadratic)],
    ids=["numpy", "torch"],
)
def test_minimize_rejects_a_starting_point_that_is_not_a_float_vector(module, loss):
    optimizer = module.SGD(lr=0.1)
    with pytest.raises(ValueError, match=r"x0 must have 1 dimension\(s\), got shape \(1, 2\)"):
        module.minimize(loss, np.zeros((1, 2)), optimizer, 5)
    with pytest.raises(TypeError, match=r"x0 must have a floating dtype"):
        module.minimize(loss, np.array([1, 2]), optimizer, 5)
    with pytest.raises(ValueError, match=r"steps must be >= 0, got -1"):
        module.minimize(loss, np.zeros(2), optimizer, -1)


@pytest.mark.parametrize(("name", "hyper"), CONFIGS, ids=CONFIG_IDS)
def test_float32_parameters_stay_float32_and_follow_torch(name, hyper, rng):
    """A float32 network trained by a NumPy optimizer must not silently become float64 (NumPy 2 promotes
    float32 arrays to float64 when a float64 *scalar* such as np.sqrt(0.9) enters the arithmetic)."""
    params = [rng.normal(size=(4, 3)).astype(np.float32)]
    torch_params = [torch.tensor(params[0], requires_grad=True)]
    optimizer = getattr(np_optim, name)(**hyper)
    torch_optimizer = getattr(torch_optim, name)(**hyper).build(torch_params)
    state = optimizer.init(params)
    for _ in range(5):
        grads = [rng.normal(size=(4, 3)).astype(np.float32)]
        params, state = optimizer.step(params, grads, state)
        torch_params[0].grad = torch.from_numpy(grads[0])
        torch_optimizer.step()
    assert params[0].dtype == np.float32
    np.testing.assert_allclose(params[0], torch_params[0].detach().numpy(), rtol=1e-5, atol=1e-6)


def test_numpy_scalar_hyperparameters_are_stored_as_python_floats():
    """lr = np.cos(...) from a hand-written schedule must not turn a float32 model into float64."""
    optimizer = np_optim.Adam(lr=np.float64(1e-3), betas=(np.float64(0.9), 0.999), eps=np.float32(1e-8))
    assert type(optimizer.lr) is float and type(optimizer.eps) is float
    assert all(type(beta) is float for beta in optimizer.betas)
    params = [np.ones(2, np.float32)]
    params, _ = optimizer.step(params, [np.ones(2, np.float32)], optimizer.init(params), lr=np.float64(1e-3))
    assert params[0].dtype == np.float32
