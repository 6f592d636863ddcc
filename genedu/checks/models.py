"""The model chapters' checkers: likelihoods and bits, the VAE, the GAN, PixelCNN,
StyleGAN and the text models."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from ..baselines import BernoulliConfig, IndependentBernoulli
from ..metrics import bits_per_dim as _bits_per_dim
from .verdict import _attempted, _close, _matches, _matches_each, _verdict


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


def gaussian_kl_between(fn: Callable[..., torch.Tensor]) -> bool:
    """Check fn(mu_q, logvar_q, mu_p, logvar_p) -> KL(q || p) per row, in nats, shape (N,)."""
    from torch.distributions import Normal, kl_divergence

    g = torch.Generator().manual_seed(2)
    mu_q, lv_q, mu_p, lv_p = (torch.randn(5, 3, generator=g) for _ in range(4))
    result = fn(mu_q, lv_q, mu_p, lv_p)
    if not _attempted(result, "gaussian_kl_between"):
        return False
    q, p = Normal(mu_q, (0.5 * lv_q).exp()), Normal(mu_p, (0.5 * lv_p).exp())
    expected = kl_divergence(q, p).sum(-1)
    return _close(
        result,
        expected,
        "gaussian_kl_between",
        "per dimension ½[log σp² − log σq² + (σq² + (μq − μp)²)/σp² − 1], summed over the row",
    )


def log_mean_exp(fn: Callable[[torch.Tensor], torch.Tensor]) -> bool:
    """Check fn(log_w) -> log((1/k) Σ_i exp(log_w[:, i])) per row, stably, shape (N,)."""
    g = torch.Generator().manual_seed(3)
    log_w = torch.randn(4, 10, generator=g) * 3 - 100.0
    result = fn(log_w)
    if not _attempted(result, "log_mean_exp"):
        return False
    expected = torch.logsumexp(log_w, 1) - math.log(log_w.shape[1])
    if not _close(result, expected, "log_mean_exp", "log of the mean of exp, per row"):
        return False
    tiny = fn(torch.full((2, 5), -1000.0))  # exp(-1000) is 0 in floating point
    return _verdict(
        isinstance(tiny, torch.Tensor) and bool(torch.allclose(tiny, torch.full((2,), -1000.0))),
        "log_mean_exp on log-weights of -1000",
        "subtract the row's maximum before exp and add it back after the log (logsumexp)",
    )


def active_units(fn: Callable[[torch.Tensor], int]) -> bool:
    """Check fn(mu) -> how many latent dimensions have Var_x[mu_j(x)] > 0.01 (Burda et al.)."""
    g = torch.Generator().manual_seed(4)
    scales = torch.tensor([1.0, 0.5, 0.2, 0.05, 0.01, 0.0])  # variances 1 .. 1e-4, and 0
    mu = torch.randn(2000, 6, generator=g) * scales + torch.linspace(-2, 2, 6)
    result = fn(mu)
    if not _attempted(result, "active_units"):
        return False
    return _verdict(
        int(result) == 3,
        "active_units",
        "the variance over the images (dimension 0) of each latent mean, compared with 0.01",
    )


def gaussian_log_likelihood(fn: Callable[..., torch.Tensor]) -> bool:
    """Check fn(x, mean, log_sigma) -> Σ_pixels log N(x; mean, σ²) per image, shape (N,)."""
    from torch.distributions import Normal

    g = torch.Generator().manual_seed(5)
    x, mean = torch.rand(3, 1, 4, 5, generator=g), torch.rand(3, 1, 4, 5, generator=g)
    log_sigma = torch.tensor(-2.0)
    result = fn(x, mean, log_sigma)
    if not _attempted(result, "gaussian_log_likelihood"):
        return False
    expected = Normal(mean, log_sigma.exp()).log_prob(x).flatten(1).sum(1)
    return _close(
        result,
        expected,
        "gaussian_log_likelihood",
        "per pixel −½ log 2π − log σ − (x − mean)²/(2σ²), summed over each image",
    )


def discrete_bits_per_dim(fn: Callable[[float, int], float]) -> bool:
    """Check fn(nll_nats, dims) -> bits/dim of 8-bit data from a density on pixels k/255."""
    cases = [(-1000.0, 560), (0.0, 784), (250.0, 4096)]
    results = [fn(nll, d) for nll, d in cases]
    if not _attempted(results[0], "discrete_bits_per_dim"):
        return False
    expected = [_bits_per_dim(nll + d * math.log(255), d) for nll, d in cases]
    ok = all(abs(float(r) - e) < 1e-6 for r, e in zip(results, expected, strict=True))
    return _verdict(
        ok,
        "discrete_bits_per_dim",
        "a level's bin of width 1/255 holds about density × 1/255: add D·ln 255 nats, then convert",
    )


def nonsaturating_generator_loss(fn: Callable[[torch.Tensor], torch.Tensor]) -> bool:
    """Check fn(fake_logits) -> G's non-saturating loss, mean of -log sigmoid(logit)."""
    from ..gan import generator_loss

    logits = torch.randn(64, generator=torch.Generator().manual_seed(6)) * 4
    return _matches(
        fn(logits),
        generator_loss(logits, "nonsaturating"),
        "nonsaturating_generator_loss",
        "−log σ(ℓ) = softplus(−ℓ); average it over the batch (a scalar)",
        atol=1e-5,
    )


