r"""The discretised logistic mixture: PixelCNN++'s output distribution over 8-bit pixels.

Reference: Salimans et al. 2017 (PixelCNN++: the mixture, eq. 2, and its channel
coefficients, eq. 3). A pixel value on the 256-level grid owns the bin of width 2/255
around it in [-1, 1]; its probability is the logistic CDF's rise across that bin, the
two end bins reaching to ±∞, so the 256 probabilities sum to exactly 1. Inside a colour
pixel, the mean of G moves with R, and the mean of B with R and G.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def mixture_parts(params: torch.Tensor, c: int, m: int):
    """Split (B, M·(1+2C+C(C-1)/2), ...) into weights (B,M,..), means, log-scales (B,M,C,..)
    and the tanh-squashed channel coefficients (B, M, C(C-1)/2, ...)."""
    b, rest = params.shape[0], params.shape[2:]
    logit_w, params = params[:, :m], params[:, m:].reshape(b, m, -1, *rest)
    means, log_s, coeffs = params.split([c, c, c * (c - 1) // 2], dim=2)
    return logit_w, means, log_s.clamp(min=-7.0), torch.tanh(coeffs)


def channel_mean(means, coeffs, x, c: int):
    """Mean of channel c, moved by the values of channels before it (PixelCNN++ eq. 3)."""
    mean = means[:, :, c]
    for prev in range(c):
        mean = mean + coeffs[:, :, c * (c - 1) // 2 + prev] * x[:, None, prev]
    return mean


def logistic_mixture_log_prob(params: torch.Tensor, x: torch.Tensor, mixtures: int) -> torch.Tensor:
    r"""log p(x) per pixel (B, H, W), in nats, under a mixture of discretised logistics.

    x: (B, C, H, W) on the 256-level grid in [0, 1]. Bin k covers $[x_k - 1/255,
    x_k + 1/255]$ in [-1, 1] units, the two end bins reach to ±∞ (Salimans et al. 2017,
    eq. 2), so the 256 probabilities sum to exactly 1.
    """
    c = x.shape[1]
    logit_w, means, log_s, coeffs = mixture_parts(params, c, mixtures)
    xs = 2 * x - 1
    inv_s = torch.exp(-log_s)
    log_p = F.log_softmax(logit_w, dim=1)  # (B, M, H, W)
    for ch in range(c):
        centred = xs[:, None, ch] - channel_mean(means, coeffs, xs, ch)
        upper = inv_s[:, :, ch] * (centred + 1 / 255)
        lower = inv_s[:, :, ch] * (centred - 1 / 255)
        # σ(u) - σ(l) = σ(u)·σ(-l)·(1 - e^{-(u-l)}): stable in both tails
        inner = F.logsigmoid(upper) + F.logsigmoid(-lower) + torch.log(-torch.expm1(lower - upper))
        x_ch = xs[:, None, ch]
        log_p = log_p + torch.where(
            x_ch < -0.999,
            F.logsigmoid(upper),
            torch.where(x_ch > 0.999, F.logsigmoid(-lower), inner),
        )
    return torch.logsumexp(log_p, dim=1)
