"""The book's offline text corpus and the plumbing of character-level language models (chapters 4-6).

The corpus is the help text that ships with CPython itself (`pydoc_data.topics`: the language
reference entries that `help("assert")` prints), about 465,000 characters of English prose and
Python code: nothing to download, the same on every machine with the same Python version.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from dlbook._validation import require_int


def load_corpus() -> str:
    """All of `pydoc_data.topics`, the topics in sorted order, as one string."""
    from pydoc_data.topics import topics

    return "".join(topics[name] for name in sorted(topics))


@dataclass(frozen=True)
class Vocabulary:
    """The characters of a text, each with an integer id (its rank in sorted order)."""

    characters: tuple[str, ...]

    @classmethod
    def of(cls, text: str) -> Vocabulary:
        return cls(tuple(sorted(set(text))))

    def __len__(self) -> int:
        return len(self.characters)

    def encode(self, text: str) -> np.ndarray:
        """text -> (len(text),) int64 ids; a character outside the vocabulary is an error."""
        index = {character: i for i, character in enumerate(self.characters)}
        unknown = sorted(set(text) - set(index))
        if unknown:
            raise ValueError(f"characters not in the vocabulary: {unknown!r}")
        return np.fromiter((index[character] for character in text), dtype=np.int64, count=len(text))

    def decode(self, ids: Sequence[int] | np.ndarray) -> str:
        return "".join(self.characters[int(i)] for i in ids)


def split(ids: np.ndarray, validation_fraction: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
    """The first (1 - fraction) of the text for training, the rest for validation: a contiguous cut,
    so no validation sentence was seen in training."""
    if not 0 < validation_fraction < 1:
        raise ValueError(f"validation_fraction must lie strictly between 0 and 1, got {validation_fraction!r}")
    cut = round(len(ids) * (1 - validation_fraction))
    return ids[:cut], ids[cut:]


def streams(ids: np.ndarray, n_streams: int) -> np.ndarray:
    """Cut the text into n_streams equal contiguous pieces, one per row: (n_streams, L). A batch of
    rows then reads n_streams places of the text in parallel, and a recurrent model can carry its
    state from one chunk of a row to the next (truncated backpropagation through time)."""
    n_streams = require_int("n_streams", n_streams, minimum=1)
    length = len(ids) // n_streams
    if length < 2:
        raise ValueError(f"a text of {len(ids)} characters is too short for {n_streams} streams")
    return ids[: length * n_streams].reshape(n_streams, length)


def chunks(rows: np.ndarray, length: int, keep_last: bool = False) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Consecutive (inputs, targets) chunks of `length` steps from streams (N, L), time-major:
    inputs (length, N) and targets (length, N), the targets being the inputs shifted by one character.
    keep_last: also yield the final, shorter chunk, so that every character but each stream's first
    is predicted once (for evaluation; training keeps chunks of equal length)."""
    length = require_int("length", length, minimum=1)
    last = rows.shape[1] - 1  # the last input position that still has a target
    for start in range(0, last, length):
        stop = min(start + length, last)
        if stop - start < length and not keep_last:
            return
        yield rows[:, start:stop].T, rows[:, start + 1 : stop + 1].T


def unigram_bits_per_character(train: np.ndarray, validation: np.ndarray, vocabulary_size: int) -> float:
    """Bits per character on `validation` of the model that ignores context and predicts every
    character with its training frequency (add-one smoothed, so no character has probability 0)."""
    counts = np.bincount(train, minlength=vocabulary_size) + 1.0
    return float(-np.mean(np.log2(counts[validation] / counts.sum())))
