"""Train the book's GPT with data parallelism: DistributedDataParallel or fully sharded (FSDP2).

    python -m torch.distributed.run --nproc-per-node 2 -m dlbook.distributed.train \\
        --strategy ddp fsdp --steps 30 --out result.pt
    python -m dlbook.distributed.train --strategy single --steps 30 --out single.pt

Every step draws one global batch of windows of the book's corpus (the same on every rank, from a
shared seed); rank r of p trains on rows r B / p .. (r + 1) B / p of it. The strategies:

- "single": one process, the whole global batch, split into --micro-batches pieces whose gradients
  are accumulated (1: one piece).
- "ddp": torch.nn.parallel.DistributedDataParallel (Li et al. 2020). Every rank holds the whole
  model and optimizer; after the backward pass the gradients are averaged over the ranks by an
  all-reduce (overlapped with the backward pass, in buckets), so every rank takes the same step.
- "fsdp": torch.distributed.fsdp.fully_shard, FSDP2 (Zhao et al. 2023), applied to each block and
  to the whole model. Each rank keeps 1/p of every parameter, gradient and optimizer state
  (ZeRO stage 3); a block's parameters are all-gathered just before it runs and freed after, and
  gradients are reduce-scattered, each rank receiving the sum of its own shard.

Rank 0 saves, per strategy: the final parameters (full, on the CPU), the loss of every step (the
mean over the global batch), every rank's training time and every rank's bytes of parameters,
gradients and optimizer state.

The same file runs on GPUs: with CUDA available it uses the NCCL backend and GPU cuda:LOCAL_RANK
(every tensor that a collective sends then lives on that GPU: NCCL moves GPU memory only), e.g.
8 GPUs on each of 2 machines, the book's library installed on both:

    torchrun --nnodes 2 --nproc-per-node 8 --rdzv-backend c10d --rdzv-id gpt \\
        --rdzv-endpoint first-machine:29500 -m dlbook.distributed.train --strategy ddp --dtype float32
"""

from __future__ import annotations

import argparse
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from dlbook._validation import require_int
from dlbook.distributed.launch import init_distributed
from dlbook.scaling import TransformerConfig
from dlbook.text import Vocabulary, load_corpus, split
from dlbook.torch.gpt import GPT

__all__ = ["STRATEGIES", "TrainResult", "book_config", "corpus_ids", "main", "state_bytes", "train"]

STRATEGIES = ("single", "ddp", "fsdp")
DTYPES = {"float64": torch.float64, "float32": torch.float32, "bfloat16": torch.bfloat16}


def corpus_ids() -> tuple[np.ndarray, int]:
    """The training part of the book's corpus as character ids (the split of chapter 4), and the
    vocabulary size."""
    text = load_corpus()
    vocabulary = Vocabulary.of(text)
    train_ids, _ = split(vocabulary.encode(text), 0.1)
    return train_ids, len(vocabulary)


def book_config(vocab_size: int, n_layer: int = 2, tied_embeddings: bool = True) -> TransformerConfig:
    """Section 5.4's tiny GPT: d_model 64, 4 heads, a context of 64 characters."""
    return TransformerConfig(
        n_layer=n_layer, d_model=64, n_head=4, vocab_size=vocab_size, context_length=64, tied_embeddings=tied_embeddings
    )


@dataclass(frozen=True)
class TrainResult:
    """parameters: name -> full tensor on the CPU (each shared parameter once); losses (steps,): the
    mean loss over the global batch at each step; seconds: this rank's time for the steps;
    bytes: this rank's bytes of parameters, gradients and optimizer state after the last step."""

    parameters: dict[str, torch.Tensor]
    losses: np.ndarray
    seconds: float
    bytes: dict[str, int]


def _local(tensor: torch.Tensor) -> torch.Tensor:
    """The part of a tensor this rank holds: a DTensor's local shard, or the tensor itself."""
    return tensor.to_local() if hasattr(tensor, "to_local") else tensor


def state_bytes(model: nn.Module, optimizer: torch.optim.Optimizer) -> dict[str, int]:
    """Bytes this rank holds of the model's parameters and gradients and of the optimizer's state
    (for Adam the two moving averages and a step counter per parameter); DTensors count their
    local shard. Buffers the wrappers allocate (DDP's gradient buckets, FSDP's all-gathered layers)
    are not counted."""

    def size(t: torch.Tensor) -> int:
        t = _local(t)
        return t.numel() * t.element_size()

    parameters = list(model.parameters())
    state = [t for p in parameters for t in optimizer.state.get(p, {}).values() if isinstance(t, torch.Tensor)]
    return {
        "parameters": sum(size(p) for p in parameters),
        "gradients": sum(size(p.grad) for p in parameters if p.grad is not None),
        "optimizer_state": sum(size(t) for t in state),
    }


def _wrap(model: nn.Module, strategy: str, device: torch.device) -> nn.Module:
    if strategy == "ddp":
        from torch.nn.parallel import DistributedDataParallel

        return DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    if strategy == "fsdp":
        try:
            from torch.distributed.fsdp import fully_shard
        except ImportError:  # torch < 2.6
            from torch.distributed._composable.fsdp import fully_shard
        for block in model.blocks:
            fully_shard(block)  # each block's parameters are gathered just before it runs
        fully_shard(model)  # the embeddings, the final norm and the (tied) head
        return model
    return model


