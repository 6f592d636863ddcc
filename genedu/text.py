r"""Text, one character at a time: the chain rule again, from counts to a small transformer.

References: Shannon 1951 and Jurafsky & Martin, *Speech and Language Processing*, ch. 3
(n-gram models, add-k smoothing, interpolation); Witten & Bell 1991 (the interpolation
weights used here); Cho et al. 2014 (GRU) and Hochreiter & Schmidhuber 1997 (LSTM);
Vaswani et al. 2017 (the transformer: scaled dot-product attention, eq. 1); Radford et
al. 2019 (GPT-2's pre-norm blocks); Fan et al. 2018 (top-k sampling); Holtzman et al.
2020 (nucleus, top-p, sampling).

A text is a sequence of characters $x_1, \dots, x_T$, and, exactly as for PixelCNN's
pixels in raster order,

$$\log p(x) = \sum_{t=1}^{T} \log p(x_t \mid x_{<t}),$$

so every model here is a function from a prefix to a distribution over the next
character. They differ only in how much of the prefix they read: the n-gram its last
n-1 characters, the RNN a running summary, the transformer everything within its block.

Data come as rows of character ids, LongTensors (N, T+1): row[:, :-1] is read,
row[:, 1:] is predicted, and -1 pads the end of a short row (names). A model with a
`boundary` character (names: "\n") sees each sequence as boundary + text + boundary, so
it learns where names start and stop; a model without one (Shakespeare) continues a
stream. Every number is in nats: `log_prob` per row, `nats_per_char` per predicted
character (a name's closing boundary counts, as in makemore).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from . import inputs
from .corpus import CharVocab, Corpus, RandomWindows, name_rows, windows  # noqa: F401
from .decoding import (  # noqa: F401
    _device,
    decoding_explorer,
    filter_logits,
    generate,
    sample_ids,
)

SMOOTHING = ("interpolated", "add-k")
CELLS = ("gru", "lstm")


# ---------------------------------------------------------------------- the contract


@dataclass(frozen=True)
class CharConfig:
    """What every character model shares: its vocabulary and its boundary character."""

    vocab: str = ""  # every character the model knows, as one string
    boundary: str = ""  # "\n" for names (start and stop of each), "" for a stream

    def __post_init__(self):
        if len(set(self.vocab)) < 2:
            raise ValueError(f"{type(self).__name__}: vocab needs >= 2 characters")
        if len(self.boundary) > 1 or (self.boundary and self.boundary not in self.vocab):
            raise ValueError(
                f"{type(self).__name__}: boundary must be '' or one character of the vocab, "
                f"got {self.boundary!r}"
            )


class CharModel(nn.Module):
    """The shared half of every character model: `forward(idx)` maps ids (B, T) to
    next-character logits (B, T, V); `loss`, `log_prob` and `sample` follow from it."""

    context_size: int  # how many of the latest characters `forward` reads when generating

    def __init__(self, config: CharConfig):
        super().__init__()
        self.config = config
        self.vocab = CharVocab(config.vocab)

    def check_rows(self, x: torch.Tensor) -> None:
        name = type(self).__name__
        if not isinstance(x, torch.Tensor) or x.dtype != torch.long:
            raise TypeError(f"{name}: expected rows of character ids, an int64 tensor (N, T+1), "
                            f"got {inputs.described(x)}")  # fmt: skip
        if x.dim() != 2 or len(x) == 0:
            raise ValueError(f"{name}: expected rows of character ids, a non-empty (N, T+1), "
                             f"got {inputs.described(x)}")  # fmt: skip
        if x.shape[1] < 2 or x.min() < -1 or x.max() >= len(self.vocab):
            raise ValueError(
                f"{type(self).__name__}: expected rows of T+1 >= 2 ids in 0..{len(self.vocab) - 1} "
                f"(-1 pads), got shape {tuple(x.shape)} and ids {x.min().item()}..{x.max().item()}"
            )

    def _token_log_probs(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """log p(x[:, t+1] | x[:, :t+1]) for every target, and where targets exist: (N, T)."""
        self.check_rows(x)
        logits = self(x[:, :-1].clamp(min=0))  # padding sits after the end: never read
        target = x[:, 1:]
        logp = logits.log_softmax(-1).gather(-1, target.clamp(min=0)[..., None])[..., 0]
        return logp, target >= 0

    def loss(self, batch: torch.Tensor) -> dict[str, torch.Tensor]:
        """Mean negative log-likelihood per predicted character, nats: {"loss"}."""
        logp, real = self._token_log_probs(batch)
        return {"loss": -(logp * real).sum() / real.sum().clamp(min=1)}

    def log_prob(self, x: torch.Tensor, *, y: None = None) -> torch.Tensor:
        """log p of each row's predicted characters, in nats: (N, T+1) -> (N,)."""
        inputs.labels(y, len(x), 0, what=f"{type(self).__name__}.log_prob")
        logp, real = self._token_log_probs(x)
        return (logp * real).sum(1)

    @torch.no_grad()
    def sample(
        self, n: int, *, y: None = None, generator=None, length: int = 100, **decoding
    ) -> torch.Tensor:
        """n sequences of up to `length` new ids after the boundary (or a newline), -1
        after a boundary-model's stop: (n, length). `decoding`: temperature, top_k, top_p."""
        n, length = inputs.count(n, "sample: n"), inputs.count(length, "sample: length")
        inputs.labels(y, n, 0, what=f"{type(self).__name__}.sample")
        chars = self.vocab.chars
        start = self.config.boundary or ("\n" if "\n" in chars else chars[0])
        ids = self.vocab.encode(start).repeat(n, 1)
        stop = self.vocab.index[self.config.boundary] if self.config.boundary else None
        return sample_ids(self, ids, length, stop=stop, generator=generator, **decoding)


