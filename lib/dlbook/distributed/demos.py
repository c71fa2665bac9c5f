"""The multi-process experiments of section 6.3, in one script so that one torchrun launch runs them all:

    python -m torch.distributed.run --nproc-per-node 2 -m dlbook.distributed.demos --out demos.pt

- "ring": `ring_all_reduce_` (the ring, with point-to-point messages) against
  torch.distributed.all_reduce and against the NumPy simulation `ring_all_reduce` of the same inputs;
- "tensor": the MLP of the book's GPT split over the ranks (`ParallelMLP`) against the whole MLP:
  outputs and gradients;
- "pipeline": a 4-block GPT cut into one stage per rank and trained one step with GPipe's schedule,
  for several numbers of micro-batches, against the same step in one process: loss, gradients and
  the timeline of every stage;
- "timing": the time of torch.distributed.all_reduce for messages from 8 bytes to 32 MiB.

Rank 0 saves a dict with one entry per experiment (`load` reads it back). The experiments run on
the CPU with the gloo backend, in float64 (where the comparisons are to 1e-12 or exact), whatever
hardware is present: they show the algorithms, not the speed of a GPU.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence

import numpy as np
import torch
import torch.distributed as dist

from dlbook.distributed.costs import PipelineEvent
from dlbook.distributed.pipeline import gpipe_step, split_gpt
from dlbook.distributed.ring import ring_all_reduce, ring_all_reduce_
from dlbook.distributed.tensor_parallel import ParallelMLP, shard_slice
from dlbook.distributed.train import book_config, corpus_ids
from dlbook.torch.gpt import GPT

__all__ = ["DEMOS", "allreduce_timing", "load", "main", "pipeline_demo", "ring_demo", "tensor_parallel_demo"]

DEMOS = ("ring", "tensor", "pipeline", "timing")


def _max_over_ranks(value: float) -> float:
    t = torch.tensor([value], dtype=torch.float64)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return float(t)


def _all_ranks(value: bool) -> bool:
    return _max_over_ranks(0.0 if value else 1.0) == 0.0


def ring_demo(n: int = 1001) -> dict:
    """Every rank's random float64 vector of n numbers, summed three ways. Returns the largest
    difference between the ring and torch's all_reduce, and whether the ring equals the NumPy
    simulation bit for bit, on every rank."""
    rank, world = dist.get_rank(), dist.get_world_size()
    x = torch.randn(n, dtype=torch.float64, generator=torch.Generator().manual_seed(100 + rank))
    ring, library = x.clone(), x.clone()
    ring_all_reduce_(ring)
    dist.all_reduce(library)
    everyone = [torch.empty_like(x) for _ in range(world)]
    dist.all_gather(everyone, x)
    simulated = ring_all_reduce([t.numpy() for t in everyone])[rank]
    return {
        "n": n,
        "world_size": world,
        "max_difference_from_all_reduce": _max_over_ranks(float((ring - library).abs().max())),
        "equals_numpy_simulation": _all_ranks(bool(np.array_equal(ring.numpy(), simulated))),
    }


def tensor_parallel_demo() -> dict:
    """Block 0's MLP of the book's GPT (64 -> 256 -> 64), whole on every rank and split by
    `ParallelMLP`, on the same input and the same output gradient. Returns the largest differences
    of the output and of every gradient (each rank compares its own shards), and the parameters
    each rank holds."""
    rank, world = dist.get_rank(), dist.get_world_size()
    _, vocab_size = corpus_ids()
    torch.manual_seed(0)
    mlp = GPT(book_config(vocab_size)).double().blocks[0].mlp
    generator = torch.Generator().manual_seed(1)
    x = torch.randn(4, 16, 64, dtype=torch.float64, generator=generator, requires_grad=True)
    weights = torch.randn(4, 16, 64, dtype=torch.float64, generator=generator)  # d loss / d output
    parallel = ParallelMLP.from_mlp(mlp)
    x_parallel = x.detach().clone().requires_grad_(True)
    (mlp(x) * weights).sum().backward()
    out = parallel(x_parallel)
    (out * weights).sum().backward()
    rows = shard_slice(mlp.up.out_features, rank, world)  # this rank's hidden units
    differences = {
        "output": (out - mlp(x)).abs().max(),
        "input gradient": (x_parallel.grad - x.grad).abs().max(),
        "up.weight gradient": (parallel.up.weight.grad - mlp.up.weight.grad[rows]).abs().max(),
        "up.bias gradient": (parallel.up.bias.grad - mlp.up.bias.grad[rows]).abs().max(),
        "down.weight gradient": (parallel.down.weight.grad - mlp.down.weight.grad[:, rows]).abs().max(),
        "down.bias gradient": (parallel.down.bias.grad - mlp.down.bias.grad).abs().max(),
    }
    return {
        "world_size": world,
        "differences": {name: _max_over_ranks(float(d)) for name, d in differences.items()},
        "parameters_per_rank": int(sum(p.numel() for p in parallel.parameters())),
        "parameters_whole": int(sum(p.numel() for p in mlp.parameters())),
    }


def pipeline_demo(micro_batch_counts: Sequence[int] = (1, 2, 4, 8), global_batch: int = 32) -> dict:
    """A 4-block GPT (untied embeddings) cut into one stage per rank, one GPipe step on a batch of
    global_batch windows for each number of micro-batches, against the same step in one process.
    Returns, per count: the largest relative difference of the stage gradients, the loss difference,
    and the events of every stage (stage, kind, micro-batch, start, end), in seconds from the start."""
    rank, world = dist.get_rank(), dist.get_world_size()
    ids, vocab_size = corpus_ids()
    config = book_config(vocab_size, n_layer=4, tied_embeddings=False)
    torch.manual_seed(0)
    model = GPT(config).double()
    stage = split_gpt(model, world)[rank]
    starts = torch.from_numpy(np.random.default_rng(0).integers(0, len(ids) - 65, size=global_batch))
    windows = torch.from_numpy(ids)[starts[:, None] + torch.arange(65)]
    inputs, targets = windows[:, :-1], windows[:, 1:]
    _, reference_loss = model(inputs, targets)  # the whole step in this process
    reference_loss.backward()
    reference = {id(p): p.grad.clone() for p in stage.parameters()}
    results = {}
    for m in micro_batch_counts:
        if global_batch % m:
            raise ValueError(f"global_batch {global_batch} must be a multiple of every micro-batch count, got {m}")
        n = global_batch // m
        for _ in range(2):  # a warm-up step, then the one that is kept
            model.zero_grad(set_to_none=True)
            dist.barrier()
            loss, events = gpipe_step(stage, list(inputs.split(n)), list(targets.split(n)), m, (n, 64, 64))
        error = max(
            float((p.grad - reference[id(p)]).abs().max() / reference[id(p)].abs().max()) for p in stage.parameters()
        )
        loss_error = abs(float(loss - reference_loss)) if loss is not None else 0.0
        everyone = [None] * world
        dist.all_gather_object(everyone, [(e.stage, e.kind, e.micro_batch, e.start, e.end) for e in events])
        origin = min(e[3] for stage_events in everyone for e in stage_events)
        results[m] = {
            "gradient_relative_difference": _max_over_ranks(error),
            "loss_difference": _max_over_ranks(loss_error),
            "events": [
                (s, k, j, a - origin, b - origin) for stage_events in everyone for s, k, j, a, b in stage_events
            ],
        }
    return {"world_size": world, "global_batch": global_batch, "n_layer": config.n_layer, "runs": results}


def allreduce_timing(n_bytes: Sequence[int] | None = None, repeats: int = 7) -> dict:
    """The time of torch.distributed.all_reduce on float32 messages of n_bytes (default 8 bytes to
    32 MiB in steps of 4x): the fastest of `repeats` measurements (the one least disturbed by other
    programs), each of which repeats the call until ~1 MiB has been reduced (at most 200 times, at
    least once) after a barrier and divides; the slower rank's time."""
    sizes = [8 * 4**k for k in range(12)] if n_bytes is None else list(n_bytes)
    seconds = []
    for size in sizes:
        tensor = torch.ones(max(1, size // 4), dtype=torch.float32)
        number = max(1, min(200, 2**20 // size))
        for _ in range(2):
            dist.all_reduce(tensor)  # warm-up
        times = []
        for _ in range(repeats):
            dist.barrier()
            start = time.perf_counter()
            for _ in range(number):
                dist.all_reduce(tensor)
            times.append((time.perf_counter() - start) / number)
        seconds.append(_max_over_ranks(min(times)))
    return {"world_size": dist.get_world_size(), "n_bytes": sizes, "seconds": seconds}


def load(path: str) -> dict:
    """The results a run of this script saved, with the pipeline's events as `PipelineEvent`s."""
    results = torch.load(path, weights_only=True)
    for run in results.get("pipeline", {}).get("runs", {}).values():
        run["events"] = [PipelineEvent(*event) for event in run["events"]]
    return results


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--demos", nargs="+", choices=DEMOS, default=list(DEMOS))
    parser.add_argument("--micro-batches", nargs="+", type=int, default=[1, 2, 4, 8])
    parser.add_argument("--out", default=None, help="where rank 0 saves the results (torch.save)")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    dist.init_process_group("gloo")  # the CPU, whatever the hardware: these runs show the algorithms
    try:
        results = {}
        if "ring" in args.demos:
            results["ring"] = ring_demo()
        if "tensor" in args.demos:
            results["tensor"] = tensor_parallel_demo()
        if "pipeline" in args.demos:
            results["pipeline"] = pipeline_demo(args.micro_batches)
        if "timing" in args.demos:
            results["timing"] = allreduce_timing()
        if dist.get_rank() == 0:
            if args.out:
                torch.save(results, args.out)
            print("finished: " + ", ".join(results))
    finally:
        dist.destroy_process_group()


if __name__ == "__main__":
    main()
