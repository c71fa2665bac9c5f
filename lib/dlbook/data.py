"""Data sets the book generates itself, seeded, or that ship inside a dependency: nothing is downloaded."""

from __future__ import annotations

from collections.abc import Iterator
from typing import NamedTuple

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


class Digits(NamedTuple):
    """Images (N, 1, H, W) with pixel values in [0, 1] and their classes (N,) int64, split in two."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


def load_digits(
    rng: np.random.Generator, test_fraction: float = 0.2, upsample: int = 2, dtype: type = np.float32
) -> Digits:
    """The 1,797 handwritten digits (8x8 pixels, 0-16 grey levels) bundled with scikit-learn, split
    into a training and a held-out test set with the same share of each class in both.

    upsample: each pixel becomes an upsample x upsample block (nearest neighbour), so 2 gives 16x16
    images, large enough for two 5x5 convolutions and two 2x2 poolings. Pixels are scaled to [0, 1].
    """
    from sklearn.datasets import load_digits as load_bundled  # imported here: only chapter 3 needs it

    upsample = require_int("upsample", upsample, minimum=1)
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must lie strictly between 0 and 1, got {test_fraction!r}")
    bundled = load_bundled()
    images = (bundled.images / 16).astype(dtype)  # (1797, 8, 8)
    images = images.repeat(upsample, axis=1).repeat(upsample, axis=2)[:, None]  # (1797, 1, 8u, 8u)
    labels = bundled.target.astype(np.int64)
    test = np.zeros(len(labels), dtype=bool)
    for digit in np.unique(labels):  # stratified: the same fraction of every class is held out
        members = rng.permutation(np.flatnonzero(labels == digit))
        test[members[: round(test_fraction * len(members))]] = True
    train_order, test_order = rng.permutation(np.flatnonzero(~test)), rng.permutation(np.flatnonzero(test))
    return Digits(images[train_order], labels[train_order], images[test_order], labels[test_order])


def random_shift(images: np.ndarray, max_shift: int, rng: np.random.Generator) -> np.ndarray:
    """Each image moved by its own random whole-pixel offset in [-max_shift, max_shift] along each
    axis, the pixels that enter from outside set to 0: data augmentation that teaches a network
    that a digit moved a little is the same digit. images: (N, C, H, W) -> a new (N, C, H, W)."""
    max_shift = require_int("max_shift", max_shift, minimum=0)
    n_images, _, height, width = images.shape
    padded = np.pad(images, ((0, 0), (0, 0), (max_shift, max_shift), (max_shift, max_shift)))
    rows, cols = rng.integers(0, 2 * max_shift + 1, size=(2, n_images))  # where each crop starts
    shifted = np.empty_like(images)
    for index in range(n_images):
        shifted[index] = padded[index, :, rows[index] : rows[index] + height, cols[index] : cols[index] + width]
    return shifted
