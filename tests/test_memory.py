"""Activation checkpointing changes the memory of a GPT's backward pass, never its results; and the
memory it saves is the memory `dlbook.scaling.activation_bytes` predicts."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from dlbook.scaling import TransformerConfig, activation_bytes
from dlbook.torch.gpt import GPT, Block
from dlbook.torch.memory import (
    CheckpointedBlock,
    checkpointed,
    model_tensors,
    peak_memory_bytes,
    saved_tensor_bytes,
)

CONFIGS = {
    "gpt2-like": TransformerConfig(3, 32, 4, 23, 16),
    "llama-like": TransformerConfig(
        2, 32, 4, 23, 16, d_ff=48, norm="rmsnorm", mlp="swiglu", bias=False, tied_embeddings=False,
        positions="rotary", n_kv_head=2,
    ),
}  # fmt: skip


def tokens(config: TransformerConfig, batch: int, length: int, seed: int = 0) -> torch.Tensor:
    return torch.randint(0, config.vocab_size, (batch, length), generator=torch.Generator().manual_seed(seed))


def gradients(model: GPT, idx: torch.Tensor) -> list[torch.Tensor]:
    model.zero_grad(set_to_none=True)
    _, loss = model(idx, idx)
    loss.backward()
    return [parameter.grad for parameter in model.parameters()]


@pytest.mark.parametrize("name", CONFIGS)
def test_checkpointed_model_has_the_same_logits_and_gradients(name):
    config = CONFIGS[name]
    torch.manual_seed(0)
    model = GPT(config)
    copy = checkpointed(model)
    idx = tokens(config, 3, 16)
    torch.testing.assert_close(copy(idx)[0], model(idx)[0], rtol=0, atol=0)
    for ours, theirs in zip(gradients(copy, idx), gradients(model, idx), strict=True):
        torch.testing.assert_close(ours, theirs, rtol=0, atol=0)


def test_checkpointed_copies_the_model_and_leaves_it_as_it_was():
    config = CONFIGS["gpt2-like"]
    model = GPT(config)
    copy = checkpointed(model)
    assert all(type(block) is Block for block in model.blocks)
    assert all(type(block) is CheckpointedBlock for block in copy.blocks)
    assert all(p is not q and torch.equal(p, q) for p, q in zip(model.parameters(), copy.parameters(), strict=True))
    assert copy.head.weight is copy.wte.weight  # the tied head stays tied in the copy


def test_checkpointed_model_generates_the_same_tokens_with_its_cache():
    config = CONFIGS["llama-like"]
    torch.manual_seed(1)
    model = GPT(config)
    prompt = tokens(config, 2, 3)
    assert torch.equal(
        checkpointed(model).generate(prompt, 8, temperature=0.0), model.generate(prompt, 8, temperature=0.0)
    )


@pytest.mark.parametrize("name", CONFIGS)
def test_a_checkpointed_forward_saves_only_the_block_inputs_and_what_follows_the_blocks(name):
    """At the end of the forward pass: L d numbers per token, plus the final norm and the loss; the
    recomputed block, which activation_bytes adds for the peak, comes only in the backward pass."""
    config = CONFIGS[name]
    model = checkpointed(GPT(config))
    idx = tokens(config, 2, 8)
    full, single = (
        activation_bytes(config, 2, seq_len=8),
        activation_bytes(dataclasses.replace(config, n_layer=1), 2, seq_len=8),
    )
    one_block = (full - single) // (config.n_layer - 1)  # the activations of one block
    saved = saved_tensor_bytes(lambda: model(idx, idx), model_tensors(model))
    assert saved == activation_bytes(config, 2, seq_len=8, activation_checkpointing=True) - one_block
    assert saved == single - one_block + config.n_layer * 2 * 8 * config.d_model * 4  # + L d per token
    plain = GPT(config)
    assert saved_tensor_bytes(lambda: plain(idx, idx), model_tensors(plain)) == activation_bytes(config, 2, seq_len=8)


def test_saved_tensor_bytes_leaves_out_the_excluded_tensors():
    weight = torch.randn(100, 100, requires_grad=True)
    x = torch.randn(10, 100, requires_grad=True)
    assert saved_tensor_bytes(lambda: x @ weight) == 4 * (100 * 100 + 10 * 100)  # mm saves both operands
    assert saved_tensor_bytes(lambda: x @ weight, [weight]) == 4 * 10 * 100


def test_peak_memory_counts_what_is_held_at_once():
    def one_after_the_other():
        a = torch.empty(1000, 1000)  # 4 MB
        del a
        torch.empty(500, 1000)  # 2 MB, freed at once

    def together():
        a = torch.empty(1000, 1000)
        b = torch.empty(500, 1000)
        return a, b

    assert peak_memory_bytes(one_after_the_other) == 4_000_000
    assert peak_memory_bytes(together) == 6_000_000
    assert peak_memory_bytes(lambda: None) == 0


def test_checkpointing_saves_the_predicted_peak_memory():
    """The measured peak of a training step's forward and backward pass, with and without
    checkpointing: the difference is activation_bytes' difference to 2%. (The peaks themselves
    include the logits, their gradient and temporaries, which the prediction leaves out.)"""
    torch.manual_seed(0)
    config = TransformerConfig(6, 64, 4, 65, 32)
    idx = tokens(config, 8, 32)
    measured = []
    for model in (GPT(config), checkpointed(GPT(config))):
        gradients(model, idx)
        model.zero_grad(set_to_none=False)  # gradients already allocated: the peak is the activations'

        def step(model=model):
            _, loss = model(idx, idx)
            loss.backward()

        measured.append(peak_memory_bytes(step))
    predicted = activation_bytes(config, 8) - activation_bytes(config, 8, activation_checkpointing=True)
    assert measured[0] - measured[1] == pytest.approx(predicted, rel=0.02)
    assert measured[0] > activation_bytes(config, 8)


def test_memory_helpers_reject_what_they_cannot_use():
    with pytest.raises(TypeError, match=r"model must be a dlbook.torch.gpt.GPT, got Linear"):
        checkpointed(torch.nn.Linear(2, 2))
    with pytest.raises(ValueError, match=r"already checkpointed"):
        checkpointed(checkpointed(GPT(CONFIGS["gpt2-like"])))
    with pytest.raises(TypeError, match=r"block must be a dlbook.torch.gpt.Block, got Linear"):
        CheckpointedBlock(torch.nn.Linear(2, 2))
    with pytest.raises(TypeError, match=r"function must be callable with no arguments, got int"):
        peak_memory_bytes(3)
    with pytest.raises(TypeError, match=r"function must be callable with no arguments, got int"):
        saved_tensor_bytes(3)
    with pytest.raises(TypeError, match=r"exclude\[0\] must be a torch.Tensor, got int"):
        saved_tensor_bytes(lambda: None, exclude=[1, 2])
