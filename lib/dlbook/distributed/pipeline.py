"""Pipeline parallelism with GPipe's schedule (Huang et al. 2019): the layers of a model split into
consecutive stages, one per process, and the batch into micro-batches that flow through them.

- `GPTStage`, `split_gpt`: a `dlbook.torch.gpt.GPT` cut into stages of consecutive blocks; the first
  stage also embeds the tokens, the last also applies the final norm and the head.
- `gpipe_step`: one training step's forward and backward passes on this process's stage. Stage s
  receives each micro-batch's activations from stage s - 1 (torch.distributed.recv), runs its
  layers and sends the result to stage s + 1 (isend); after the last micro-batch's forward, the
  gradients flow back the same way, last micro-batch first. The gradients of the stage's
  parameters accumulate over the micro-batches, so after the step they are those of the whole
  batch, and the optimizer steps as usual.

Each stage records when it computed what (`dlbook.distributed.costs.PipelineEvent`, in
`time.perf_counter` seconds, a clock that all processes of one machine share), from which the
schedule's timeline and idle time are drawn.
"""

from __future__ import annotations

import time

import torch
import torch.distributed as dist
import torch.nn.functional as F  # noqa: N812 (torch's own spelling)
from torch import nn

from dlbook.distributed.costs import PipelineEvent
from dlbook.distributed.ring import ring_chunks
from dlbook.torch.gpt import GPT

__all__ = ["GPTStage", "gpipe_step", "split_gpt"]


class GPTStage(nn.Module):
    """Blocks first .. last - 1 of a GPT, with the embeddings when first == 0 and the final norm and
    head when last == n_layer. Input: token ids (N, T) for the first stage, activations (N, T,
    d_model) otherwise; output: activations (N, T, d_model), or logits (N, T, vocab_size) for the
    last stage. It shares the GPT's modules (a real pipeline would build only its own)."""

    def __init__(self, model: GPT, first: int, last: int):
        super().__init__()
        n_layer = model.config.n_layer
        if not 0 <= first <= last <= n_layer:
            raise ValueError(f"need 0 <= first <= last <= n_layer = {n_layer}, got first={first}, last={last}")
        self.is_first, self.is_last = first == 0, last == n_layer
        if model.config.tied_embeddings and not (self.is_first and self.is_last):
            raise ValueError(
                "a GPT with tied embeddings cannot be split: its first and last stages would share the "
                "embedding matrix (Megatron-LM keeps a copy on each and all-reduces their gradients); "
                "build it with TransformerConfig(..., tied_embeddings=False)"
            )
        self.first, self.last = first, last
        # only this stage's modules are registered, so that stage.parameters() are its own
        self.wte = model.wte if self.is_first else None
        self.wpe = model.wpe if self.is_first else None
        self.blocks = nn.ModuleList(model.blocks[first:last])
        self.norm = model.norm if self.is_last else None
        self.head = model.head if self.is_last else None
        self.rotary = model.wpe is None
        if self.rotary:
            self.register_buffer("rope_cos", model.rope_cos, persistent=False)
            self.register_buffer("rope_sin", model.rope_sin, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t = x.shape[1]
        if self.is_first:
            idx = x
            x = self.wte(idx)
            if self.wpe is not None:
                x = x + self.wpe(torch.arange(t, device=idx.device))
        rope = (self.rope_cos[:t], self.rope_sin[:t]) if self.rotary else None
        for block in self.blocks:
            x, _ = block(x, rope)
        return self.head(self.norm(x)) if self.is_last else x


def split_gpt(model: GPT, stages: int) -> list[GPTStage]:
    """The GPT cut into `stages` stages of consecutive blocks, as equal as possible (the first
    stages get one more when n_layer is not a multiple of stages)."""
    if not 1 <= stages <= model.config.n_layer:
        raise ValueError(f"stages must lie in [1, n_layer = {model.config.n_layer}], got {stages}")
    return [GPTStage(model, c.start, c.stop) for c in ring_chunks(model.config.n_layer, stages)]


def gpipe_step(
    stage: GPTStage,
    inputs: list[torch.Tensor] | None,
    targets: list[torch.Tensor] | None,
    micro_batches: int,
    activation_shape: tuple[int, ...],
    group: dist.ProcessGroup | None = None,
) -> tuple[torch.Tensor | None, list[PipelineEvent]]:
    """One GPipe step on this process's stage (rank s of the group runs stage s), gradients
    accumulated into the stage's parameters (zero them before).

    inputs: the micro-batches of token ids, each (n, T) (used by the first stage only);
    targets: their next tokens, each (n, T) (used by the last stage only);
    activation_shape: (n, T, d_model), what passes between stages, in the parameters' dtype.
    Returns the batch's mean loss on the last stage (None elsewhere) and this stage's events.
    """
    rank, p = dist.get_rank(group), dist.get_world_size(group)
    previous = None if rank == 0 else (dist.get_global_rank(group, rank - 1) if group else rank - 1)
    following = None if rank == p - 1 else (dist.get_global_rank(group, rank + 1) if group else rank + 1)
    if stage.is_first != (previous is None) or stage.is_last != (following is None):
        raise ValueError(f"rank {rank} of {p} must run stage {rank}, got a stage of blocks {stage.first}..{stage.last}")
    dtype, device = next(stage.parameters()).dtype, next(stage.parameters()).device
    events, saved, requests, loss = [], [], [], None
    for j in range(micro_batches):
        if previous is None:
            x = inputs[j]
        else:
            x = torch.empty(activation_shape, dtype=dtype, device=device)
            dist.recv(x, previous, group=group)
            x.requires_grad_(True)
        start = time.perf_counter()
        out = stage(x)
        if following is None:  # the last stage turns its logits into this micro-batch's share of the loss
            out = F.cross_entropy(out.flatten(0, 1), targets[j].flatten()) / micro_batches
            loss = out.detach() if loss is None else loss + out.detach()
        events.append(PipelineEvent(rank, "forward", j, start, time.perf_counter()))
        if following is not None:
            requests.append(dist.isend(out.detach(), following, group=group))
        saved.append((x, out))
    for j in reversed(range(micro_batches)):
        x, out = saved[j]
        grad = None
        if following is not None:
            grad = torch.empty(activation_shape, dtype=dtype, device=device)
            dist.recv(grad, following, group=group)
        start = time.perf_counter()
        out.backward(grad)
        events.append(PipelineEvent(rank, "backward", j, start, time.perf_counter()))
        if previous is not None:
            requests.append(dist.isend(x.grad, previous, group=group))
        saved[j] = None  # this micro-batch's activations can go
    for request in requests:
        request.wait()
    return loss, events
