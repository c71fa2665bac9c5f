"""Data sets the book generates itself, seeded, so nothing is downloaded."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from dlbook._validation import require_int, require_nonnegative


def make_linear_regression(
    n_samples: int, n_features: int, noise: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """Draw y = X w + b + noise with standard-normal features and known w, b.

    Returns X: (N, D) float64, y: (N,) float64, the true w: (D,) and the true b.
    """
    n_samples = require_int("n_samples", n_samples, minimum=1)
    n_features = require_int("n_features", n_features, minimum=1)
    noise = require_nonnegative("noise", noise)
    true_w = rng.normal(size=n_features)
    true_b = float(rng.normal())
    X = rng.normal(size=(n_samples, n_features))
    y = X @ true_w + true_b + noise * rng.normal(size=n_samples)
    return X, y, true_w, true_b


def minibatch_indices(n_samples: int, batch_size: int, rng: np.random.Generator) -> Iterator[np.ndarray]:
    """One epoch: a fresh shuffle of range(n_samples), cut into batches of `batch_size`.

    The last batch is smaller when batch_size does not divide n_samples.
    """
    # Checked here, at the call, not at the first batch deep inside a training loop.
    n_samples = require_int("n_samples", n_samples, minimum=1)
    batch_size = require_int("batch_size", batch_size, minimum=1)
    return _batches(rng.permutation(n_samples), batch_size)


def _batches(order: np.ndarray, batch_size: int) -> Iterator[np.ndarray]:
    for start in range(0, len(order), batch_size):
        yield order[start : start + batch_size]
