"""Cost models of distributed training: time of an all-reduce, idle time of a pipeline, memory per
rank under ZeRO. Pure arithmetic (NumPy only), the predictions that the measurements of section
6.3 are put against.

- `ring_all_reduce_seconds`: the alpha-beta model of a ring all-reduce,
  2 (p - 1) (alpha + n / (p B)) for n bytes on p workers, alpha the latency of one message and B
  the bandwidth of one link (Thakur et al. 2005; Patarasuk and Yuan 2009).
- `fit_alpha_beta`: alpha and B from measured times.
- `bubble_fraction`, `gpipe_schedule`: GPipe's schedule of m micro-batches on p stages and the
  share of it that each stage spends idle, (p - 1) / (m + p - 1) (Huang et al. 2019).
- `zero_bytes_per_rank`: the bytes per rank of mixed-precision Adam under ZeRO stages 0 to 3
  (Rajbhandari et al. 2020), 2 + 2 + 12 bytes per parameter, divided among p ranks.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from dlbook._validation import require_int, require_positive, require_real

__all__ = [
    "AlphaBeta",
    "PipelineEvent",
    "ZeroMemory",
    "bubble_fraction",
    "fit_alpha_beta",
    "gpipe_schedule",
    "idle_fraction",
    "ring_all_reduce_seconds",
    "zero_bytes_per_rank",
]


# ---- all-reduce ------------------------------------------------------------------------------


@dataclass(frozen=True)
class AlphaBeta:
    """The two constants of a network: alpha, seconds per message (latency); bandwidth, bytes per
    second that one link carries (beta = 1 / bandwidth, seconds per byte)."""

    alpha: float
    bandwidth: float


def ring_all_reduce_seconds(
    n_bytes: float | np.ndarray, world_size: int, alpha: float, bandwidth: float
) -> float | np.ndarray:
    """The time of a ring all-reduce of n_bytes on world_size workers, 2 (p - 1) steps each sending
    one chunk of n / p bytes: 2 (p - 1) (alpha + n / (p bandwidth)). Works on arrays of sizes.
    One worker communicates nothing (0 s)."""
    p = require_int("world_size", world_size, minimum=1)
    alpha = require_real("alpha", alpha)
    bandwidth = require_positive("bandwidth", bandwidth)
    n = np.asarray(n_bytes, dtype=np.float64)
    if np.any(n < 0):
        raise ValueError(f"n_bytes must be >= 0, got {n_bytes!r}")
    seconds = 2 * (p - 1) * (alpha + n / (p * bandwidth))
    return float(seconds) if seconds.ndim == 0 else seconds


def fit_alpha_beta(n_bytes: np.ndarray, seconds: np.ndarray, world_size: int) -> AlphaBeta:
    """Fit the ring model to measured all-reduce times of messages of n_bytes (k,) taking seconds
    (k,) on world_size >= 2 workers. The model is linear in alpha and 1 / bandwidth; the fit minimises
    the squared *relative* error, so that the microsecond times of small messages count as much as
    the millisecond times of large ones (what a log-log plot shows)."""
    p = require_int("world_size", world_size, minimum=2)
    n = np.asarray(n_bytes, dtype=np.float64)
    t = np.asarray(seconds, dtype=np.float64)
    if n.ndim != 1 or n.shape != t.shape or len(n) < 2:
        raise ValueError(
            f"n_bytes and seconds must be 1-D arrays of the same length >= 2, got shapes {n.shape} and {t.shape}"
        )
    if np.any(t <= 0) or np.any(n < 0):
        raise ValueError("the times must be > 0 and the sizes >= 0")
    design = np.stack([2 * (p - 1) * np.ones_like(n), 2 * (p - 1) * n / p], axis=1) / t[:, None]
    (alpha, beta), *_ = np.linalg.lstsq(design, np.ones_like(t), rcond=None)
    if beta <= 0:
        raise ValueError("the times do not grow with the message size: no bandwidth can be fitted")
    return AlphaBeta(alpha=float(alpha), bandwidth=float(1 / beta))


# ---- pipelines -------------------------------------------------------------------------------


@dataclass(frozen=True)
class PipelineEvent:
    """One stage's work on one micro-batch: kind "forward" or "backward", from start to end (s)."""

    stage: int
    kind: str
    micro_batch: int
    start: float
    end: float


