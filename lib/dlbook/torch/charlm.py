"""PyTorch twin of `dlbook.np.charlm`: the same character-level LSTM language model as a module.

`init_char_lm` loads the weights the NumPy twin draws from the same Generator (nn.LSTM's parameter
names, gate order i, f, g, o; nn.Linear's for the head), so both start identical. The loss returns a
tensor for autograd, and the state it returns is detached: the next chunk starts from it as a
constant, which is truncated backpropagation through time.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from dlbook._validation import require_int, require_positive
from dlbook.np.charlm import CharLMParams
from dlbook.np.charlm import init_char_lm as init_char_lm_arrays
from dlbook.text import chunks, streams

__all__ = ["CharLM", "CharLMParams", "bits_per_character", "init_char_lm", "loss", "sample"]

State = tuple[torch.Tensor, torch.Tensor]


class CharLM(nn.Module):
    """One-hot characters (T, N) -> LSTM (hidden size H) -> linear scores for the next character (T, N, V)."""

    def __init__(self, vocabulary_size: int, hidden_size: int) -> None:
        super().__init__()
        self.vocabulary_size = vocabulary_size
        self.lstm = nn.LSTM(vocabulary_size, hidden_size)
        self.head = nn.Linear(hidden_size, vocabulary_size)

    def forward(self, inputs: torch.Tensor, state: State | None = None) -> tuple[torch.Tensor, State]:
        x = nn.functional.one_hot(inputs, self.vocabulary_size).to(self.head.weight.dtype)  # (T, N, V)
        out, state = self.lstm(x, state)  # out: (T, N, H); state: (h, c), each (1, N, H)
        return self.head(out), state


def init_char_lm(
    vocabulary_size: int,
    hidden_size: int,
    rng: np.random.Generator,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str = "cpu",
) -> CharLM:
    """A CharLM holding the weights `dlbook.np.charlm.init_char_lm` draws from `rng`."""
    arrays = init_char_lm_arrays(vocabulary_size, hidden_size, rng, dtype=np.float64)
    model = CharLM(vocabulary_size, hidden_size).to(device=device, dtype=dtype)
    state = {f"lstm.{name}_l0": torch.from_numpy(value) for name, value in arrays.lstm._asdict().items()}
    state |= {"head.weight": torch.from_numpy(arrays.head_weight), "head.bias": torch.from_numpy(arrays.head_bias)}
    model.load_state_dict(state)
    return model


def loss(model: CharLM, inputs: torch.Tensor, targets: torch.Tensor, state: State | None) -> tuple[torch.Tensor, State]:
    """Mean cross-entropy (nats per character) of targets (T, N) given inputs (T, N), and the final
    state, detached, for the next chunk."""
    logits, state = model(inputs, state)
    value = nn.functional.cross_entropy(logits.reshape(-1, model.vocabulary_size), targets.reshape(-1))
    return value, (state[0].detach(), state[1].detach())


@torch.no_grad()
def bits_per_character(model: CharLM, ids: np.ndarray, n_streams: int = 16, chunk: int = 256) -> float:
    """Average -log2 probability of each next character of `ids`, as the NumPy twin computes it."""
    device = model.head.weight.device
    total, count, state = 0.0, 0, None
    for inputs, targets in chunks(streams(ids, n_streams), chunk, keep_last=True):
        logits, state = model(torch.from_numpy(inputs).to(device), state)
        targets = torch.from_numpy(targets).to(device)
        total += nn.functional.cross_entropy(
            logits.reshape(-1, model.vocabulary_size), targets.reshape(-1), reduction="sum"
        ).item()
        count += targets.numel()
    return total / count / float(np.log(2))


@torch.no_grad()
def sample(model: CharLM, prompt: np.ndarray, length: int, temperature: float, rng: np.random.Generator) -> np.ndarray:
    """Generate `length` character ids after the prompt, each drawn from softmax(logits / temperature)
    with the NumPy Generator `rng` (the same draws as the NumPy twin for the same seed)."""
    length = require_int("length", length, minimum=0)
    temperature = require_positive("temperature", temperature)
    device = model.head.weight.device
    logits, state = model(torch.as_tensor(np.asarray(prompt, dtype=np.int64), device=device)[:, None])
    generated = []
    for _ in range(length):
        scaled = logits[-1, 0].double().cpu().numpy() / temperature
        probabilities = np.exp(scaled - scaled.max())
        generated.append(rng.choice(model.vocabulary_size, p=probabilities / probabilities.sum()))
        logits, state = model(torch.tensor([[generated[-1]]], device=device), state)
    return np.array(generated, dtype=np.int64)
