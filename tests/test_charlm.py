"""The text corpus plumbing of `dlbook.text` and the character LSTM of `dlbook.np.charlm` and its twin.

The NumPy model's loss and every gradient equal the torch module's after the same initial draw (float64),
across chunks with the state carried over; sampling follows the temperature as documented; the corpus
is offline, split without overlap, and the unigram baseline is what its definition says.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import dlbook.np.charlm as charlm
import dlbook.torch.charlm as torch_charlm
from conftest import assert_close
from dlbook.np.gradcheck import numerical_gradient, relative_error
from dlbook.text import Vocabulary, chunks, load_corpus, split, streams, unigram_bits_per_character


def test_corpus_is_offline_text_with_a_reversible_vocabulary():
    text = load_corpus()
    vocabulary = Vocabulary.of(text)
    assert len(text) > 400_000 and 50 < len(vocabulary) < 200
    assert vocabulary.decode(vocabulary.encode(text[:1000])) == text[:1000]
    with pytest.raises(ValueError, match="not in the vocabulary"):
        Vocabulary.of("abc").encode("abd")


def test_split_streams_and_chunks_cover_the_text_in_order():
    ids = np.arange(1000)
    train, validation = split(ids, 0.1)
    assert len(train) == 900 and validation[0] == 900
    rows = streams(train, 4)  # (4, 225)
    assert rows.shape == (4, 225) and rows[1, 0] == 225
    pieces = list(chunks(rows, 10))
    inputs, targets = pieces[0]
    assert inputs.shape == (10, 4) and np.array_equal(targets, inputs + 1)
    assert np.array_equal(pieces[1][0][0], rows[:, 10])  # the next chunk continues each stream
    assert len(pieces) == (225 - 1) // 10
    everything = list(chunks(rows, 10, keep_last=True))
    assert len(everything) == len(pieces) + 1 and everything[-1][0].shape == (4, 4)
    assert sum(inputs.shape[0] for inputs, _ in everything) == 224  # every character but the first is a target


def test_unigram_baseline_is_the_smoothed_frequency_entropy():
    train, validation = np.array([0, 0, 0, 1]), np.array([0, 1])
    expected = -np.mean(np.log2(np.array([4, 2]) / 6))  # counts 3 + 1 and 1 + 1 of 4 + 2
    assert unigram_bits_per_character(train, validation, 2) == pytest.approx(expected)


def twins(vocabulary_size=7, hidden_size=5, seed=3):
    params = charlm.init_char_lm(vocabulary_size, hidden_size, np.random.default_rng(seed), dtype=np.float64)
    model = torch_charlm.init_char_lm(vocabulary_size, hidden_size, np.random.default_rng(seed), dtype=torch.float64)
    return params, model


def test_loss_and_every_gradient_equal_torch_across_two_chunks(rng):
    params, model = twins()
    text = rng.integers(0, 7, size=(3, 21))
    state, torch_state = None, None
    for inputs, targets in chunks(text, 6):
        loss, grads, state = charlm.loss_and_gradients(params, inputs, targets, state)
        model.zero_grad()
        torch_loss, torch_state = torch_charlm.loss(
            model, torch.from_numpy(inputs), torch.from_numpy(targets), torch_state
        )
        torch_loss.backward()
        assert loss == pytest.approx(torch_loss.item(), rel=1e-12)
        named = dict(model.named_parameters())
        pairs = [(grads.head_weight, named["head.weight"]), (grads.head_bias, named["head.bias"])]
        pairs += [(getattr(grads.lstm, name), named[f"lstm.{name}_l0"]) for name in grads.lstm._fields]
        for mine, theirs in pairs:
            assert_close(mine, theirs.grad, rtol=1e-9, atol=1e-12)
        assert_close(state[0], torch_state[0][0], rtol=1e-12, atol=1e-14)


def test_head_gradient_equals_central_differences(rng):
    params, _ = twins(vocabulary_size=4, hidden_size=3)
    inputs, targets = rng.integers(0, 4, size=(5, 2)), rng.integers(0, 4, size=(5, 2))
    _, grads, _ = charlm.loss_and_gradients(params, inputs, targets, None)

    def loss_of(weight):
        return charlm.loss_and_gradients(params._replace(head_weight=weight), inputs, targets, None)[0]

    assert relative_error(grads.head_weight, numerical_gradient(loss_of, params.head_weight)) < 1e-7


def test_bits_per_character_equal_between_twins_and_uniform_at_zero_weights(rng):
    params, model = twins()
    ids = rng.integers(0, 7, size=400)
    assert charlm.bits_per_character(params, ids, 4, 16) == pytest.approx(
        torch_charlm.bits_per_character(model, ids, 4, 16), rel=1e-10
    )
    zero = charlm.CharLMParams.from_arrays([np.zeros_like(a) for a in params.arrays()])
    assert charlm.bits_per_character(zero, ids, 4, 16) == pytest.approx(np.log2(7))


def test_sampling_twins_agree_and_low_temperature_is_greedy(rng):
    params, model = twins()
    prompt = np.array([1, 2, 3])
    ours = charlm.sample(params, prompt, 12, 1.0, np.random.default_rng(0))
    theirs = torch_charlm.sample(model, prompt, 12, 1.0, np.random.default_rng(0))
    assert np.array_equal(ours, theirs)
    cold = [tuple(charlm.sample(params, prompt, 8, 1e-4, np.random.default_rng(seed))) for seed in range(3)]
    assert len(set(cold)) == 1  # temperature -> 0 always picks the likeliest character
    with pytest.raises(ValueError, match="temperature must be > 0"):
        charlm.sample(params, prompt, 3, 0.0, rng)
    with pytest.raises(ValueError, match="prompt must be a non-empty"):
        charlm.sample(params, np.array([], dtype=np.int64), 3, 1.0, rng)