def frechet_distance(fn: Callable[..., float]) -> bool:
    """Check fn(mu1, sigma1, mu2, sigma2) -> the Fréchet distance of two Gaussians."""
    from ..metrics import frechet_distance as reference

    g = torch.Generator().manual_seed(7)
    a, b = (torch.randn(5, 5, generator=g, dtype=torch.float64) for _ in range(2))
    s1, s2 = a @ a.T + 0.1 * torch.eye(5), b @ b.T + 0.1 * torch.eye(5)
    mu1, mu2 = (torch.randn(5, generator=g, dtype=torch.float64) for _ in range(2))
    result = fn(mu1, s1, mu2, s2)
    if not _attempted(result, "frechet_distance"):
        return False
    expected = torch.tensor(reference(mu1, s1, mu2, s2), dtype=torch.float64)
    return _close(
        torch.as_tensor(float(result), dtype=torch.float64),
        expected,
        "frechet_distance",
        "‖μ1 − μ2‖² + tr(Σ1 + Σ2 − 2 (Σ1^½ Σ2 Σ1^½)^½); a symmetric square root comes "
        "from torch.linalg.eigh (clamp tiny negative eigenvalues to 0)",
        atol=1e-6 * float(expected),
    )


def knn_precision(fn: Callable[[torch.Tensor, torch.Tensor, int], float]) -> bool:
    """Check fn(real, fake, k) -> the share of fake points inside the real k-NN manifold."""
    from ..metrics import precision_recall

    g = torch.Generator().manual_seed(8)
    real = torch.randn(300, 4, generator=g, dtype=torch.float64)
    fake = 1.5 * torch.randn(200, 4, generator=g, dtype=torch.float64) + 0.5
    result = fn(real, fake, 3)
    if not _attempted(result, "knn_precision"):
        return False
    expected = precision_recall(real, fake, k=3)["precision"]
    return _verdict(
        abs(float(result) - expected) < 1e-9,
        "knn_precision",
        f"expected {expected:.4f}, got {float(result):.4f}: each real point's radius is the "
        "distance to its k-th nearest *other* real point (kthvalue(k + 1) skips itself)",
    )