def nats_per_char(model: CharModel, rows: torch.Tensor, batch_size: int = 256) -> float:
    """Mean negative log-likelihood per predicted character over `rows`, in nats."""
    was_training = model.training
    model.eval()
    dev = _device(model)
    total, count = 0.0, 0
    try:
        with torch.no_grad():
            for i in range(0, len(rows), batch_size):
                r = rows[i : i + batch_size].to(dev)
                total -= model.log_prob(r).sum().item()
                count += int((r[:, 1:] >= 0).sum())
    finally:
        model.train(was_training)
    return total / max(count, 1)


# -------------------------------------------------------------------- the n-gram model


@dataclass(frozen=True)
class NGramConfig(CharConfig):
    order: int = 3  # n: the next character given the n-1 before it
    smoothing: str = "interpolated"  # Witten-Bell interpolation, or "add-k"
    k: float = 0.1  # add-k's pseudo-count

    def __post_init__(self):
        super().__post_init__()
        if self.order < 1 or self.smoothing not in SMOOTHING or self.k <= 0:
            raise ValueError(
                f"NGramConfig: order >= 1, smoothing in {SMOOTHING} and k > 0, got "
                f"{self.order}, {self.smoothing!r}, {self.k}"
            )
        if len(set(self.vocab)) ** (self.order - 1) >= 2**62:  # a context's code: an int64
            raise ValueError(
                f"NGramConfig: order {self.order} is too long for {len(set(self.vocab))} "
                "characters: the contexts would not fit in 64-bit codes"
            )


