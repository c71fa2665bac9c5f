"""Seeding and device choice, shared by every chapter."""

from __future__ import annotations

import random

import numpy as np
import torch


def seed_everything(seed: int) -> np.random.Generator:
    """Seed Python's and PyTorch's generators and return a NumPy Generator with the same seed.

    NumPy code in the book takes this Generator explicitly rather than using a global one.
    """
    random.seed(seed)
    torch.manual_seed(seed)
    return np.random.default_rng(seed)


def default_device() -> torch.device:
    """CUDA when a GPU is present, else the CPU: the same notebook runs on both."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def environment_summary() -> str:
    """One line naming the versions and the device a notebook ran with, for the foot of each page."""
    import platform

    import matplotlib

    import dlbook

    return (
        f"Python {platform.python_version()} · NumPy {np.__version__} · PyTorch {torch.__version__} · "
        f"matplotlib {matplotlib.__version__} · dlbook {dlbook.__version__} · device: {default_device().type}"
    )
