"""The ring all-reduce (Patarasuk and Yuan 2009), the collective behind data-parallel training.

p workers each hold an array of n numbers; afterwards every worker holds their elementwise sum.
Each array is cut into p chunks and the workers stand in a ring, worker i sending only to worker
i + 1 (mod p):

- reduce-scatter, p - 1 steps: at step s worker i sends its running sum of chunk (i - s) mod p to
  worker i + 1, which adds its own numbers to it. After p - 1 steps worker i holds the complete sum
  of chunk (i + 1) mod p.
- all-gather, p - 1 steps: at step s worker i passes the complete chunk (i + 1 - s) mod p on to
  worker i + 1, which keeps it. After p - 1 more steps every worker holds every complete chunk.

Every step, every worker sends one chunk, n / p numbers, and receives one: 2 (p - 1) n / p numbers
sent per worker in all, nearly 2n however many workers there are. That is what makes the ring
bandwidth-optimal, and its 2 (p - 1) steps are what make it slow for small messages.

- `ring_all_reduce(arrays)`: the simulation, p NumPy arrays in, p sums out.
- `ring_all_reduce_trace(arrays)`: the same, with what each step sent (for counting and drawing).
- `ring_all_reduce_(tensor)`: its twin in PyTorch, one process per worker, with torch.distributed's
  point-to-point isend/recv; the same algorithm, so the same sums in the same order: it equals the
  simulation exactly, and torch.distributed.all_reduce to rounding.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist

from dlbook._validation import require_float_array

__all__ = ["RingTrace", "ring_all_reduce", "ring_all_reduce_", "ring_all_reduce_trace", "ring_chunks"]


def ring_chunks(n: int, p: int) -> list[slice]:
    """The p chunks of an array of n numbers, as slices: as equal as possible, the first n mod p one
    number longer (np.array_split's rule). Some are empty when n < p."""
    sizes = [n // p + (1 if i < n % p else 0) for i in range(p)]
    bounds = np.concatenate([[0], np.cumsum(sizes)]).astype(int)
    return [slice(int(bounds[i]), int(bounds[i + 1])) for i in range(p)]


@dataclass(frozen=True)
class RingTrace:
    """What a ring all-reduce of p arrays of n numbers did.

    outputs: the p results, each the sum of all inputs (the input shape).
    bytes_sent: (p,) bytes each worker sent; 2 (p - 1) n / p times the item size when p divides n.
    holds: (2 (p - 1) + 1, p, p, p) booleans, holds[t, i, c, j]: after step t (t = 0 is the start),
        worker i's copy of chunk c includes worker j's contribution.
    sends: for each of the 2 (p - 1) steps, p pairs (chunk, bytes): what worker i sent to i + 1.
    """

    outputs: list[np.ndarray]
    bytes_sent: np.ndarray
    holds: np.ndarray
    sends: list[list[tuple[int, int]]]

    @property
    def steps(self) -> int:
        return len(self.sends)


def _require_arrays(arrays: object) -> list[np.ndarray]:
    if not isinstance(arrays, Sequence) or isinstance(arrays, np.ndarray) or len(arrays) == 0:
        raise TypeError(f"arrays must be a non-empty list of NumPy arrays, one per worker, got {type(arrays).__name__}")
    arrays = [require_float_array(f"arrays[{i}]", a) for i, a in enumerate(arrays)]
    for i, a in enumerate(arrays):
        if a.shape != arrays[0].shape or a.dtype != arrays[0].dtype:
            raise ValueError(
                f"every worker must hold an array of the same shape and dtype: arrays[0] is "
                f"{arrays[0].shape} {arrays[0].dtype}, arrays[{i}] is {a.shape} {a.dtype}"
            )
    return arrays


def ring_all_reduce_trace(arrays: Sequence[np.ndarray]) -> RingTrace:
    """Simulate a ring all-reduce of arrays, one per worker (p arrays of one shape and float dtype),
    step by step; see the module's docstring for the algorithm and `RingTrace` for the result."""
    arrays = _require_arrays(arrays)
    p, shape, itemsize = len(arrays), arrays[0].shape, arrays[0].itemsize
    buffers = [a.reshape(-1).copy() for a in arrays]  # each worker's working copy, flat
    chunks = ring_chunks(buffers[0].size, p)
    holds = np.zeros((p, p, p), dtype=bool)  # worker, chunk, contribution
    for i in range(p):
        holds[i, :, i] = True
    history, sends, bytes_sent = [holds.copy()], [], np.zeros(p, dtype=np.int64)
    for step in range(2 * (p - 1)):
        reducing = step < p - 1
        s = step if reducing else step - (p - 1)
        # every worker sends at once: read all messages before any worker changes its buffer
        sent = [(i - s) % p if reducing else (i + 1 - s) % p for i in range(p)]
        messages = [buffers[i][chunks[c]].copy() for i, c in enumerate(sent)]
        contributions = [holds[i, c].copy() for i, c in enumerate(sent)]
        for i, c in enumerate(sent):
            receiver = (i + 1) % p
            if reducing:  # add the incoming partial sum to the receiver's own numbers
                buffers[receiver][chunks[c]] = messages[i] + buffers[receiver][chunks[c]]
                holds[receiver, c] |= contributions[i]
            else:  # the incoming chunk is complete: keep it
                buffers[receiver][chunks[c]] = messages[i]
                holds[receiver, c] = contributions[i]
            bytes_sent[i] += messages[i].size * itemsize
        sends.append([(c, messages[i].size * itemsize) for i, c in enumerate(sent)])
        history.append(holds.copy())
    return RingTrace([b.reshape(shape) for b in buffers], bytes_sent, np.stack(history), sends)


def ring_all_reduce(arrays: Sequence[np.ndarray]) -> list[np.ndarray]:
    """The elementwise sum of p arrays (one per worker, same shape), delivered to every worker by a
    ring all-reduce: p arrays in, p equal arrays out. Chunk c is summed in ring order starting at
    worker c (a different order from `sum(arrays)`, so equal to it up to rounding)."""
    return ring_all_reduce_trace(arrays).outputs


def ring_all_reduce_(tensor: torch.Tensor, group: dist.ProcessGroup | None = None) -> torch.Tensor:
    """The twin of `ring_all_reduce` in PyTorch: called by every process of the group with its own
    tensor, it replaces each tensor by the sum of all of them, with the ring's 2 (p - 1) steps of
    point-to-point messages (torch.distributed.isend/recv). In place; returns the tensor.

    Each worker sends to the next rank and receives from the previous one at every step; the
    numbers added and their order are those of the NumPy simulation, so the results are equal to
    it bit for bit (torch.distributed.all_reduce may sum in another order).
    """
    if not isinstance(tensor, torch.Tensor):
        raise TypeError(f"tensor must be a torch.Tensor, got {type(tensor).__name__}")
    if not dist.is_initialized():
        raise RuntimeError("ring_all_reduce_ needs a process group: call torch.distributed.init_process_group first")
    p, rank = dist.get_world_size(group), dist.get_rank(group)
    if p == 1:
        return tensor
    flat = tensor.view(-1) if tensor.is_contiguous() else tensor.reshape(-1).clone()
    chunks = ring_chunks(flat.numel(), p)
    to_rank = dist.get_global_rank(group, (rank + 1) % p) if group is not None else (rank + 1) % p
    from_rank = dist.get_global_rank(group, (rank - 1) % p) if group is not None else (rank - 1) % p
    for step in range(2 * (p - 1)):
        reducing = step < p - 1
        s = step if reducing else step - (p - 1)
        send_chunk = (rank - s) % p if reducing else (rank + 1 - s) % p
        recv_chunk = (send_chunk - 1) % p  # what the previous worker sends at this step
        outgoing = flat[chunks[send_chunk]].clone()
        incoming = torch.empty_like(flat[chunks[recv_chunk]])
        request = dist.isend(outgoing, to_rank, group=group)
        dist.recv(incoming, from_rank, group=group)
        request.wait()
        if reducing:
            flat[chunks[recv_chunk]] = incoming + flat[chunks[recv_chunk]]
        else:
            flat[chunks[recv_chunk]] = incoming
    if flat.data_ptr() != tensor.data_ptr():
        tensor.copy_(flat.view_as(tensor))
    return tensor