def causal_mask(fn: Callable[[int, str], torch.Tensor]) -> bool:
    """Check fn(kernel_size, mask_type) -> the (k, k) 0/1 mask of a PixelCNN kernel."""
    from ..pixelcnn import MaskedConv2d

    for k, kind in ((3, "A"), (5, "B"), (7, "A"), (5, "A")):
        result = fn(k, kind)
        if not _attempted(result, "causal_mask"):
            return False
        expected = MaskedConv2d(1, 1, k, kind).mask[0, 0]
        if not isinstance(result, torch.Tensor) or result.shape != (k, k):
            return _verdict(False, "causal_mask", f"return a ({k}, {k}) tensor for kernel {k}")
        if not torch.equal(result.float(), expected):
            return _verdict(
                False,
                "causal_mask",
                f"kernel {k}, mask {kind}: ones on every row above the centre, and on the "
                "centre row left of the centre; the centre itself only for mask B",
            )
    return _verdict(True, "causal_mask", "")


def discretized_logistic_log_prob(fn: Callable[..., torch.Tensor]) -> bool:
    """Check fn(x, mean, log_scale) -> log P(x) per value, for 8-bit x in [0, 1] and one
    logistic in [-1, 1] units, the end bins reaching to ±infinity."""
    from ..pixelcnn import logistic_mixture_log_prob

    g = torch.Generator().manual_seed(3)
    mean = torch.rand(50, generator=g, dtype=torch.float64) * 2 - 1
    log_scale = torch.rand(50, generator=g, dtype=torch.float64) * 1.5 - 2.5
    u = (mean + torch.rand(50, generator=g, dtype=torch.float64) - 0.5).clamp(-1, 1)
    x = ((u + 1) * 255 / 2).round() / 255  # 8-bit values near each mean, in float64
    x[:2] = torch.tensor([0.0, 1.0])  # the two end bins
    result = fn(x, mean, log_scale)
    if not _attempted(result, "discretized_logistic_log_prob"):
        return False
    params = torch.stack([torch.zeros_like(mean), mean, log_scale], 1)[..., None, None]
    expected = logistic_mixture_log_prob(params, x[:, None, None, None], 1).flatten()
    if not isinstance(result, torch.Tensor) or result.shape != expected.shape:
        return _verdict(
            False, "discretized_logistic_log_prob", "return one log-probability per value: (50,)"
        )
    return _verdict(
        torch.allclose(result, expected, atol=1e-4),
        "discretized_logistic_log_prob",
        "with u = 2x - 1 and s = exp(log_scale): log[σ((u + 1/255 - mean)/s) - "
        "σ((u - 1/255 - mean)/s)]; at x = 0 drop the lower σ, at x = 1 the upper one is 1",
    )


def modulated_conv2d(fn: Callable[..., torch.Tensor]) -> bool:
    """Check fn(x, weight, styles) -> StyleGAN2's demodulated convolution, 'same' padding."""
    from ..stylegan import modulated_conv2d as reference

    g = torch.Generator().manual_seed(9)
    x, weight = torch.randn(3, 4, 7, 7, generator=g), torch.randn(5, 4, 3, 3, generator=g)
    styles = torch.rand(3, 4, generator=g) * 2 + 0.1
    hint = (
        "per example n: w' = weight · styles[n] over input channels, then divide each "
        "output channel's w' by sqrt(sum of its squares + 1e-8); conv with padding k // 2"
    )
    args = (x, weight, styles)
    return _matches(fn(*args), reference(*args), "modulated_conv2d", hint, atol=1e-4)


def truncate(fn: Callable[[torch.Tensor, torch.Tensor, float], torch.Tensor]) -> bool:
    """Check fn(w, w_avg, psi) -> the truncated styles w_avg + psi (w - w_avg)."""
    g = torch.Generator().manual_seed(10)
    w, w_avg = torch.randn(6, 8, generator=g), torch.randn(8, generator=g)
    results = [fn(w, w_avg, psi) for psi in (0.0, 0.7, 1.0)]
    expected = torch.stack([w_avg + psi * (w - w_avg) for psi in (0.0, 0.7, 1.0)])
    hint = (
        "move each w towards the average by the factor psi: psi = 0 gives w_avg for "
        "every row, psi = 1 gives w back; w_avg (D,) broadcasts over the rows (N, D)"
    )
    return _matches_each(results, expected, "truncate", hint, atol=1e-6)