def _full_parameters(model: nn.Module) -> dict[str, torch.Tensor]:
    model = getattr(model, "module", model)  # DDP wraps the model
    full = {}
    for name, parameter in model.named_parameters():
        value = parameter.detach()
        if hasattr(value, "full_tensor"):  # FSDP: all-gather the shards (every rank must call this)
            value = value.full_tensor()
        full[name] = value.cpu().clone()
    return full


def train(
    strategy: str = "single",
    steps: int = 30,
    global_batch: int = 32,
    micro_batches: int = 1,
    dtype: torch.dtype = torch.float64,
    lr: float = 3e-3,
    seed: int = 0,
    device: torch.device | None = None,
) -> TrainResult:
    """Train the book's GPT (`book_config`) with AdamW for `steps` steps on batches of global_batch
    windows of 64 characters, split over the ranks of the process group ("ddp", "fsdp") or trained
    in this process ("single"), each rank's share in `micro_batches` accumulated pieces.

    Every rank must call it (the distributed strategies are collective). Every rank starts from the
    same weights (seeded), and the global batches are the same whatever the strategy and the number
    of ranks, so that the runs can be compared weight for weight."""
    if strategy not in STRATEGIES:
        raise ValueError(f"strategy must be one of {', '.join(map(repr, STRATEGIES))}, got {strategy!r}")
    steps = require_int("steps", steps, minimum=1)
    global_batch = require_int("global_batch", global_batch, minimum=1)
    micro_batches = require_int("micro_batches", micro_batches, minimum=1)
    distributed = strategy != "single"
    if distributed and not dist.is_initialized():
        raise RuntimeError(f"strategy {strategy!r} needs a process group: run this under torchrun")
    rank, world = (dist.get_rank(), dist.get_world_size()) if distributed else (0, 1)
    if global_batch % (world * micro_batches):
        raise ValueError(
            f"global_batch must be a multiple of ranks x micro_batches = {world} x {micro_batches}, got {global_batch}"
        )
    device = torch.device("cpu") if device is None else device
    ids, vocab_size = corpus_ids()
    data, context = torch.from_numpy(ids), 64
    torch.manual_seed(seed)
    model = GPT(book_config(vocab_size)).to(device=device, dtype=dtype)
    model = _wrap(model, strategy, device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    windows = np.random.default_rng(seed)
    share = global_batch // world
    micro = share // micro_batches
    losses = torch.zeros(steps, dtype=torch.float64, device=device)  # where the backend can all-reduce it
    if distributed:
        dist.barrier()
    started = time.perf_counter()
    for step in range(steps):
        starts = windows.integers(0, len(ids) - context - 1, size=global_batch)  # the same on every rank
        mine = torch.from_numpy(starts[rank * share : (rank + 1) * share])
        batch = data[mine[:, None] + torch.arange(context + 1)].to(device)  # (share, context + 1)
        optimizer.zero_grad()
        for piece in batch.split(micro):
            _, loss = model(piece[:, :-1], piece[:, 1:])
            (loss / micro_batches).backward()  # DDP/FSDP average the ranks' gradients themselves
            losses[step] += loss.detach().double() / micro_batches
        optimizer.step()
    if device.type == "cuda":
        torch.cuda.synchronize(device)  # a GPU computes asynchronously: wait for the last step
    seconds = time.perf_counter() - started
    if distributed:  # on the model's device: NCCL all-reduces GPU tensors only
        dist.all_reduce(losses)  # gloo has no average: sum, then divide
        losses /= world
    return TrainResult(_full_parameters(model), losses.cpu().numpy(), seconds, state_bytes(model, optimizer))


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--strategy", nargs="+", choices=STRATEGIES, default=["ddp"])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--global-batch", type=int, default=32)
    parser.add_argument("--micro-batches", type=int, default=1)
    parser.add_argument("--dtype", choices=DTYPES, default="float64")
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=None, help="where rank 0 saves the results (torch.save)")
    args = parser.parse_args(argv)
    if args.steps < 1:
        parser.error(f"--steps must be >= 1, got {args.steps}")
    # FSDP2 warns that the blocks return views (their key-value cache), which training never changes
    warnings.filterwarnings("ignore", message="FSDP2-wrapped module .* returned a view tensor")
    context = init_distributed()
    if context.backend is None and set(args.strategy) - {"single"}:
        parser.error("--strategy ddp and fsdp need torchrun: python -m torch.distributed.run --nproc-per-node 2 ...")
    saved = {}
    try:
        for strategy in args.strategy:
            result = train(
                strategy, args.steps, args.global_batch, args.micro_batches, DTYPES[args.dtype],
                args.lr, args.seed, context.device,
            )  # fmt: skip
            per_rank = [(result.seconds, result.bytes)]
            if context.backend is not None and strategy != "single":
                per_rank = [None] * context.world_size
                dist.all_gather_object(per_rank, (result.seconds, result.bytes))
            saved[strategy] = {
                "parameters": result.parameters,
                "losses": torch.from_numpy(result.losses),
                "seconds": [seconds for seconds, _ in per_rank],
                "bytes": [size for _, size in per_rank],
                "world_size": len(per_rank),
                "backend": context.backend if strategy != "single" else None,
            }
            if context.is_main:
                print(f"{strategy}: {args.steps} steps in {max(s for s, _ in per_rank):.2f} s, "
                      f"final loss {result.losses[-1]:.4f}")  # fmt: skip
        if context.is_main and args.out:
            torch.save(saved, args.out)
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


if __name__ == "__main__":
    main()
