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


SPIRAL_TURN = 4.0  # radians an arm of make_spirals turns on its way from the centre to radius 1


def make_spirals(
    n_per_class: int, n_classes: int, noise: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Points on `n_classes` spiral arms wound around each other: a set no straight line separates.

    Arm k holds n_per_class points at radii evenly spaced from 0 to 1; a point at radius r sits at
    angle 2 pi k / n_classes + SPIRAL_TURN * r + noise * z, z ~ N(0, 1), so `noise` blurs the arms
    sideways and the arms, rotated copies of each other, interleave.
    Returns X: (n_classes * n_per_class, 2) float64 and y: (n_classes * n_per_class,) int64, arm by
    arm (class 0 first).
    """
    n_per_class = require_int("n_per_class", n_per_class, minimum=1)
    n_classes = require_int("n_classes", n_classes, minimum=1)
    noise = require_nonnegative("noise", noise)
    radius = np.tile(np.linspace(0.0, 1.0, n_per_class), n_classes)  # (N,)
    y = np.repeat(np.arange(n_classes, dtype=np.int64), n_per_class)  # (N,)
    angle = 2 * np.pi * y / n_classes + SPIRAL_TURN * radius + noise * rng.normal(size=y.shape)
    X = radius[:, None] * np.stack([np.cos(angle), np.sin(angle)], axis=1)  # (N, 2)
    return X, y


def make_moons(n_samples: int, noise: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Two interleaving half circles of radius 1, as in scikit-learn's `make_moons`.

    Class 0 lies on the upper half circle centred at (0, 0); class 1 on the lower half circle
    centred at (1, 0.5), which reaches into the first. Each class holds half of the points (class 0
    one more when n_samples is odd), evenly spaced along its arc, then Gaussian noise of standard
    deviation `noise` is added to both coordinates.
    Returns X: (n_samples, 2) float64 and y: (n_samples,) int64, class 0 first.
    """
    n_samples = require_int("n_samples", n_samples, minimum=2)
    noise = require_nonnegative("noise", noise)
    n_upper = (n_samples + 1) // 2
    upper = np.linspace(0.0, np.pi, n_upper)
    lower = np.linspace(0.0, np.pi, n_samples - n_upper)
    X = np.concatenate(
        [
            np.stack([np.cos(upper), np.sin(upper)], axis=1),  # (n_upper, 2)
            np.stack([1 - np.cos(lower), 0.5 - np.sin(lower)], axis=1),  # (n_samples - n_upper, 2)
        ]
    )
    y = np.repeat(np.array([0, 1], dtype=np.int64), [n_upper, n_samples - n_upper])
    return X + noise * rng.normal(size=X.shape), y
