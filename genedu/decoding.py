"""Turning a character model's next-character logits into text: temperature, top-k and
top-p (nucleus) filtering, then sampling one character at a time.

References: Fan et al. 2018 (top-k sampling); Holtzman et al. 2020 (nucleus sampling).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn

from . import inputs

if TYPE_CHECKING:
    from .text import CharModel


def _device(model: nn.Module) -> torch.device:
    """Where the model's tensors live (the CPU for a model without any)."""
    for t in (*model.parameters(), *model.buffers()):
        return t.device
    return torch.device("cpu")


def filter_logits(
    logits: torch.Tensor,
    *,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
) -> torch.Tensor:
    """Next-character logits (B, V) -> the log-probabilities to sample from, -inf outside
    the kept support. temperature divides the logits (0: greedy, all mass on the argmax);
    top_k keeps the k likeliest; top_p keeps the smallest set of likeliest characters
    whose probability reaches p (Holtzman et al. 2020)."""
    temperature = inputs.number(temperature, "temperature", low=0)
    top_k = None if top_k is None else inputs.count(top_k, "top_k")
    top_p = None if top_p is None else inputs.number(top_p, "top_p", low=0, high=1, open_low=True)
    logits = logits.float()
    if temperature == 0:
        keep = F.one_hot(logits.argmax(-1), logits.shape[-1]).bool()
        return torch.zeros_like(logits).masked_fill(~keep, float("-inf"))
    logits = (logits - logits.max(-1, keepdim=True).values) / temperature  # no overflow
    if top_k is not None and top_k < logits.shape[-1]:  # exactly k, as argmax breaks ties
        keep = torch.zeros_like(logits, dtype=torch.bool)
        order = logits.sort(dim=-1, descending=True, stable=True).indices  # ties: lower id first
        keep.scatter_(-1, order[..., :top_k], True)
        logits = logits.masked_fill(~keep, float("-inf"))
    if top_p is not None and top_p < 1:
        probs, order = logits.softmax(-1).sort(-1, descending=True)
        before = probs.cumsum(-1) - probs  # mass of the likelier characters
        drop_sorted = before >= top_p  # already reached p without this one
        drop = torch.zeros_like(drop_sorted).scatter(-1, order, drop_sorted)
        logits = logits.masked_fill(drop, float("-inf"))
    return logits.log_softmax(-1)


@torch.no_grad()
def sample_ids(
    model: CharModel,
    ids: torch.Tensor,
    n: int,
    *,
    stop: int | None = None,
    generator: torch.Generator | None = None,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
) -> torch.Tensor:
    """Extend the contexts ids (B, T0) by up to n ids each, one at a time: (B, n). After
    a row draws `stop`, the rest of it is -1. Draws on the CPU, so a seed repeats."""
    if not isinstance(ids, torch.Tensor) or ids.dtype != torch.long:
        raise TypeError(f"sample_ids: expected int64 contexts (B, T0), got {inputs.described(ids)}")
    if ids.dim() != 2 or ids.shape[1] < 1 or len(ids) == 0:
        raise ValueError(f"sample_ids: contexts (B, T0) with B, T0 >= 1, got {tuple(ids.shape)}")
    n = inputs.count(n, "sample_ids: n", minimum=0)
    was_training = model.training
    model.eval()
    dev = _device(model)
    out = torch.full((len(ids), n), -1, dtype=torch.long)
    done = torch.zeros(len(ids), dtype=torch.bool)
    ctx = ids.to(dev)
    try:
        for i in range(n):
            logits = model(ctx[:, -model.context_size :])[:, -1].cpu()  # (B, V)
            logp = filter_logits(logits, temperature=temperature, top_k=top_k, top_p=top_p)
            nxt = torch.multinomial(logp.exp(), 1, generator=generator)[:, 0]
            out[:, i] = nxt.masked_fill(done, -1)
            if stop is not None:
                done |= nxt == stop
                if done.all():
                    break
            ctx = torch.cat([ctx, nxt[:, None].to(dev)], 1)
    finally:
        model.train(was_training)
    return out


def generate(
    model: CharModel,
    prompt: str,
    n: int,
    *,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    stop: str | None = None,
    num_samples: int | None = None,
    generator: torch.Generator | None = None,
) -> str | list[str]:
    """The prompt continued by up to n characters: one string, or a list of num_samples.

    A model with a boundary (names) starts a new sequence, so "" asks for a whole name
    and "ma" for one that begins with "ma"; generation stops at `stop` (default: the
    boundary), which is not returned. A model without one continues a text, so its
    prompt must not be empty.
    """
    if not isinstance(prompt, str):
        raise TypeError(f"generate: expected the prompt as a str, got {inputs.described(prompt)}")
    n = inputs.count(n, "generate: n", minimum=0)
    if num_samples is not None:
        num_samples = inputs.count(num_samples, "generate: num_samples")
    boundary = model.config.boundary
    if not prompt and not boundary:
        raise ValueError(
            "generate: this model continues a text, so it needs a non-empty prompt "
            "(for example 'ROMEO:')"
        )
    ids = torch.cat([model.vocab.encode(boundary), model.vocab.encode(prompt)])  # names any
    stop = boundary if stop is None else stop  # unknown character, at its prompt position
    if len(stop) > 1:
        raise ValueError(f"generate: stop is one character (or ''), got {stop!r}")
    stop_id = model.vocab.encode(stop)[0].item() if stop else None
    b = 1 if num_samples is None else num_samples
    new = sample_ids(model, ids.repeat(b, 1), n, stop=stop_id, generator=generator,
                     temperature=temperature, top_k=top_k, top_p=top_p)  # fmt: skip
    texts = []
    for row in new:
        row = row[row >= 0]
        if stop_id is not None and len(row) and row[-1] == stop_id:
            row = row[:-1]
        texts.append(prompt + model.vocab.decode(row))
    return texts[0] if num_samples is None else texts


def decoding_explorer(model, prompt: str, *, n: int = 200, samples: int = 3, seed: int = 0):
    """An ipywidgets explorer for a character model (`genedu.text`): temperature, top-k and top-p
    sliders, and the continuations of `prompt` they give (the same seed each time, so
    only the decoding changes). As with the other explorers, the first text stays in a
    built book; moving the sliders needs a running kernel. Returns the widget."""
    import html

    import ipywidgets as widgets

    temperature = widgets.FloatSlider(value=1.0, min=0.0, max=2.0, step=0.05,
                                      description="temperature")  # fmt: skip
    top_k = widgets.IntSlider(value=0, min=0, max=len(model.vocab), description="top-k (0 off)")
    top_p = widgets.FloatSlider(value=1.0, min=0.05, max=1.0, step=0.05, description="top-p")
    shown = widgets.HTML()

    def redraw(_=None) -> None:
        texts = generate(
            model, prompt, n, temperature=temperature.value, top_k=top_k.value or None,
            top_p=top_p.value, num_samples=samples, generator=torch.Generator().manual_seed(seed),
        )  # fmt: skip
        blocks = "".join(f"<pre style='white-space:pre-wrap'>{html.escape(t)}</pre>" for t in texts)
        shown.value = blocks

    for w in (temperature, top_k, top_p):
        w.observe(redraw, names="value")
    redraw()
    return widgets.VBox([widgets.HBox([temperature, top_k, top_p]), shown])
