"""Checkers for the chapters' exercises: call one with your function to hear if it is right.

Each checker runs your function on fresh random inputs, compares it with genedu's own
implementation, prints a verdict with a hint, and returns True or False. A function
that still returns None counts as "not attempted yet", so a chapter runs top to
bottom before you have written anything.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from .baselines import BernoulliConfig, IndependentBernoulli
from .metrics import bits_per_dim as _bits_per_dim


def _verdict(ok: bool, name: str, hint: str) -> bool:
    print(f"✓ {name} is right." if ok else f"✗ {name} is not right yet. Hint: {hint}")
    return ok


def _attempted(result, name: str) -> bool:
    if result is None:
        print(f"… {name} returns None: not attempted yet.")
        return False
    return True


def bernoulli_log_prob(fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> bool:
    """Check fn(x, mu) -> log p(x) in nats, shape (N,), for independent Bernoulli pixels."""
    g = torch.Generator().manual_seed(1)
    mu = torch.rand(1, 4, 4, generator=g).clamp(0.05, 0.95)
    x = torch.bernoulli(torch.full((6, 1, 4, 4), 0.5), generator=g)
    result = fn(x, mu)
    if not _attempted(result, "bernoulli_log_prob"):
        return False
    reference = IndependentBernoulli(BernoulliConfig((1, 4, 4)))
    with torch.no_grad():
        reference.logits.copy_(torch.logit(mu))
        expected = reference.log_prob(x)
    if not isinstance(result, torch.Tensor) or result.shape != expected.shape:
        return _verdict(
            False,
            "bernoulli_log_prob",
            f"return one number per image, a tensor of shape {tuple(expected.shape)}",
        )
    if (result > 0).any():
        return _verdict(
            False, "bernoulli_log_prob", "a log-probability of binary data is never positive"
        )
    return _verdict(
        torch.allclose(result, expected, atol=1e-4),
        "bernoulli_log_prob",
        "sum x·log(mu) + (1 - x)·log(1 - mu) over every pixel of each image",
    )


def bits_per_dim(fn: Callable[[float, int], float]) -> bool:
    """Check fn(nll_nats, dims) -> bits per dimension."""
    cases = [(784 * math.log(2), 784), (100.0, 784), (3000.0, 3072)]
    results = [fn(nll, d) for nll, d in cases]
    if not _attempted(results[0], "bits_per_dim"):
        return False
    ok = all(
        abs(float(r) - _bits_per_dim(nll, d)) < 1e-6
        for r, (nll, d) in zip(results, cases, strict=True)
    )
    return _verdict(
        ok, "bits_per_dim", "divide by the number of dimensions and by ln 2 (nats to bits)"
    )
