"""Fitting scaling laws, and the training runs that measure them.

The fits recover known exponents from synthetic data within their error bars, the error bars are
calibrated (they match the spread of the estimates over many noisy data sets) and shrink with the
noise, and a straight-line fit equals numpy.polyfit. The loss surface of Hoffmann et al. is
recovered from points drawn on it, and the optimum it implies is dlbook.scaling's. The training
helper counts parameters, tokens and FLOPs as dlbook.scaling does, and is deterministic.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from dlbook.scaling import ChinchillaFit, TransformerConfig, chinchilla_optimal, count_params, forward_flops_per_token
from dlbook.scaling_laws import PowerLawFit, fit_loss_surface, fit_power_law, pareto_frontier
from dlbook.torch.gpt import GPT
from dlbook.torch.scaling_sweep import (
    Checkpoint,
    log_spaced_steps,
    non_embedding_params,
    train_with_checkpoints,
    validation_loss,
)


def noisy_power_law(rng, alpha=0.3, a=5.0, e=0.0, noise=0.02, points=12):
    x = np.geomspace(1e3, 1e7, points)
    return x, (e + a * x**-alpha) * np.exp(rng.normal(0, noise, size=points))


# ---- fit_power_law ------------------------------------------------------------------------------


def test_exact_power_law_is_recovered_exactly():
    x = np.geomspace(10, 1e6, 7)
    fit = fit_power_law(x, 3.0 * x**-0.25)
    assert fit.exponent == pytest.approx(0.25, rel=1e-12)
    assert fit.coefficient == pytest.approx(3.0, rel=1e-12)
    assert fit.exponent_se < 1e-12 and fit.residual_std < 1e-12
    assert isinstance(fit, PowerLawFit) and fit.n_points == 7 and fit.irreducible == 0.0
    np.testing.assert_allclose(fit.predict(x), 3.0 * x**-0.25, rtol=1e-12)


def test_line_fit_equals_numpy_polyfit_on_log_log():
    rng = np.random.default_rng(0)
    x, y = noisy_power_law(rng, noise=0.1)
    slope, intercept = np.polyfit(np.log(x), np.log(y), 1)
    fit = fit_power_law(x, y)
    assert fit.exponent == pytest.approx(-slope, rel=1e-10)
    assert fit.coefficient == pytest.approx(math.exp(intercept), rel=1e-10)
    # numpy's covariance of the slope (scaled by the residuals) is the same standard error
    _, covariance = np.polyfit(np.log(x), np.log(y), 1, cov=True)
    assert fit.exponent_se == pytest.approx(math.sqrt(covariance[0, 0]), rel=1e-10)


def test_the_exponent_lies_within_its_error_bars_and_the_bars_are_calibrated():
    """Over 400 noisy data sets, the estimates spread as much as the standard error says, and the
    95% interval holds the true exponent about 95% of the time."""
    rng = np.random.default_rng(1)
    fits = [fit_power_law(*noisy_power_law(rng, noise=0.05)) for _ in range(400)]
    estimates = np.array([f.exponent for f in fits])
    typical_se = np.median([f.exponent_se for f in fits])
    assert np.std(estimates) == pytest.approx(typical_se, rel=0.15)
    covered = np.mean([low <= 0.3 <= high for low, high in (f.exponent_interval() for f in fits)])
    assert 0.90 <= covered <= 0.98


def test_error_bars_shrink_with_the_noise():
    x, clean = noisy_power_law(np.random.default_rng(0), noise=0.0)
    wiggle = np.random.default_rng(2).normal(size=len(x))
    loud, quiet = (fit_power_law(x, clean * np.exp(level * wiggle)) for level in (0.1, 0.01))
    assert loud.exponent_se == pytest.approx(10 * quiet.exponent_se, rel=1e-9)  # the same residuals, scaled
    assert abs(quiet.exponent - 0.3) < 3 * quiet.exponent_se


def test_a_given_irreducible_term_is_subtracted_before_the_line_fit():
    x = np.geomspace(1e3, 1e7, 9)
    y = 1.7 + 400 * x**-0.34
    fit = fit_power_law(x, y, irreducible=1.7)
    assert fit.exponent == pytest.approx(0.34, rel=1e-10) and fit.irreducible == 1.7
    assert fit.irreducible_se == 0.0
    # ignoring the floor bends the line and flattens it, by many error bars: the negative control
    plain = fit_power_law(x, y)
    assert plain.exponent < 0.34 - 5 * plain.exponent_se and plain.residual_std > 0.05


def test_the_irreducible_term_can_be_fitted():
    rng = np.random.default_rng(3)
    x, y = noisy_power_law(rng, alpha=0.4, a=60.0, e=1.5, noise=0.005, points=20)
    fit = fit_power_law(x, y, irreducible="fit")
    assert abs(fit.exponent - 0.4) < 3 * fit.exponent_se
    assert abs(fit.irreducible - 1.5) < 3 * fit.irreducible_se
    assert fit.exponent_se > 0 and fit.irreducible_se > 0
    np.testing.assert_allclose(fit.predict(x), y, rtol=0.02)


@settings(max_examples=30, deadline=None)
@given(scale_y=st.floats(1e-3, 1e3), scale_x=st.floats(1e-3, 1e3))
def test_rescaling_changes_the_coefficient_not_the_exponent(scale_y, scale_x):
    x, y = noisy_power_law(np.random.default_rng(4), noise=0.05)
    base = fit_power_law(x, y)
    scaled = fit_power_law(x * scale_x, y * scale_y)
    assert scaled.exponent == pytest.approx(base.exponent, rel=1e-8, abs=1e-10)
    assert scaled.exponent_se == pytest.approx(base.exponent_se, rel=1e-6)
    assert scaled.coefficient == pytest.approx(base.coefficient * scale_y * scale_x**base.exponent, rel=1e-8)


@pytest.mark.parametrize(
    ("x", "y", "irreducible", "message"),
    [
        ([1, 2, 0], [3, 2, 1], None, r"x must be > 0 everywhere .* got \[0\.\] at positions \[2\]"),
        ([1, 2, 3], [3, -2, 1], None, r"y must be > 0 everywhere"),
        ([1, 2, 3], [3, 2], None, r"need one value per point: got lengths \{'x': 3, 'y': 2\}"),
        ([1, 2], [3, 2], None, r"at least 3 points, got 2"),
        ([1, 2, 3], [3, 2, 1], "fit", r"needs at least 4 points, got 3"),
        ([1, 2, 3], [3, 2, 1], 1.5, r"every y must exceed the irreducible term 1\.5"),
        ([1, 2, 3], [3, 2, 1], "floor", r'irreducible must be None, a number or "fit", got \'floor\''),
        ([1, 2, 3], [3, 2, 1], -1.0, r"irreducible must be >= 0, got -1\.0"),
        ([2, 2, 2], [3, 2, 1], None, r"at least two different values"),
        ([[1, 2, 3]], [3, 2, 1], None, r"x must be a 1-D sequence of numbers, got shape \(1, 3\)"),
    ],
)
def test_fit_power_law_errors_say_what_was_expected(x, y, irreducible, message):
    with pytest.raises(ValueError, match=message):
        fit_power_law(x, y, irreducible)


# ---- the loss surface ---------------------------------------------------------------------------

TRUE = ChinchillaFit(E=1.2, A=8.0, B=40.0, alpha=0.3, beta=0.25)


def surface_points(rng, noise):
    n, d = np.meshgrid(np.geomspace(1e3, 1e6, 6), np.geomspace(1e4, 1e7, 7))
    n, d = n.ravel(), d.ravel()
    loss = TRUE.E + TRUE.A / n**TRUE.alpha + TRUE.B / d**TRUE.beta
    return n, d, loss * np.exp(rng.normal(0, noise, size=n.shape))


def test_loss_surface_is_recovered_and_gives_the_same_optimum():
    n, d, loss = surface_points(np.random.default_rng(0), noise=0.0)
    surface = fit_loss_surface(n, d, loss)
    for name in ("E", "A", "B", "alpha", "beta"):
        assert getattr(surface.fit, name) == pytest.approx(getattr(TRUE, name), rel=1e-5), name
    assert surface.n_opt_exponent == pytest.approx(0.25 / 0.55, rel=1e-5)
    n_opt, _ = chinchilla_optimal(1e15, surface.fit)
    assert n_opt == pytest.approx(chinchilla_optimal(1e15, TRUE)[0], rel=1e-4)
    np.testing.assert_allclose(surface.predict(n, d), loss, rtol=1e-8)


def test_noisy_loss_surface_exponents_lie_within_their_error_bars():
    n, d, loss = surface_points(np.random.default_rng(1), noise=0.005)
    surface = fit_loss_surface(n, d, loss)
    for name in ("alpha", "beta"):
        assert abs(getattr(surface.fit, name) - getattr(TRUE, name)) < 3 * surface.se[name], name
        assert surface.se[name] > 0


def test_fixed_exponents_fit_only_the_scales():
    n, d, loss = surface_points(np.random.default_rng(2), noise=0.0)
    right = fit_loss_surface(n, d, loss, exponents=(0.3, 0.25))
    wrong = fit_loss_surface(n, d, loss, exponents=(0.6, 0.1))
    assert (right.fit.alpha, right.fit.beta) == (0.3, 0.25) and right.se["alpha"] == 0.0
    assert right.fit.A == pytest.approx(TRUE.A, rel=1e-5) and right.residual_std < 1e-6
    assert wrong.residual_std > 100 * right.residual_std  # negative control


def test_loss_surface_errors():
    with pytest.raises(ValueError, match="needs at least 6 points, got 5"):
        fit_loss_surface([1, 2, 3, 4, 5], [1, 2, 3, 4, 5], [5, 4, 3, 2, 1])
    with pytest.raises(ValueError, match=r"exponents must be a pair \(alpha, beta\)"):
        fit_loss_surface([1, 2, 3, 4, 5], [1, 2, 3, 4, 5], [5, 4, 3, 2, 1], exponents=(0.3,))
    with pytest.raises(ValueError, match=r"d must be > 0 everywhere"):
        fit_loss_surface([1, 2, 3, 4, 5, 6], [1, 2, 3, 4, 5, 0], [6, 5, 4, 3, 2, 1])


# ---- the frontier -------------------------------------------------------------------------------


def test_pareto_frontier_keeps_the_points_no_cheaper_point_beats():
    compute = [5.0, 1.0, 2.0, 3.0, 4.0, 6.0, 2.0]
    loss = [2.5, 4.0, 3.0, 3.5, 2.0, 2.2, 3.1]
    # left out, each beaten by a cheaper point: (2, 3.1), a tie in compute; (3, 3.5); (5, 2.5); (6, 2.2)
    assert list(pareto_frontier(compute, loss)) == [1, 2, 4]
    assert list(pareto_frontier([1.0, 2.0, 3.0], [3.0, 2.0, 1.0])) == [0, 1, 2]  # every point improves
    assert list(pareto_frontier([1.0, 2.0, 3.0], [1.0, 2.0, 3.0])) == [0]  # the cheapest is best
    with pytest.raises(ValueError, match=r"need one value per point"):
        pareto_frontier([1.0, 2.0], [1.0])


@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(st.floats(1, 1e6), st.floats(0.1, 10)), min_size=1, max_size=30))
def test_pareto_frontier_falls_and_dominates_every_other_point(points):
    compute, loss = np.array(points).T
    front = pareto_frontier(compute, loss)
    assert np.all(np.diff(compute[front]) > 0) and np.all(np.diff(loss[front]) < 0)
    for i in set(range(len(compute))) - set(front):  # each left-out point has a cheaper, no worse one
        assert np.any((compute[front] <= compute[i]) & (loss[front] <= loss[i]))


# ---- training runs ------------------------------------------------------------------------------

CONFIG = TransformerConfig(n_layer=1, d_model=16, n_head=2, vocab_size=11, context_length=8, positions="rotary")


def toy_text(length, seed):
    """A text where each id follows from the one before, mostly: learnable in a few steps."""
    rng = np.random.default_rng(seed)
    ids = np.empty(length, dtype=np.int64)
    ids[0] = 0
    for i in range(1, length):
        ids[i] = (ids[i - 1] + 1) % 11 if rng.random() < 0.9 else rng.integers(11)
    return ids


def test_non_embedding_params_leave_out_the_embedding_tables():
    model = GPT(CONFIG)
    counted = sum(p.numel() for name, p in model.named_parameters() if not name.startswith(("wte", "wpe")))
    assert non_embedding_params(CONFIG) == counted
    learned = TransformerConfig(1, 16, 2, 11, 8, positions="learned")
    assert non_embedding_params(learned) == count_params(learned) - 11 * 16 - 8 * 16
    untied = TransformerConfig(1, 16, 2, 11, 8, tied_embeddings=False)
    assert non_embedding_params(untied) == count_params(untied) - 11 * 16 - 8 * 16  # the head counts


def test_checkpoints_count_tokens_and_flops_and_the_loss_falls():
    train, validation = toy_text(3000, 0), toy_text(400, 1)
    with torch.random.fork_rng():
        runs = [train_with_checkpoints(CONFIG, train, validation, [5, 40], batch_size=4, lr=1e-2) for _ in range(2)]
    first, last = runs[0]
    assert isinstance(last, Checkpoint) and (first.step, last.step) == (5, 40)
    assert last.tokens == 40 * 4 * 8
    assert last.params == non_embedding_params(CONFIG) and last.params_total == count_params(CONFIG)
    assert last.flops == 6 * last.params * last.tokens
    assert last.flops_matmul == 3 * forward_flops_per_token(CONFIG) * last.tokens
    assert first.loss > last.loss and last.loss < 0.8 * math.log(11)  # below uniform guessing
    assert last.bits_per_character == pytest.approx(last.loss / math.log(2))
    assert 0 < first.cpu_seconds <= last.cpu_seconds
    # deterministic: the same arguments give the same losses
    assert [c.loss for c in runs[0]] == [c.loss for c in runs[1]]


def test_validation_loss_is_the_mean_cross_entropy_over_whole_windows():
    torch.manual_seed(0)
    model = GPT(CONFIG)
    ids = toy_text(8 * 5 + 3, 2)  # 5 whole windows, 2 characters left over
    with torch.no_grad():
        logits, _ = model(torch.from_numpy(ids[:40]).view(5, 8))
    manual = torch.nn.functional.cross_entropy(logits.flatten(0, 1), torch.from_numpy(ids[1:41]))
    assert validation_loss(model, ids, 8) == pytest.approx(float(manual), rel=1e-6)
    with pytest.raises(ValueError, match="need more than context = 8 ids to evaluate, got 8"):
        validation_loss(model, ids[:8], 8)


def test_log_spaced_steps_and_training_errors():
    assert log_spaced_steps(1000, 4) == (10, 46, 215, 1000)
    assert log_spaced_steps(12, 20, first=10) == (10, 11, 12)
    with pytest.raises(ValueError, match="first must be <= last, got first=10, last=5"):
        log_spaced_steps(5, 3)
    train = toy_text(100, 0)
    with pytest.raises(ValueError, match="checkpoints must hold at least one step"):
        train_with_checkpoints(CONFIG, train, train, [])
    with pytest.raises(ValueError, match="checkpoint step must be >= 1, got 0"):
        train_with_checkpoints(CONFIG, train, train, [0, 5])
    with pytest.raises(TypeError, match=r"config must be a dlbook\.scaling\.TransformerConfig, got dict"):
        train_with_checkpoints({"n_layer": 1}, train, train, [5])
    with pytest.raises(ValueError, match=r"train must hold more than context_length \+ 1 = 9 ids, got 9"):
        train_with_checkpoints(CONFIG, train[:9], train, [5])


def test_the_optimal_size_exponent_error_is_the_delta_method_and_matches_the_spread_of_refits():
    rng = np.random.default_rng(5)
    refits = [fit_loss_surface(*surface_points(rng, noise=0.01)) for _ in range(60)]
    first = refits[0]
    alpha, beta = first.fit.alpha, first.fit.beta
    gradient = np.array([-beta, alpha]) / (alpha + beta) ** 2
    assert first.n_opt_exponent_se == pytest.approx(math.sqrt(gradient @ first.covariance[3:, 3:] @ gradient))
    assert first.covariance.shape == (5, 5)
    spread = np.std([r.n_opt_exponent for r in refits])
    assert spread == pytest.approx(np.median([r.n_opt_exponent_se for r in refits]), rel=0.35)


def test_the_fits_do_not_import_torch():
    """Fitting a scaling law needs NumPy (and scipy), not PyTorch."""
    import subprocess
    import sys

    code = "import sys, dlbook.scaling_laws; print('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"
