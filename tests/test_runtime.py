"""Seeding and device choice in `dlbook.runtime`."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from dlbook.runtime import default_device, seed_everything


@pytest.fixture(autouse=True)
def restore_global_generators():
    """seed_everything seeds Python's and torch's global generators: put them back afterwards."""
    python_state, torch_state = random.getstate(), torch.get_rng_state()
    yield
    random.setstate(python_state)
    torch.set_rng_state(torch_state)


def test_seed_everything_makes_torch_randn_reproducible():
    seed_everything(1234)
    first = torch.randn(5, 3)
    seed_everything(1234)
    again = torch.randn(5, 3)
    seed_everything(1235)
    other = torch.randn(5, 3)
    assert torch.equal(first, again)
    assert not torch.equal(first, other)


def test_seed_everything_returns_a_reproducible_numpy_generator_with_that_seed():
    rng = seed_everything(99)
    assert isinstance(rng, np.random.Generator)
    np.testing.assert_array_equal(rng.normal(size=10), seed_everything(99).normal(size=10))
    np.testing.assert_array_equal(seed_everything(99).normal(size=10), np.random.default_rng(99).normal(size=10))


def test_seed_everything_returns_a_fresh_generator_each_call():
    assert seed_everything(5) is not seed_everything(5)


def test_seed_everything_seeds_python_random():
    seed_everything(7)
    first = [random.random() for _ in range(5)]
    seed_everything(7)
    assert [random.random() for _ in range(5)] == first


def test_default_device_is_cpu_without_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert default_device() == torch.device("cpu")


def test_default_device_is_cuda_when_cuda_is_available(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert default_device() == torch.device("cuda")
    assert default_device().type == "cuda"