class NGram(CharModel):
    r"""A count-based n-gram model: p(x_t | the n-1 characters before it), from counts.

    "add-k": $p = (c(h, x) + k) / (c(h) + kV)$ with h the full context; an unseen h
    gives the uniform distribution. "interpolated" (Witten & Bell 1991) mixes every
    order, from the uniform distribution up:
    $p_j(x|h_j) = (c(h_j, x) + N_{1+}(h_j)\, p_{j-1}(x|h_{j-1})) / (c(h_j) + N_{1+}(h_j))$,
    where $N_{1+}(h)$ counts the distinct characters seen after h; an unseen $h_j$
    keeps $p_{j-1}$. Either way each conditional sums to 1 over the vocabulary.
    `count(rows)` fits it: there is nothing to train by gradient. Its tables are buffers,
    so `genedu.hub` saves and loads it like any model.
    """

    def __init__(self, config: NGramConfig):
        super().__init__(config)
        self.context_size = max(config.order - 1, 1)
        for j in range(config.order):  # per context length j: its sorted codes, its counts
            self.register_buffer(f"keys{j}", torch.zeros(0, dtype=torch.long))
            self.register_buffer(f"counts{j}", torch.zeros(0, len(self.vocab), dtype=torch.long))

    def resize_buffers_for(self, tensors: dict[str, torch.Tensor]) -> None:
        """Make room for a checkpoint's tables (their sizes depend on the text counted)."""
        for j in range(self.config.order):
            for name in (f"keys{j}", f"counts{j}"):
                if name in tensors:
                    setattr(
                        self, name, torch.zeros_like(tensors[name], dtype=getattr(self, name).dtype)
                    )

    def _contexts(self, idx: torch.Tensor, j: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The code of the j characters before each next one, and whether all j exist:
        (B, T) each. A boundary model pads the left with its boundary (as makemore does)."""
        v = len(self.vocab)
        b = self.config.boundary
        xp = F.pad(idx, (j, 0), value=self.vocab.index[b] if b else -1)  # (B, T + j)
        codes = torch.zeros_like(idx)
        valid = torch.ones_like(idx, dtype=torch.bool)
        for r in range(j):  # xp[:, t + 1 + r] is the (j - r)-th character before target t
            col = xp[:, 1 + r : 1 + r + idx.shape[1]]
            codes = codes * v + col.clamp(min=0)
            valid &= col >= 0
        return codes, valid

    def count(self, rows: torch.Tensor) -> NGram:
        """Count every (context, next character) pair of `rows` (N, T+1), for each
        context length 0 .. n-1; returns the model."""
        self.check_rows(rows)
        v, target = len(self.vocab), rows[:, 1:]
        for j in range(self.config.order):
            codes, valid = self._contexts(rows[:, :-1].clamp(min=0), j)
            keep = valid & (target >= 0)
            keys, inverse = torch.unique(codes[keep], return_inverse=True)
            counts = torch.zeros(len(keys) * v, dtype=torch.long, device=rows.device)
            counts.index_add_(0, inverse * v + target[keep], torch.ones_like(inverse))
            setattr(self, f"keys{j}", keys)
            setattr(self, f"counts{j}", counts.view(len(keys), v))
        return self

    def _lookup(self, idx: torch.Tensor, j: int) -> torch.Tensor:
        """The counts after each position's j-character context, (B, T, V); zeros if unseen."""
        keys, counts = getattr(self, f"keys{j}"), getattr(self, f"counts{j}")
        if len(keys) == 0:
            return torch.zeros(*idx.shape, len(self.vocab), device=idx.device)
        codes, valid = self._contexts(idx, j)
        pos = torch.searchsorted(keys, codes).clamp(max=len(keys) - 1)
        found = (keys[pos] == codes) & valid
        return counts[pos].float() * found[..., None]

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        """ids (B, T) -> log p of the next character after each position, (B, T, V)."""
        if self.counts0.numel() == 0:
            raise ValueError("NGram: count(rows) first; the model has seen no text")
        v = len(self.vocab)
        if self.config.smoothing == "add-k":
            c = self._lookup(idx, self.config.order - 1)
            p = (c + self.config.k) / (c.sum(-1, keepdim=True) + self.config.k * v)
        else:
            p = torch.full((*idx.shape, v), 1.0 / v, device=idx.device)
            for j in range(self.config.order):
                c = self._lookup(idx, j)
                total, types = c.sum(-1, keepdim=True), (c > 0).sum(-1, keepdim=True)
                p = torch.where(total > 0, (c + types * p) / (total + types).clamp(min=1), p)
        return p.log()


# ------------------------------------------------------------------------ the RNN model


@dataclass(frozen=True)
class RNNConfig(CharConfig):
    cell: str = "gru"  # or "lstm"
    embed: int = 64
    hidden: int = 256
    layers: int = 2
    dropout: float = 0.0
    block_size: int = 128  # characters per training row, and the context when generating

    def __post_init__(self):
        super().__post_init__()
        if self.cell not in CELLS or min(self.embed, self.hidden, self.layers) < 1:
            raise ValueError(
                f"RNNConfig: cell in {CELLS}, embed, hidden and layers >= 1, got {self}"
            )
        if not 0 <= self.dropout < 1 or self.block_size < 1:
            raise ValueError(f"RNNConfig: dropout in [0, 1) and block_size >= 1, got {self}")


class CharRNN(CharModel):
    """Embedding -> a stacked GRU or LSTM -> logits: the prefix summarised in a state
    that each character updates (Cho et al. 2014; Hochreiter & Schmidhuber 1997)."""

    def __init__(self, config: RNNConfig):
        super().__init__(config)
        c = config
        self.context_size = c.block_size
        self.embed = nn.Embedding(len(self.vocab), c.embed)
        cell = nn.GRU if c.cell == "gru" else nn.LSTM
        self.rnn = cell(c.embed, c.hidden, c.layers, batch_first=True,
                        dropout=c.dropout if c.layers > 1 else 0.0)  # fmt: skip
        self.head = nn.Linear(c.hidden, len(self.vocab))

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        h, _ = self.rnn(self.embed(idx))  # (B, T, hidden)
        return self.head(h)  # (B, T, V)


# ---------------------------------------------------------------- the transformer model


@dataclass(frozen=True)
class TransformerConfig(CharConfig):
    block_size: int = 128  # the longest context, in characters
    layers: int = 4
    heads: int = 4
    hidden: int = 128
    dropout: float = 0.0

    def __post_init__(self):
        super().__post_init__()
        if min(self.block_size, self.layers, self.heads, self.hidden) < 1:
            raise ValueError(f"TransformerConfig: sizes must be >= 1, got {self}")
        if self.hidden % self.heads:
            raise ValueError(
                f"TransformerConfig: hidden ({self.hidden}) must be a multiple of heads "
                f"({self.heads})"
            )
        if not 0 <= self.dropout < 1:
            raise ValueError(f"TransformerConfig: dropout in [0, 1), got {self.dropout}")


def causal_attention_weights(q: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    r"""The attention probabilities $\mathrm{softmax}(QK^\top/\sqrt{d} + M)$ with
    $M_{ts} = -\infty$ for s > t: row t weighs the positions <= t and sums to 1.
    q, k (B, nh, T, hs) -> (B, nh, T, T)."""
    t = q.shape[-2]
    att = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])  # (B, nh, T, T)
    future = torch.ones(t, t, dtype=torch.bool, device=q.device).triu(1)
    return att.masked_fill(future, float("-inf")).softmax(-1)


