"""A character-level language model in NumPy: an LSTM reads the text one character at a time and a
linear layer turns its hidden state into scores for the next character (chapter 4).

    x_t = one_hot(c_t)                     (N, V)
    h_t = LSTM(x_t, h_{t-1})               (N, H)     dlbook.np.rnn.lstm
    logits_t = h_t W^T + b                 (N, V)
    loss = mean_t,n -log softmax(logits_t)[c_{t+1}]

Training uses teacher forcing: the input at every step is the true previous character, never the
model's own guess. Sequences are time-major, (T, N), as in `dlbook.np.rnn`.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from dlbook._validation import require_int, require_positive
from dlbook.np import rnn
from dlbook.text import chunks, streams

State = tuple[np.ndarray, np.ndarray]  # (h, c), each (N, H)


class CharLMParams(NamedTuple):
    lstm: rnn.RNNParams  # weight_ih (4H, V), weight_hh (4H, H), bias_ih, bias_hh (4H,)
    head_weight: np.ndarray  # (V, H)
    head_bias: np.ndarray  # (V,)

    def arrays(self) -> list[np.ndarray]:
        """All six arrays in a flat list, the form the optimizers of `dlbook.np.optim` take."""
        return [*self.lstm, self.head_weight, self.head_bias]

    @classmethod
    def from_arrays(cls, arrays: list[np.ndarray]) -> CharLMParams:
        return cls(rnn.RNNParams(*arrays[:4]), arrays[4], arrays[5])


def init_char_lm(
    vocabulary_size: int, hidden_size: int, rng: np.random.Generator, dtype: type = np.float32
) -> CharLMParams:
    """PyTorch's initialisation for nn.LSTM and nn.Linear: U(-1/sqrt(fan), 1/sqrt(fan)), fan = H."""
    vocabulary_size = require_int("vocabulary_size", vocabulary_size, minimum=2)
    lstm = rnn.init_params("lstm", vocabulary_size, hidden_size, rng, dtype=np.float64)
    bound = 1 / np.sqrt(hidden_size)
    head_weight = rng.uniform(-bound, bound, size=(vocabulary_size, hidden_size))
    head_bias = rng.uniform(-bound, bound, size=vocabulary_size)
    return CharLMParams(
        rnn.RNNParams(*(a.astype(dtype) for a in lstm)), head_weight.astype(dtype), head_bias.astype(dtype)
    )


def _one_hot(ids: np.ndarray, size: int, dtype: type) -> np.ndarray:
    return np.eye(size, dtype=dtype)[ids]


def _log_softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def loss_and_gradients(
    params: CharLMParams, inputs: np.ndarray, targets: np.ndarray, state: State | None
) -> tuple[float, CharLMParams, State]:
    """Mean cross-entropy (nats per character) of predicting targets (T, N) from inputs (T, N), the
    gradient of every parameter, and the final state to start the next chunk from (truncated BPTT:
    the next chunk receives it as a constant)."""
    vocabulary_size, hidden_size = params.head_weight.shape
    x = _one_hot(inputs, vocabulary_size, params.head_weight.dtype)  # (T, N, V)
    out, state, cache = rnn.lstm(x, state, params.lstm)  # (T, N, H)
    log_probs = _log_softmax(out @ params.head_weight.T + params.head_bias)  # (T, N, V)
    picked = np.take_along_axis(log_probs, targets[..., None], axis=-1)  # (T, N, 1)
    dlogits = np.exp(log_probs)  # softmax - one_hot, divided by the number of predictions
    np.put_along_axis(dlogits, targets[..., None], np.exp(picked) - 1, axis=-1)
    dlogits /= targets.size
    flat_dlogits, flat_out = dlogits.reshape(-1, vocabulary_size), out.reshape(-1, hidden_size)
    _, _, lstm_grads = rnn.lstm_backward(dlogits @ params.head_weight, None, cache)
    grads = CharLMParams(lstm_grads, flat_dlogits.T @ flat_out, flat_dlogits.sum(axis=0))
    return -float(picked.mean()), grads, state


def bits_per_character(params: CharLMParams, ids: np.ndarray, n_streams: int = 16, chunk: int = 256) -> float:
    """The model's average -log2 probability of each next character of `ids`, reading it as
    `n_streams` parallel streams (the state carried across chunks, as in training)."""
    vocabulary_size = params.head_weight.shape[0]
    total, count, state = 0.0, 0, None
    for inputs, targets in chunks(streams(ids, n_streams), chunk, keep_last=True):
        out, state, _ = rnn.lstm(_one_hot(inputs, vocabulary_size, params.head_weight.dtype), state, params.lstm)
        log_probs = _log_softmax(out @ params.head_weight.T + params.head_bias)
        total -= float(np.take_along_axis(log_probs, targets[..., None], axis=-1).sum())
        count += targets.size
    return total / count / np.log(2)


def sample(
    params: CharLMParams, prompt: np.ndarray, length: int, temperature: float, rng: np.random.Generator
) -> np.ndarray:
    """Generate `length` characters after the prompt (ids, at least one), each drawn from
    softmax(logits / temperature): below 1 sharpens the distribution towards the likeliest
    character, above 1 flattens it towards uniform. Returns the new ids, (length,)."""
    length = require_int("length", length, minimum=0)
    temperature = require_positive("temperature", temperature)
    prompt = np.asarray(prompt, dtype=np.int64)
    if prompt.ndim != 1 or len(prompt) == 0:
        raise ValueError(f"prompt must be a non-empty 1-D array of character ids, got shape {prompt.shape}")
    vocabulary_size = params.head_weight.shape[0]
    one_hot = np.eye(vocabulary_size, dtype=params.head_weight.dtype)
    out, state, _ = rnn.lstm(one_hot[prompt][:, None], None, params.lstm)  # read the prompt, N = 1
    generated = []
    for _ in range(length):
        logits = (out[-1, 0] @ params.head_weight.T + params.head_bias).astype(np.float64)
        probabilities = np.exp(_log_softmax(logits / temperature))
        generated.append(rng.choice(vocabulary_size, p=probabilities / probabilities.sum()))
        out, state, _ = rnn.lstm(one_hot[generated[-1]][None, None], state, params.lstm)
    return np.array(generated, dtype=np.int64)
