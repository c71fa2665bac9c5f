"""Fitting scaling laws: power laws with error bars, and Hoffmann et al.'s loss surface (chapter "Scaling up").

- `fit_power_law(x, y, irreducible)`: y = E + a x^(-alpha), fitted by least squares on log y, with
  standard errors from the covariance of the fit. With irreducible=None (E = 0) or a given E it is
  a straight line on a log-log plot, fitted in closed form; with irreducible="fit" E is fitted too.
- `fit_loss_surface(n, d, loss)`: L(N, D) = E + A / N^alpha + B / D^beta (Hoffmann et al. 2022,
  approach 3) fitted to measured losses, as a `dlbook.scaling.ChinchillaFit` with standard errors,
  so that `dlbook.scaling.chinchilla_optimal(C, fit)` gives the measured compute-optimal trade-off.
- `pareto_frontier(compute, loss)`: the compute-efficient frontier of measured checkpoints, the
  points no cheaper point beats (Kaplan et al. 2020, figure 1).

The standard errors are the usual ones of least squares: the residuals' variance times the inverse
of J^T J (J the Jacobian of the fitted curve in its parameters, the design matrix for a line). They
assume independent residuals of equal spread around the right curve; checkpoints along one training
run are neither quite independent nor quite on the curve, so read them as a lower bound on the
uncertainty. The nonlinear fits use scipy (installed with scikit-learn) and import it when called.
Pure NumPy otherwise: nothing here imports torch.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from dlbook._validation import require_positive, require_real
from dlbook.scaling import ChinchillaFit

__all__ = [
    "LossSurfaceFit",
    "PowerLawFit",
    "fit_loss_surface",
    "fit_power_law",
    "pareto_frontier",
]


def _positive_vector(name: str, value: object) -> np.ndarray:
    array = np.asarray(value, dtype=np.float64)
    if array.ndim != 1:
        raise ValueError(f"{name} must be a 1-D sequence of numbers, got shape {array.shape}")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} must be finite, got {array[~np.isfinite(array)][:3]}")
    if np.any(array <= 0):
        raise ValueError(
            f"{name} must be > 0 everywhere (a power law is fitted on a log scale), "
            f"got {array[array <= 0][:3]} at positions {np.flatnonzero(array <= 0)[:3]}"
        )
    return array


def _same_length(**arrays: np.ndarray) -> None:
    lengths = {name: len(array) for name, array in arrays.items()}
    if len(set(lengths.values())) > 1:
        raise ValueError(f"need one value per point: got lengths {lengths}")


# ---- one power law ------------------------------------------------------------------------------


@dataclass(frozen=True)
class PowerLawFit:
    """y = irreducible + coefficient * x^(-exponent), with standard errors.

    exponent_se and coefficient_se are the standard errors of the fit; irreducible_se is 0 when
    the irreducible term was given (or is 0), not fitted. residual_std is the spread of the
    residuals of log y (the fit's noise level: 0.05 is about 5%), n_points the number of points.
    """

    exponent: float
    coefficient: float
    irreducible: float
    exponent_se: float
    coefficient_se: float
    irreducible_se: float
    residual_std: float
    n_points: int

    def predict(self, x: float | Sequence[float] | np.ndarray) -> np.ndarray:
        """The fitted y at x (> 0): a float64 array of x's shape."""
        x = np.asarray(x, dtype=np.float64)
        if np.any(x <= 0):
            raise ValueError(f"x must be > 0, got {x[x <= 0][:3]}")
        return self.irreducible + self.coefficient * x ** (-self.exponent)

    def exponent_interval(self, z: float = 1.96) -> tuple[float, float]:
        """exponent -/+ z standard errors: the 95% interval for z = 1.96 (normal approximation)."""
        z = require_positive("z", z)
        return self.exponent - z * self.exponent_se, self.exponent + z * self.exponent_se


def fit_power_law(
    x: Sequence[float] | np.ndarray,
    y: Sequence[float] | np.ndarray,
    irreducible: float | str | None = None,
) -> PowerLawFit:
    """Fit y = E + a x^(-alpha) by least squares on log y; x, y: (M,) positive numbers.

    irreducible:
    - None: E = 0, a straight line log y = log a - alpha log x (needs M >= 3 for error bars);
    - a number E: the same line through log(y - E), every y must exceed E;
    - "fit": E fitted too (M >= 4), by nonlinear least squares from the best of a grid of starting
      values of E, with 0 <= E < min(y).

    The standard errors come from the covariance of the fit (see the module's docstring); the
    coefficient's is propagated from that of log a (se(a) = a se(log a)). Residuals are taken on
    log y, so that every point counts by its relative error, as on a log-log plot.
    """
    x, y = _positive_vector("x", x), _positive_vector("y", y)
    _same_length(x=x, y=y)
    if isinstance(irreducible, str):
        if irreducible != "fit":
            raise ValueError(f'irreducible must be None, a number or "fit", got {irreducible!r}')
        return _fit_with_irreducible(x, y)
    e = 0.0 if irreducible is None else require_real("irreducible", irreducible)
    if e < 0:
        raise ValueError(f"irreducible must be >= 0, got {e}")
    if np.any(y <= e):
        raise ValueError(
            f"every y must exceed the irreducible term {e}: log(y - E) is undefined at y = {y[y <= e][:3]}"
        )
    if len(x) < 3:
        raise ValueError(f"a power law with error bars needs at least 3 points, got {len(x)}")
    if np.ptp(np.log(x)) == 0:
        raise ValueError("x must take at least two different values to fit an exponent")
    design = np.column_stack([np.ones_like(x), -np.log(x)])  # log(y - E) = log a - alpha log x
    target = np.log(y - e)
    (log_a, alpha), *_ = np.linalg.lstsq(design, target, rcond=None)
    residuals = target - design @ np.array([log_a, alpha])
    dof = len(x) - 2
    variance = residuals @ residuals / dof
    covariance = variance * np.linalg.inv(design.T @ design)
    a = float(np.exp(log_a))
    return PowerLawFit(
        exponent=float(alpha),
        coefficient=a,
        irreducible=e,
        exponent_se=float(np.sqrt(covariance[1, 1])),
        coefficient_se=float(a * np.sqrt(covariance[0, 0])),
        irreducible_se=0.0,
        residual_std=float(np.sqrt(variance)),
        n_points=len(x),
    )


def _fit_with_irreducible(x: np.ndarray, y: np.ndarray) -> PowerLawFit:
    from scipy.optimize import least_squares

    if len(x) < 4:
        raise ValueError(f'irreducible="fit" has three parameters and needs at least 4 points, got {len(x)}')
    log_x, log_y, floor = np.log(x), np.log(y), float(y.min())

    def residuals(theta: np.ndarray) -> np.ndarray:  # theta = (E, log a, alpha)
        return np.log(theta[0] + np.exp(theta[1] - theta[2] * log_x)) - log_y

    # Starting values: for each E on a grid below min(y), the straight-line fit of log(y - E).
    best = None
    for share in (0.0, 0.3, 0.6, 0.8, 0.9, 0.95, 0.99):
        e = share * floor
        slope, intercept = np.polyfit(log_x, np.log(y - e), 1)
        start = np.array([e, intercept, -slope])
        cost = float(np.sum(residuals(start) ** 2))
        if best is None or cost < best[0]:
            best = (cost, start)
    start = best[1]
    start[0] = min(start[0], floor * (1 - 1e-9))
    result = least_squares(
        residuals, start, bounds=([0.0, -np.inf, -np.inf], [floor, np.inf, np.inf]), x_scale="jac", method="trf"
    )
    e, log_a, alpha = result.x
    dof = len(x) - 3
    variance = float(result.fun @ result.fun / dof)
    covariance = variance * np.linalg.pinv(result.jac.T @ result.jac)
    a = float(np.exp(log_a))
    return PowerLawFit(
        exponent=float(alpha),
        coefficient=a,
        irreducible=float(e),
        exponent_se=float(np.sqrt(covariance[2, 2])),
        coefficient_se=float(a * np.sqrt(covariance[1, 1])),
        irreducible_se=float(np.sqrt(covariance[0, 0])),
        residual_std=float(np.sqrt(variance)),
        n_points=len(x),
    )


# ---- the loss surface L(N, D) -------------------------------------------------------------------


@dataclass(frozen=True)
class LossSurfaceFit:
    """A fitted L(N, D) = E + A / N^alpha + B / D^beta: `fit` is the `ChinchillaFit` to pass to
    `dlbook.scaling.chinchilla_loss` and `chinchilla_optimal`; `se` maps each of "E", "A", "B",
    "alpha", "beta" to its standard error (0 for exponents held fixed); `covariance` is the (5, 5)
    covariance of (log E, log A, log B, alpha, beta) (zero rows and columns for fixed exponents);
    residual_std is the spread of the residuals of log L; n_points the number of points."""

    fit: ChinchillaFit
    se: Mapping[str, float]
    covariance: np.ndarray
    residual_std: float
    n_points: int

    @property
    def n_opt_exponent(self) -> float:
        """a in N_opt ∝ C^a: beta / (alpha + beta) (see `dlbook.scaling.chinchilla_optimal`);
        D_opt grows as C^(1 - a)."""
        return self.fit.beta / (self.fit.alpha + self.fit.beta)

    @property
    def n_opt_exponent_se(self) -> float:
        """The standard error of `n_opt_exponent`, propagated from the covariance of alpha and beta
        to first order (the delta method): the gradient of beta / (alpha + beta) in (alpha, beta)
        is (-beta, alpha) / (alpha + beta)^2."""
        alpha, beta = self.fit.alpha, self.fit.beta
        gradient = np.array([-beta, alpha]) / (alpha + beta) ** 2
        return float(np.sqrt(gradient @ self.covariance[3:, 3:] @ gradient))

    def predict(self, n: float | np.ndarray, d: float | np.ndarray) -> np.ndarray:
        """The fitted loss at N parameters and D tokens (broadcast together)."""
        n, d = np.asarray(n, dtype=np.float64), np.asarray(d, dtype=np.float64)
        f = self.fit
        return f.E + f.A / n**f.alpha + f.B / d**f.beta


def fit_loss_surface(
    n: Sequence[float] | np.ndarray,
    d: Sequence[float] | np.ndarray,
    loss: Sequence[float] | np.ndarray,
    exponents: tuple[float, float] | None = None,
) -> LossSurfaceFit:
    """Fit L(N, D) = E + A / N^alpha + B / D^beta to losses measured at N parameters and D tokens
    (each (M,), positive), by least squares on log L, as Hoffmann et al. (2022, approach 3) did
    (they used a Huber loss and a grid of starting points; here plain least squares from a grid).

    exponents=(alpha, beta) holds the exponents fixed (for instance at Hoffmann et al.'s) and fits
    E, A and B only: how well do someone else's exponents describe these measurements? Needs more
    points than parameters: M >= 6 with free exponents, M >= 4 with fixed ones.
    """
    from scipy.optimize import least_squares

    n, d, loss = _positive_vector("n", n), _positive_vector("d", d), _positive_vector("loss", loss)
    _same_length(n=n, d=d, loss=loss)
    fixed = exponents is not None
    if fixed:
        if not (isinstance(exponents, tuple | list) and len(exponents) == 2):
            raise ValueError(f"exponents must be a pair (alpha, beta), got {exponents!r}")
        fixed_alpha = require_positive("alpha", exponents[0])
        fixed_beta = require_positive("beta", exponents[1])
    n_params = 3 if fixed else 5
    if len(loss) <= n_params:
        raise ValueError(f"fitting {n_params} parameters needs at least {n_params + 1} points, got {len(loss)}")
    log_n, log_d, log_loss = np.log(n), np.log(d), np.log(loss)

    def unpack(theta: np.ndarray) -> tuple[float, float, float, float, float]:
        # theta = (log E, log A, log B[, alpha, beta]): logs keep E, A and B positive
        alpha, beta = (fixed_alpha, fixed_beta) if fixed else (theta[3], theta[4])
        return theta[0], theta[1], theta[2], alpha, beta

    def residuals(theta: np.ndarray) -> np.ndarray:
        log_e, log_a, log_b, alpha, beta = unpack(theta)
        return np.log(np.exp(log_e) + np.exp(log_a - alpha * log_n) + np.exp(log_b - beta * log_d)) - log_loss

    floor = float(loss.min())
    best = None
    for e_share in (0.2, 0.5, 0.8):
        for alpha0 in (0.2, 0.5, 1.0) if not fixed else (None,):
            for beta0 in (0.2, 0.5, 1.0) if not fixed else (None,):
                a_exp, b_exp = (fixed_alpha, fixed_beta) if fixed else (alpha0, beta0)
                # start with each term worth a third of the smallest loss at the smallest N and D
                log_a0 = np.log(floor / 3) + a_exp * log_n.min()
                log_b0 = np.log(floor / 3) + b_exp * log_d.min()
                start = np.array([np.log(e_share * floor), log_a0, log_b0, *(() if fixed else (alpha0, beta0))])
                lower = [-np.inf] * 3 + ([] if fixed else [1e-3, 1e-3])
                upper = [np.inf] * 3 + ([] if fixed else [5.0, 5.0])
                result = least_squares(residuals, start, bounds=(lower, upper), x_scale="jac", method="trf")
                if best is None or result.cost < best.cost:
                    best = result
    log_e, log_a, log_b, alpha, beta = unpack(best.x)
    variance = float(best.fun @ best.fun / (len(loss) - n_params))
    covariance = variance * np.linalg.pinv(best.jac.T @ best.jac)
    values = np.exp([log_e, log_a, log_b])
    errors = values * np.sqrt(np.diag(covariance)[:3])  # se(E) = E se(log E), and so on
    se = {"E": float(errors[0]), "A": float(errors[1]), "B": float(errors[2])}
    se["alpha"] = 0.0 if fixed else float(np.sqrt(covariance[3, 3]))
    se["beta"] = 0.0 if fixed else float(np.sqrt(covariance[4, 4]))
    full = np.zeros((5, 5))
    full[:n_params, :n_params] = covariance
    fit = ChinchillaFit(E=float(values[0]), A=float(values[1]), B=float(values[2]), alpha=alpha, beta=beta)
    return LossSurfaceFit(fit=fit, se=se, covariance=full, residual_std=float(np.sqrt(variance)), n_points=len(loss))


# ---- the compute-efficient frontier -------------------------------------------------------------


def pareto_frontier(compute: Sequence[float] | np.ndarray, loss: Sequence[float] | np.ndarray) -> np.ndarray:
    """The compute-efficient frontier of measured points: the indices of the points whose loss is
    lower than that of every point with less or equal compute, in order of increasing compute.

    compute, loss: (M,) positive, e.g. the checkpoints of several training runs together. Any
    checkpoint that costs at most C is within a budget of C (stop training there), so the best loss
    reachable with C is that of the last frontier point at or below C: a staircase that only falls.
    Between two frontier points nothing better was measured (Kaplan et al. 2020, figure 1, draw the
    lower envelope of the runs' curves, which is this staircase where the curves overlap).
    """
    compute, loss = _positive_vector("compute", compute), _positive_vector("loss", loss)
    _same_length(compute=compute, loss=loss)
    order = np.lexsort((loss, compute))  # by compute, the lower loss first among equal computes
    best_so_far = np.minimum.accumulate(loss[order])
    improves = np.concatenate([[True], loss[order][1:] < best_so_far[:-1]])
    return order[improves]
