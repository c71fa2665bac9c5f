"""Model FLOP utilisation (MFU) of the book's GPT: the share of the processor's measured matmul
throughput that training really uses.

MFU = (model FLOPs per training step / seconds per step) / (float32 matmul FLOP/s of the same
machine, one thread). Model FLOPs count the matrix products of the forward pass exactly
(`dlbook.scaling.forward_flops_per_token`, attention scores included) and three times that for a
training step (the backward pass costs twice the forward). Everything else a step does, the
softmax, the norms, the optimizer, Python, is overhead that lowers MFU.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass

import numpy as np
import torch

from dlbook.scaling import TransformerConfig, forward_flops_per_token
from dlbook.timing import single_threaded
from dlbook.torch.gpt import GPT

CONTEXT, BATCH, VOCABULARY = 64, 32, 103  # chapter 5.4's training setting

# chapter 5.4's tiny GPT, and a wider one whose matrices keep the processor busier
TINY = TransformerConfig(
    n_layer=2,
    d_model=64,
    n_head=4,
    vocab_size=VOCABULARY,
    context_length=CONTEXT,
    norm="layernorm",
    mlp="gelu",
    bias=True,
    tied_embeddings=True,
    positions="learned",
)
CONFIGS = {
    "tiny GPT of 5.4 (2 x 64)": TINY,
    "wider GPT (4 x 256)": dataclasses.replace(TINY, n_layer=4, d_model=256, d_ff=None),  # None: 4 x d_model again
}


@dataclass(frozen=True)
class MFUResult:
    name: str
    steps: int
    seconds_per_step: float  # median
    model_gflops: float  # achieved: model FLOPs per step / seconds per step, in GFLOP/s
    mfu: float  # model_gflops / the matmul reference


def measure_mfu(name: str, config: TransformerConfig, reference_gflops: float, steps: int) -> MFUResult:
    torch.manual_seed(0)
    model = GPT(config)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    rng = np.random.default_rng(0)
    tokens = torch.from_numpy(rng.integers(0, VOCABULARY, size=(BATCH, CONTEXT + 1)))
    flops_per_step = 3 * forward_flops_per_token(config, seq_len=CONTEXT) * BATCH * CONTEXT
    times = []
    with single_threaded():
        for step in range(steps + 2):  # two warm-up steps
            started = time.perf_counter()
            _, loss = model(tokens[:, :-1], tokens[:, 1:])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            if step >= 2:
                times.append(time.perf_counter() - started)
    seconds = float(np.median(times))
    achieved = flops_per_step / seconds / 1e9
    return MFUResult(name, steps, seconds, achieved, achieved / reference_gflops)


def measure_all(reference_gflops: float, steps: int) -> list[MFUResult]:
    return [measure_mfu(name, config, reference_gflops, steps) for name, config in CONFIGS.items()]


def render(results: list[MFUResult], reference_gflops: float) -> str:
    lines = [
        f"Model FLOP utilisation of a GPT training step (batch {BATCH} x {CONTEXT} tokens, one thread), "
        f"against PyTorch's 1024 x 1024 float32 matmul, {reference_gflops:.0f} GFLOP/s; the book's target: 30%"
    ]
    for result in results:
        lines.append(
            f"  {result.name:26} {result.seconds_per_step * 1e3:7.1f} ms per step, "
            f"{result.model_gflops:6.1f} GFLOP/s of model FLOPs, MFU {result.mfu:.0%}"
        )
    return "\n".join(lines)
