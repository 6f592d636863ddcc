"""Text as rows of character ids: a vocabulary, whole names padded to one length,
windows of a stream, and a `Corpus` that holds a train and a test split together.

Rows are LongTensors (N, T+1): row[:, :-1] is read, row[:, 1:] is predicted, and -1
pads the end of a short row. A corpus with a `boundary` character (names: "\n") wraps
each line in it; prose is one stream, cut into overlapping windows.
"""

from __future__ import annotations

import math

import torch

from .data import TextSet


class CharVocab:
    """The vocabulary of a text: its distinct characters, sorted, each with an id.
    `CharVocab(text)`; encode and decode round-trip."""

    def __init__(self, chars: str):
        self.chars = "".join(sorted(set(chars)))
        if not self.chars:
            raise ValueError("CharVocab: needs at least one character")
        self.index = {ch: i for i, ch in enumerate(self.chars)}

    def __len__(self) -> int:
        return len(self.chars)

    def __contains__(self, ch: str) -> bool:
        return ch in self.index

    def encode(self, text: str) -> torch.Tensor:
        """A string -> its ids (len(text),), int64. An unknown character raises ValueError."""
        try:
            return torch.tensor([self.index[ch] for ch in text], dtype=torch.long)
        except KeyError as err:
            pos = next(i for i, ch in enumerate(text) if ch not in self.index)
            shown = self.chars if len(self.chars) <= 40 else self.chars[:40] + "..."
            raise ValueError(
                f"character {err.args[0]!r} (position {pos}) is not in the vocabulary of "
                f"{len(self)} characters: {shown!r}"
            ) from None

    def decode(self, ids) -> str:
        """ids (a sequence or 1-D tensor) -> the string; -1 (padding) is skipped."""
        ids = ids.tolist() if isinstance(ids, torch.Tensor) else list(ids)
        bad = [i for i in ids if not -1 <= i < len(self)]
        if bad:
            raise ValueError(f"ids must lie in 0..{len(self) - 1} (or -1, padding), got {bad[:5]}")
        return "".join(self.chars[i] for i in ids if i >= 0)


# ----------------------------------------------------------------------- rows of text


def name_rows(lines: list[str], vocab: CharVocab, boundary: str = "\n") -> torch.Tensor:
    """One row per line, boundary + line + boundary, padded with -1: (N, max_len + 2)."""
    if not lines:
        raise ValueError("name_rows: no lines")
    rows = torch.full((len(lines), max(map(len, lines)) + 2), -1, dtype=torch.long)
    for i, line in enumerate(lines):
        ids = vocab.encode(boundary + line + boundary)
        rows[i, : len(ids)] = ids
    return rows


def windows(ids: torch.Tensor, length: int) -> torch.Tensor:
    """A stream of ids cut into rows of length+1 that overlap by one, so that every id but
    the first is predicted exactly once, each from its own row's prefix: (N, length+1);
    the last row is padded with -1."""
    if ids.dim() != 1 or len(ids) < 2 or length < 1:
        raise ValueError(f"windows: a 1-D stream of >= 2 ids and length >= 1, got {ids.shape}")
    n = math.ceil((len(ids) - 1) / length)
    padded = torch.full((n * length + 1,), -1, dtype=torch.long)
    padded[: len(ids)] = ids
    return padded.unfold(0, length + 1, length)


class RandomWindows:
    """Training batches from a stream: `genedu.train.fit` permutes `starts`, and this
    transform turns each batch of starts into rows ids[s : s + length + 1], (B, length+1).

        w = RandomWindows(ids, 128); fit(model, w.starts, transform=w, ...)
    """

    def __init__(self, ids: torch.Tensor, length: int):
        if ids.dim() != 1 or len(ids) <= length + 1:
            raise ValueError(f"RandomWindows: a 1-D stream longer than {length + 1} ids")
        self.ids, self.offsets = ids, torch.arange(length + 1)
        self.starts = torch.arange(len(ids) - length)

    def __call__(self, starts: torch.Tensor, generator=None) -> torch.Tensor:
        return self.ids[starts[:, None] + self.offsets]


class Corpus:
    r"""A text data set as the models read it: one vocabulary for both splits, the
    boundary ("\n" when each line is an item, a name; "" for prose) and the rows.

        c = Corpus(data.load("names", "train"), data.load("names", "test"))
        rows, transform = c.train_data(block_size)
        genedu.train.fit(model, rows, transform=transform, steps=...)
        nats_per_char(model, c.test_rows(block_size))
    """

    def __init__(self, train: TextSet, test: TextSet):
        if not (isinstance(train, TextSet) and isinstance(test, TextSet)):
            raise ValueError(
                f"Corpus: needs text sets (names, tinyshakespeare, ...), got "
                f"{type(train).__name__} {getattr(train, 'name', '')!r}"
            )
        if train.by_line != test.by_line:
            raise ValueError("Corpus: train and test must both be lines, or both prose")
        self.name, self.train, self.test = train.name, train, test
        self.vocab = CharVocab(train.text + test.text)
        self.boundary = "\n" if train.by_line else ""

    @property
    def longest(self) -> int:
        """The rows' reading length a names model needs (longest line + 1); prose: 0."""
        return max(map(len, self.train.lines + self.test.lines)) + 1 if self.boundary else 0

    def train_data(self, block_size: int) -> tuple[torch.Tensor, RandomWindows | None]:
        """What `genedu.train.fit` takes, as (data, transform): all the names as rows, or
        random windows of block_size + 1 characters of the prose."""
        if self.boundary:
            return name_rows(self.train.lines, self.vocab, self.boundary), None
        w = RandomWindows(self.vocab.encode(self.train.text), block_size)
        return w.starts, w

    def test_rows(self, block_size: int) -> torch.Tensor:
        """The held-out split as rows: one per name, or consecutive windows of the prose
        (each character predicted once, from the block_size characters before it at most)."""
        if self.boundary:
            return name_rows(self.test.lines, self.vocab, self.boundary)
        return windows(self.vocab.encode(self.test.text), block_size)
