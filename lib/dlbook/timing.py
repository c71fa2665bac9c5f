"""Side-by-side timing: how the book measures "the NumPy code is N times slower than PyTorch".

A shared machine is noisy: another process, a frequency change or a garbage collection can slow one
call by 2x. Timing function A for a while and then B for a while lets that noise land on one side
only. `compare` therefore interleaves: every round calls each function once, and a ratio is taken
round by round (A's time in round r over B's time in round r) before the median over rounds, so that
slow periods of the machine cancel out of the ratio. The spread reported is the interquartile range.

Within a round each function runs `number` times back to back and its time is the mean call. The
thread pools of NumPy's BLAS and of PyTorch keep spinning for a moment after they finish, and the
first call after a switch pays for the other library's spinning threads; a block of calls makes
that a small share of the time, as it is in a real program that runs one library at a time.

`single_threaded()` goes further and gives both libraries one core, the cleanest comparison of two
kernels: neither waits on the other's idle threads, and on a 2-core machine that runs two notebooks
at once (as the book's tests do) neither fights for cores it does not have.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

from dlbook._validation import require_int


@dataclass(frozen=True)
class Spread:
    """A median with its interquartile range (the middle half of the repeats)."""

    median: float
    low: float  # 25th percentile
    high: float  # 75th percentile

    @classmethod
    def of(cls, values: np.ndarray) -> Spread:
        low, median, high = np.percentile(values, [25, 50, 75])
        return cls(float(median), float(low), float(high))

    def __format__(self, spec: str) -> str:
        spec = spec or ".3g"
        return f"{self.median:{spec}} [{self.low:{spec}}, {self.high:{spec}}]"


@dataclass(frozen=True)
class Comparison:
    """Per-round times in seconds: times[name][r] is the time of function `name` in round r."""

    times: Mapping[str, np.ndarray]

    def seconds(self, name: str) -> Spread:
        return Spread.of(self._times(name))

    def ratio(self, name: str, reference: str) -> Spread:
        """How many times slower `name` is than `reference`, round by round."""
        return Spread.of(self._times(name) / self._times(reference))

    def _times(self, name: str) -> np.ndarray:
        if name not in self.times:
            raise KeyError(f"no timing called {name!r}; the timings are {sorted(self.times)}")
        return self.times[name]


def compare(
    functions: Mapping[str, Callable[[], object]], repeats: int = 15, number: int = 5, warmup: int = 2
) -> Comparison:
    """Time each function in `repeats` rounds of `number` calls, interleaved round by round, after
    `warmup` untimed rounds; times are per call.

    functions: name -> a function of no arguments (wrap the call in a lambda). Warm-up rounds let
    caches, allocators and thread pools settle, so the first call's set-up cost is not counted.
    """
    repeats = require_int("repeats", repeats, minimum=1)
    number = require_int("number", number, minimum=1)
    warmup = require_int("warmup", warmup, minimum=0)
    if not functions:
        raise ValueError("compare needs at least one function to time")
    for _ in range(warmup * number):
        for function in functions.values():
            function()
    times = {name: np.empty(repeats) for name in functions}
    for round_index in range(repeats):
        for name, function in functions.items():
            start = time.perf_counter()
            for _ in range(number):
                function()
            times[name][round_index] = (time.perf_counter() - start) / number
    return Comparison(times)


@contextmanager
def single_threaded() -> Iterator[None]:
    """Run the body with one thread for NumPy's BLAS and one for PyTorch; restore both afterwards."""
    import torch
    from threadpoolctl import threadpool_limits  # installed with scikit-learn

    torch_threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with threadpool_limits(limits=1):
            yield
    finally:
        torch.set_num_threads(torch_threads)