def causal_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    r"""Masked scaled dot-product attention (Vaswani et al. 2017, eq. 1):
    $\mathrm{softmax}(QK^\top/\sqrt{d} + M)\,V$ with $M_{ts} = -\infty$ for s > t, so
    position t reads only positions <= t. q, k, v (B, nh, T, hs) -> (B, nh, T, hs)."""
    return causal_attention_weights(q, k) @ v


class CausalSelfAttention(nn.Module):
    """Multi-head self-attention over the past: one linear map makes the queries, keys
    and values of every head, `causal_attention` mixes them, another projects back."""

    def __init__(self, c: TransformerConfig):
        super().__init__()
        self.heads = c.heads
        self.qkv = nn.Linear(c.hidden, 3 * c.hidden)
        self.proj = nn.Linear(c.hidden, c.hidden)
        self.drop = nn.Dropout(c.dropout)

    def split_heads(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """x (B, T, d) -> the queries, keys and values of every head, (B, nh, T, d/nh) each."""
        b, t, d = x.shape
        q, k, v = self.qkv(x).split(d, dim=2)
        return tuple(z.view(b, t, self.heads, d // self.heads).transpose(1, 2) for z in (q, k, v))

    def weights(self, x: torch.Tensor) -> torch.Tensor:
        """x (B, T, d) -> each head's causal attention probabilities, (B, nh, T, T)."""
        q, k, _ = self.split_heads(x)
        return causal_attention_weights(q, k)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        y = causal_attention(*self.split_heads(x))  # (B, nh, T, d/nh)
        y = y.transpose(1, 2).reshape(b, t, d)  # the heads side by side
        return self.drop(self.proj(y))


class Block(nn.Module):
    """x + attention(norm(x)), then x + MLP(norm(x)): GPT-2's pre-norm residual block."""

    def __init__(self, c: TransformerConfig):
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(c.hidden), nn.LayerNorm(c.hidden)
        self.attn = CausalSelfAttention(c)
        self.mlp = nn.Sequential(
            nn.Linear(c.hidden, 4 * c.hidden),
            nn.GELU(),
            nn.Linear(4 * c.hidden, c.hidden),
            nn.Dropout(c.dropout),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln1(x))
        return x + self.mlp(self.ln2(x))


class CharTransformer(CharModel):
    """A small GPT: token and position embeddings, `layers` causal blocks, a final layer
    norm and a linear map to next-character logits."""

    def __init__(self, config: TransformerConfig):
        super().__init__(config)
        c = config
        self.context_size = c.block_size
        self.tok = nn.Embedding(len(self.vocab), c.hidden)
        self.pos = nn.Embedding(c.block_size, c.hidden)
        self.drop = nn.Dropout(c.dropout)
        self.blocks = nn.ModuleList(Block(c) for _ in range(c.layers))
        self.ln = nn.LayerNorm(c.hidden)
        self.head = nn.Linear(c.hidden, len(self.vocab))
        for name, p in self.named_parameters():  # GPT-2: N(0, 0.02), residual paths shrunk
            if p.dim() == 2:
                residual = name.endswith(("proj.weight", "mlp.2.weight"))
                nn.init.normal_(p, 0.0, 0.02 / math.sqrt(2 * c.layers) if residual else 0.02)
            elif name.endswith("bias"):
                nn.init.zeros_(p)

    def embeddings(self, idx: torch.Tensor) -> torch.Tensor:
        """ids (B, T) -> token plus position embeddings $E[x_t] + P[t]$, (B, T, d)."""
        t = idx.shape[1]
        if t > self.config.block_size:
            raise ValueError(
                f"CharTransformer: {t} positions exceed block_size {self.config.block_size}"
            )
        return self.tok(idx) + self.pos(torch.arange(t, device=idx.device))

    def logits_from_embeddings(self, h: torch.Tensor) -> torch.Tensor:
        """Embeddings h (B, T, d), as `embeddings` makes them -> next-character logits
        (B, T, V): dropout, the blocks, the final layer norm, the head. `forward` is this
        after `embeddings`; differentiate it with respect to h to see what reads what."""
        x = self.drop(h)
        for block in self.blocks:
            x = block(x)
        return self.head(self.ln(x))

    def attention_weights(self, idx: torch.Tensor, layer: int) -> torch.Tensor:
        """The causal attention probabilities of block `layer` (0-based: 0 is the first)
        for ids idx (B, T): (B, heads, T, T), row t over the positions s <= t, zero
        above the diagonal, each row summing to 1."""
        n = len(self.blocks)
        if not 0 <= layer < n:
            raise ValueError(
                f"CharTransformer.attention_weights: layer must lie in 0..{n - 1} "
                f"(0-based, {n} blocks), got {layer}"
            )
        x = self.drop(self.embeddings(idx))
        for block in self.blocks[:layer]:
            x = block(x)
        block = self.blocks[layer]
        return block.attn.weights(block.ln1(x))

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        """ids (B, T) -> next-character logits (B, T, V)."""
        return self.logits_from_embeddings(self.embeddings(idx))