def mixed_styles(fn: Callable[[torch.Tensor, torch.Tensor, int, int], torch.Tensor]) -> bool:
    """Check fn(w1, w2, crossover, num_ws) -> ws (N, num_ws, D): w1 before, w2 from crossover."""
    g = torch.Generator().manual_seed(11)
    w1, w2 = torch.randn(3, 4, generator=g), torch.randn(3, 4, generator=g)
    results = [fn(w1, w2, c, 6) for c in (0, 2, 6)]
    # (3 crossovers, N, num_ws, D)
    expected = torch.stack([torch.stack([w1] * c + [w2] * (6 - c), dim=1) for c in (0, 2, 6)])
    hint = ("ws[:, i] is w1 for the layers i < crossover (the coarse ones) and w2 for the "
            "rest; the result has shape (N, num_ws, D)")  # fmt: skip
    return _matches_each(results, expected, "mixed_styles", hint, atol=0.0)


def bigram_probabilities(fn: Callable[[torch.Tensor, int, float], torch.Tensor]) -> bool:
    """Check fn(ids, vocab_size, k) -> P (V, V), P[a, b] = p(b follows a), add-k smoothed."""
    g = torch.Generator().manual_seed(12)
    ids = torch.randint(0, 5, (40,), generator=g)
    result = fn(ids, 6, 0.5)  # character 5 never occurs: its row must still sum to 1
    if not _attempted(result, "bigram_probabilities"):
        return False
    counts = torch.zeros(6, 6).index_put_((ids[:-1], ids[1:]), torch.ones(39), accumulate=True)
    expected = (counts + 0.5) / (counts + 0.5).sum(1, keepdim=True)
    return _close(
        torch.as_tensor(result, dtype=torch.float32),
        expected,
        "bigram_probabilities",
        "count each pair (ids[t], ids[t+1]) into a V×V table, add k to every cell, then "
        "divide each row by its sum so that every row, even an unseen character's, sums to 1",
        atol=1e-5,
    )


def top_p_filter(fn: Callable[[torch.Tensor, float], torch.Tensor]) -> bool:
    """Check fn(probs, p) -> probs restricted to the nucleus and renormalised, (B, V)."""
    from ..text import filter_logits

    g = torch.Generator().manual_seed(13)
    probs = torch.softmax(torch.randn(5, 9, generator=g) * 2, -1)
    results = [fn(probs, p) for p in (0.3, 0.75, 0.95)]
    if not _attempted(results[0], "top_p_filter"):
        return False
    expected = torch.stack([filter_logits(probs.log(), top_p=p).exp() for p in (0.3, 0.75, 0.95)])
    return _close(
        torch.stack([torch.as_tensor(r, dtype=torch.float32) for r in results]),
        expected,
        "top_p_filter",
        "sort each row's probabilities from the largest down, keep the shortest prefix whose "
        "sum reaches p (always at least one), zero the rest, and divide by the kept sum",
        atol=1e-5,
    )


def causal_attention(fn: Callable[..., torch.Tensor]) -> bool:
    """Check fn(q, k, v) -> masked scaled dot-product attention, (B, nh, T, hs)."""
    from ..text import causal_attention as reference

    g = torch.Generator().manual_seed(14)
    q, k, v = torch.randn(3, 2, 2, 6, 4, generator=g).unbind(0)
    hint = (
        "scores q @ k.transpose(-2, -1) / sqrt(hs); set the scores of later positions "
        "(above the diagonal) to -inf before the softmax over the last axis; then @ v"
    )
    return _matches(fn(q, k, v), reference(q, k, v), "causal_attention", hint, atol=1e-5)