def bubble_fraction(stages: int, micro_batches: int) -> float:
    """The share of a GPipe step that each stage spends idle: (p - 1) / (m + p - 1) for p stages
    and m micro-batches (Huang et al. 2019), whatever the forward and backward times."""
    p = require_int("stages", stages, minimum=1)
    m = require_int("micro_batches", micro_batches, minimum=1)
    return (p - 1) / (m + p - 1)


def gpipe_schedule(
    stages: int, micro_batches: int, forward_seconds: float = 1.0, backward_seconds: float = 2.0
) -> list[PipelineEvent]:
    """GPipe's schedule, each operation as early as its inputs allow: all m forward passes flow
    through the p stages, then all backward passes flow back, last micro-batch first. Stage s runs
    micro-batch j's forward once stage s - 1 has run it, and its backward once stage s + 1 has (the
    last stage starts backward after its last forward). Communication is taken as free."""
    p = require_int("stages", stages, minimum=1)
    m = require_int("micro_batches", micro_batches, minimum=1)
    f, b = require_positive("forward_seconds", forward_seconds), require_positive("backward_seconds", backward_seconds)
    done = np.zeros((p, m))  # when stage s finished micro-batch j's forward
    events, free = [], np.zeros(p)  # when each stage is next free
    for j in range(m):
        for s in range(p):
            start = max(free[s], done[s - 1, j] if s else 0.0)
            done[s, j], free[s] = start + f, start + f
            events.append(PipelineEvent(s, "forward", j, start, start + f))
    back = np.zeros((p, m))
    for j in reversed(range(m)):
        for s in reversed(range(p)):
            start = max(free[s], back[s + 1, j] if s < p - 1 else 0.0)
            back[s, j], free[s] = start + b, start + b
            events.append(PipelineEvent(s, "backward", j, start, start + b))
    return sorted(events, key=lambda e: (e.start, e.stage))


def idle_fraction(events: list[PipelineEvent]) -> float:
    """The share of the step (first start to last end) that the stages spend idle, averaged over
    stages: 1 - busy time / (stages x span)."""
    if not events:
        raise ValueError("events must hold at least one PipelineEvent")
    span = max(e.end for e in events) - min(e.start for e in events)
    stages = len({e.stage for e in events})
    busy = sum(e.end - e.start for e in events)
    return 1 - busy / (stages * span)


# ---- ZeRO ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ZeroMemory:
    """Bytes per rank of a model's training state (activations excluded)."""

    parameters: float
    gradients: float
    optimizer_state: float

    @property
    def total(self) -> float:
        return sum(getattr(self, field.name) for field in fields(self))


def zero_bytes_per_rank(
    n_params: float,
    world_size: int,
    stage: int,
    parameter_bytes: float = 2,
    gradient_bytes: float = 2,
    optimizer_bytes: float = 12,
) -> ZeroMemory:
    """The training state per rank of a model of n_params parameters on world_size data-parallel
    ranks under ZeRO `stage` (Rajbhandari et al. 2020): mixed-precision Adam holds 16-bit
    parameters (2 bytes) and gradients (2) and, in the optimizer, a float32 master copy, momentum and
    variance (4 + 4 + 4 = 12). Stage 0 (plain data parallelism) replicates all of it; stage 1 shards
    the optimizer state over the ranks, stage 2 the gradients too, stage 3 the parameters too
    (what FSDP does): a sharded part costs its bytes / world_size per rank."""
    n = require_positive("n_params", n_params)
    p = require_int("world_size", world_size, minimum=1)
    stage = require_int("stage", stage)
    if stage > 3:
        raise ValueError(f"stage must be 0, 1, 2 or 3, got {stage}")

    def shard(bytes_per_param: float, sharded: bool) -> float:
        return n * bytes_per_param / (p if sharded else 1)

    return ZeroMemory(
        parameters=shard(parameter_bytes, stage >= 3),
        gradients=shard(gradient_bytes, stage >= 2),
        optimizer_state=shard(optimizer_bytes, stage >= 1),
    )
