"""Checkers for the diffusion chapter's exercises: the forward marginal, a DDIM step,
the guidance combination and the flow-matching target, each against genedu.diffusion."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from .. import diffusion
from .verdict import _matches, _matches_each


def noised(fn: Callable) -> bool:
    """Check fn(x, eps, alpha_bar_t) -> √ᾱ_t x + √(1 - ᾱ_t) ε, with ᾱ_t (N,) per row."""
    g = torch.Generator().manual_seed(20)
    x, eps = torch.randn(6, 1, 4, 4, generator=g), torch.randn(6, 1, 4, 4, generator=g)
    ab = torch.rand(6, generator=g)
    expected = ab.sqrt().view(-1, 1, 1, 1) * x + (1 - ab).sqrt().view(-1, 1, 1, 1) * eps
    hint = ("keep sqrt(alpha_bar) of the signal and add sqrt(1 - alpha_bar) of the noise, "
            "so that the variances add to 1; alpha_bar has one value per row: reshape it "
            "to (N, 1, 1, 1) to broadcast over the image")  # fmt: skip
    return _matches(fn(x, eps, ab), expected, "noised", hint, atol=1e-6)


def ddim_step(fn: Callable) -> bool:
    """Check fn(x_t, eps, ab_t, ab_prev) -> one deterministic DDIM step (η = 0)."""
    g = torch.Generator().manual_seed(21)
    x, eps = torch.randn(5, 3, generator=g), torch.randn(5, 3, generator=g)
    settings = [(0.3, 0.5), (0.05, 0.9), (0.9, 1.0)]
    results = [fn(x, eps, a, b) for a, b in settings]
    expected = torch.stack([
        math.sqrt(b) * diffusion.noise_to_data(x, eps, math.sqrt(a), math.sqrt(1 - a))
        + math.sqrt(1 - b) * eps
        for a, b in settings
    ])  # fmt: skip
    hint = ("first the denoised guess x0 = (x_t - sqrt(1 - ab_t) eps) / sqrt(ab_t), then "
            "put it back at the earlier noise level: sqrt(ab_prev) x0 + sqrt(1 - ab_prev) "
            "eps; with ab_prev = 1 the step returns x0")  # fmt: skip
    return _matches_each(results, expected, "ddim_step", hint, atol=1e-5)


def guided(fn: Callable) -> bool:
    """Check fn(cond, uncond, w) -> uncond + w (cond - uncond)."""
    g = torch.Generator().manual_seed(22)
    cond, uncond = torch.randn(4, 6, generator=g), torch.randn(4, 6, generator=g)
    weights = (0.0, 1.0, 3.0)
    results = [fn(cond, uncond, w) for w in weights]
    expected = torch.stack([uncond + w * (cond - uncond) for w in weights])
    hint = ("start from the unconditional prediction and move w times the difference the "
            "class makes: w = 0 is unconditional, w = 1 the conditional prediction")  # fmt: skip
    return _matches_each(results, expected, "guided", hint, atol=1e-6)


def flow_target(fn: Callable) -> bool:
    """Check fn(x, eps, t) -> (x_t, u): the point t x + (1 - t) ε and its velocity x - ε."""
    g = torch.Generator().manual_seed(23)
    x, eps, t = torch.randn(6, 2, generator=g), torch.randn(6, 2, generator=g), torch.rand(6)
    result = fn(x, eps, t)
    if result is None:
        return _matches(None, x, "flow_target", "")
    if not (isinstance(result, tuple) and len(result) == 2):
        return _matches(torch.zeros(0), x, "flow_target", "return the pair (x_t, u)")
    expected = torch.stack([t[:, None] * x + (1 - t[:, None]) * eps, x - eps])
    hint = ("x_t moves on the straight line from the noise (t = 0) to the data (t = 1); "
            "its velocity d x_t / dt is the same all along the line; t has one value per "
            "row: t[:, None] broadcasts it over the coordinates")  # fmt: skip
    return _matches(torch.stack(list(result)), expected, "flow_target", hint, atol=1e-6)
