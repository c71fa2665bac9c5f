"""Training tiny GPTs for a scaling sweep: one run per model, measured at checkpoints (chapter "Scaling up").

`train_with_checkpoints(config, train, validation, steps, checkpoints)` trains `dlbook.torch.gpt.GPT`
on a character corpus as section 5.4 does (random windows, AdamW, a linear warm-up, gradient
clipping, then a constant learning rate) and at each checkpoint step records a `Checkpoint`: the
model's size, the tokens it has seen, the compute spent, its validation loss and the processor time.
Checkpoints along one run with a constant learning rate are the cheap way to measure loss against
compute for every model size (Kaplan et al. 2020, figure 1); Hoffmann et al. (2022) trained one run
per budget with a learning rate decayed to that budget, which lowers each point a little.

Everything is seeded: the same arguments on the same machine, single-threaded, give the same losses.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from dlbook._validation import require_int, require_nonnegative, require_positive
from dlbook.scaling import TransformerConfig, count_params, count_params_breakdown, forward_flops_per_token
from dlbook.torch.gpt import GPT

__all__ = [
    "Checkpoint",
    "log_spaced_steps",
    "non_embedding_params",
    "train_with_checkpoints",
    "validation_loss",
]


def non_embedding_params(config: TransformerConfig) -> int:
    """The parameters of `GPT(config)` outside the token and position embeddings, Kaplan et al.'s N.

    A tied head shares the token embedding, so it is left out too; an untied head is counted (it is
    a matrix multiplied at every token). Norms count: they are a few hundred numbers at most here.
    """
    return count_params(config) - count_params_breakdown(config)["embeddings"]


@dataclass(frozen=True)
class Checkpoint:
    """One model measured at one point of its training run.

    params: non-embedding parameters N (Kaplan et al.'s count); params_total: all of them.
    tokens: D, the characters predicted in training so far (steps x batch x context).
    flops: C = 6 N D with the non-embedding N (Kaplan et al.'s estimate of training compute);
    flops_matmul: 3 x `forward_flops_per_token` x D, every matrix product of the forward and
    backward passes, the head and attention's scores included.
    loss: mean validation cross-entropy in nats per character; cpu_seconds: processor time spent in
    training steps so far (evaluations excluded).
    """

    step: int
    tokens: int
    params: int
    params_total: int
    flops: float
    flops_matmul: float
    loss: float
    cpu_seconds: float

    @property
    def bits_per_character(self) -> float:
        return self.loss / math.log(2)


def log_spaced_steps(last: int, count: int, first: int = 10) -> tuple[int, ...]:
    """About `count` distinct integers from `first` to `last`, evenly spaced on a log scale
    (rounded, duplicates dropped), ending at `last`."""
    last = require_int("last", last, minimum=1)
    count = require_int("count", count, minimum=1)
    first = require_int("first", first, minimum=1)
    if first > last:
        raise ValueError(f"first must be <= last, got first={first}, last={last}")
    return tuple(sorted({round(float(s)) for s in np.geomspace(first, last, count)} | {last}))


def validation_loss(model: GPT, ids: np.ndarray, context: int) -> float:
    """Mean cross-entropy (nats per character) of `model` on consecutive windows of `context`
    characters of ids (M,) int64: the first len(ids) - 1 characters, cut to whole windows, each
    predicting the next character; every window starts without earlier context."""
    context = require_int("context", context, minimum=1)
    n_windows = (len(ids) - 1) // context
    if n_windows < 1:
        raise ValueError(f"need more than context = {context} ids to evaluate, got {len(ids)}")
    windows = torch.from_numpy(np.ascontiguousarray(ids[: n_windows * context + 1], dtype=np.int64))
    inputs, targets = windows[:-1].view(n_windows, context), windows[1:].view(n_windows, context)
    was_training = model.training
    model.eval()
    with torch.no_grad():
        _, loss = model(inputs, targets)
    model.train(was_training)
    return float(loss)


def train_with_checkpoints(
    config: TransformerConfig,
    train: np.ndarray,
    validation: np.ndarray,
    checkpoints: Sequence[int],
    batch_size: int = 32,
    lr: float = 3e-3,
    warmup_steps: int = 30,
    weight_decay: float = 0.01,
    seed: int = 0,
) -> list[Checkpoint]:
    """Train `GPT(config)` for max(checkpoints) steps and measure it at every checkpoint step.

    train, validation: (M,) int64 character ids (`dlbook.text.split`). Each step draws batch_size
    random windows of config.context_length + 1 characters from train (a generator seeded with
    seed + 1), predicts every character of each from the ones before, and takes an AdamW step
    (weight_decay, gradients clipped to norm 1) at learning rate lr, reached linearly over the
    first warmup_steps steps. The model's weights are drawn after torch.manual_seed(seed).
    Returns one `Checkpoint` per checkpoint step, in increasing order; validation loss by
    `validation_loss` on all of validation.
    """
    if not isinstance(config, TransformerConfig):
        raise TypeError(f"config must be a dlbook.scaling.TransformerConfig, got {type(config).__name__}")
    steps = sorted({require_int("checkpoint step", s, minimum=1) for s in checkpoints})
    if not steps:
        raise ValueError("checkpoints must hold at least one step, got none")
    batch_size = require_int("batch_size", batch_size, minimum=1)
    lr = require_positive("lr", lr)
    warmup_steps = require_int("warmup_steps", warmup_steps, minimum=1)
    weight_decay = require_nonnegative("weight_decay", weight_decay)
    context = config.context_length
    if len(train) <= context + 1:
        raise ValueError(f"train must hold more than context_length + 1 = {context + 1} ids, got {len(train)}")

    n, n_total = non_embedding_params(config), count_params(config)
    matmul_per_token = 3 * forward_flops_per_token(config, context)  # forward, and twice that backward
    torch.manual_seed(seed)
    model = GPT(config)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: min(1.0, (step + 1) / warmup_steps))
    window_rng, data = np.random.default_rng(seed + 1), torch.from_numpy(np.asarray(train, dtype=np.int64))
    offsets = torch.arange(context + 1)
    results, clock = [], 0.0
    for step in range(1, steps[-1] + 1):
        started = time.process_time()
        starts = torch.from_numpy(window_rng.integers(0, len(train) - context - 1, size=batch_size))
        window = data[starts[:, None] + offsets]  # (batch_size, context + 1)
        _, loss = model(window[:, :-1], window[:, 1:])
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        clock += time.process_time() - started
        if step in steps:
            tokens = step * batch_size * context
            results.append(
                Checkpoint(
                    step=step,
                    tokens=tokens,
                    params=n,
                    params_total=n_total,
                    flops=6.0 * n * tokens,
                    flops_matmul=float(matmul_per_token * tokens),
                    loss=validation_loss(model, validation, context),
                    cpu_seconds=clock,
                )
            )
    return results
