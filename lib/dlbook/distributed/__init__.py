"""Distributed training (chapter 6.3): the collectives, the three ways to split training over
processes, and the scripts that run them with torch.distributed.

- `ring`: the ring all-reduce, simulated in NumPy and written with torch.distributed's messages.
- `costs`: the alpha-beta model of an all-reduce, GPipe's bubble, ZeRO's memory per rank.
- `tensor_parallel`: Megatron-style column- and row-parallel linear layers and MLP.
- `pipeline`: a GPT cut into stages, and GPipe's schedule over micro-batches.
- `launch`: `launch` runs torchrun from a notebook; `init_distributed` joins its process group.
- `train` (a script): the book's GPT with DistributedDataParallel or FSDP2, or in one process.
- `demos` (a script): the all-reduce, tensor- and pipeline-parallel runs of section 6.3.
"""

from dlbook.distributed.costs import (
    AlphaBeta,
    PipelineEvent,
    ZeroMemory,
    bubble_fraction,
    fit_alpha_beta,
    gpipe_schedule,
    idle_fraction,
    ring_all_reduce_seconds,
    zero_bytes_per_rank,
)
from dlbook.distributed.launch import DistributedContext, free_port, init_distributed, launch
from dlbook.distributed.ring import RingTrace, ring_all_reduce, ring_all_reduce_, ring_all_reduce_trace, ring_chunks

__all__ = [
    "AlphaBeta",
    "DistributedContext",
    "PipelineEvent",
    "RingTrace",
    "ZeroMemory",
    "bubble_fraction",
    "fit_alpha_beta",
    "free_port",
    "gpipe_schedule",
    "idle_fraction",
    "init_distributed",
    "launch",
    "ring_all_reduce",
    "ring_all_reduce_",
    "ring_all_reduce_seconds",
    "ring_all_reduce_trace",
    "ring_chunks",
    "zero_bytes_per_rank",
]
