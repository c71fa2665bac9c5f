"""The memory of a training step, measured, and activation checkpointing (chapter "The challenges of
scaling").

- `checkpointed(model)`: a copy of a `dlbook.torch.gpt.GPT` whose blocks keep only their input for
  the backward pass and recompute everything else in it (Chen et al. 2016), with
  `torch.utils.checkpoint`. Same weights, same outputs, same gradients; less memory, one more
  forward pass of the blocks.
- `saved_tensor_bytes(function)`: the bytes of the tensors autograd saves for the backward pass
  while `function()` runs, counted with `torch.autograd.graph.saved_tensors_hooks`.
- `peak_memory_bytes(function)`: the largest amount of memory the CPU allocator held at once while
  `function()` ran, beyond what was held when it started, read from torch's profiler.

`dlbook.scaling.activation_bytes` predicts both for `GPT`; the tests check the predictions.
"""

from __future__ import annotations

import copy
import itertools
import os
import sys
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from dlbook.torch.gpt import GPT, Block

__all__ = ["CheckpointedBlock", "checkpointed", "model_tensors", "peak_memory_bytes", "saved_tensor_bytes"]


class CheckpointedBlock(nn.Module):
    """A `Block` that saves only its input x for the backward pass and runs its forward pass again
    there, to get the tensors it did not keep (`torch.utils.checkpoint`, non-reentrant).

    With gradients enabled it returns (x, None): no key-value cache, whose keys and values would
    keep every layer's attention input alive, the memory checkpointing is meant to save. Without
    gradients (generation) it is the plain block, cache included.
    """

    def __init__(self, block: Block):
        super().__init__()
        if not isinstance(block, Block):
            raise TypeError(f"block must be a dlbook.torch.gpt.Block, got {type(block).__name__}")
        self.block = block

    def forward(
        self,
        x: torch.Tensor,
        rope: tuple[torch.Tensor, torch.Tensor] | None = None,
        past: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor] | None]:
        if not torch.is_grad_enabled():
            return self.block(x, rope, past)
        return checkpoint(self._residual, x, rope, past, use_reentrant=False), None

    def _residual(
        self,
        x: torch.Tensor,
        rope: tuple[torch.Tensor, torch.Tensor] | None,
        past: tuple[torch.Tensor, torch.Tensor] | None,
    ) -> torch.Tensor:
        return self.block(x, rope, past)[0]


def checkpointed(model: GPT) -> GPT:
    """A copy of model (same weights, its own parameters) whose blocks are `CheckpointedBlock`s.

    Its logits and gradients equal the model's; its backward pass keeps each block's input,
    d_model numbers per token and layer, instead of the block's activations (about 16 d_model), and
    recomputes one block at a time. model itself is left as it was. The state_dict keys gain a
    `.block` (blocks.0.block.attn...).
    """
    if not isinstance(model, GPT):
        raise TypeError(f"model must be a dlbook.torch.gpt.GPT, got {type(model).__name__}")
    copied = copy.deepcopy(model)
    if any(isinstance(block, CheckpointedBlock) for block in copied.blocks):
        raise ValueError("model's blocks are already checkpointed")
    copied.blocks = nn.ModuleList(CheckpointedBlock(block) for block in copied.blocks)
    return copied


def saved_tensor_bytes(function: Callable[[], object], exclude: Iterable[torch.Tensor] = ()) -> int:
    """The bytes of the floating-point tensors autograd saves for backward while function() runs.

    Each block of memory (storage) counts once, however many views of it are saved; 0-d tensors
    (scalars such as the normaliser of a mean) and the storages of `exclude` (pass the model's
    parameters and buffers: they exist anyway) are left out. Tensors saved inside a checkpointed
    region are not seen: `torch.utils.checkpoint` replaces them by its own placeholders, which is
    the point; the checkpoint's saved inputs are seen.
    """
    if not callable(function):
        raise TypeError(f"function must be callable with no arguments, got {type(function).__name__}")
    exclude = list(exclude)
    for index, tensor in enumerate(exclude):
        if not isinstance(tensor, torch.Tensor):
            raise TypeError(f"exclude[{index}] must be a torch.Tensor, got {type(tensor).__name__}")
    own = {tensor.untyped_storage().data_ptr() for tensor in exclude}
    storages: dict[int, int] = {}

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        storage = tensor.untyped_storage()
        if tensor.is_floating_point() and tensor.dim() > 0 and storage.data_ptr() not in own:
            storages[storage.data_ptr()] = storage.nbytes()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        function()
    return sum(storages.values())


def model_tensors(model: nn.Module) -> Iterable[torch.Tensor]:
    """The parameters and buffers of model: the `exclude` of `saved_tensor_bytes`."""
    return itertools.chain(model.parameters(), model.buffers())


@contextmanager
def _quiet_native_stderr() -> Iterator[None]:
    """Send what C++ code writes to the process's standard error (file descriptor 2) to /dev/null."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def peak_memory_bytes(function: Callable[[], object]) -> int:
    """The peak of the CPU memory torch allocated while function() ran, above the level at its
    start: allocations minus frees, in the order they happened, at their largest.

    Read from the allocation records of `torch.profiler.profile(profile_memory=True)`, every
    allocation and free of a CPU tensor's memory. Temporaries inside one operation count, memory
    that Python or NumPy allocate does not. Tensors that function() leaves alive count in the peak.
    """
    if not callable(function):
        raise TypeError(f"function must be callable with no arguments, got {type(function).__name__}")
    from torch._C._profiler import _EventType  # the profiler's event tree: no public equivalent

    profile = torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU], profile_memory=True)
    with _quiet_native_stderr():  # the profiler's C++ side logs its start and stop, with a time stamp
        profile.start()
    try:
        function()
    finally:
        with _quiet_native_stderr():
            profile.stop()
    changes: list[tuple[int, int]] = []
    stack = list(profile.profiler.kineto_results.experimental_event_tree())
    while stack:
        event = stack.pop()
        if event.tag == _EventType.Allocation and event.extra_fields.device.type == "cpu":
            changes.append((event.start_time_ns, event.extra_fields.alloc_size))
        stack.extend(event.children)
    level = peak = 0
    for _, size in sorted(changes, key=lambda change: change[0]):
        level += size
        peak = max(peak, level)
    return peak
