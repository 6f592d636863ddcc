"""The exercise checkers: a right answer passes, a wrong one fails, None is 'not yet'."""

from __future__ import annotations

import math

import pytest
import torch

from genedu import checks
from genedu.vae import gaussian_kl


def kl_between(mu_q, lv_q, mu_p, lv_p):
    return 0.5 * ((lv_q - lv_p).exp() + (mu_q - mu_p) ** 2 / lv_p.exp() - 1 - lv_q + lv_p).sum(-1)


def gauss_ll(x, mean, log_sigma):
    z = (x - mean) / log_sigma.exp()
    return (-0.5 * math.log(2 * math.pi) - log_sigma - 0.5 * z**2).flatten(1).sum(1)


def fd_diag_only(mu1, s1, mu2, s2):  # treats the covariances as diagonal
    v1, v2 = s1.diagonal(), s2.diagonal()
    return ((mu1 - mu2) ** 2).sum() + ((v1.sqrt() - v2.sqrt()) ** 2).sum()


def frechet_by_eigh(mu1, s1, mu2, s2):  # chapter 4's solution, written independently
    def sqrtm(m):
        vals, vecs = torch.linalg.eigh(m)
        return (vecs * vals.clamp(min=0).sqrt()) @ vecs.T

    root = sqrtm(s1)
    return float(((mu1 - mu2) ** 2).sum() + torch.trace(s1 + s2 - 2 * sqrtm(root @ s2 @ root)))


def precision_of(real, fake, k, skip_self=True):
    radius = torch.cdist(real, real).kthvalue(k + int(skip_self), dim=1).values
    return (torch.cdist(fake, real) <= radius[None]).any(1).double().mean().item()


def causal_mask_by_hand(k, mask_type):  # chapter 5's solution, written independently
    mask = torch.zeros(k, k)
    mask[: k // 2] = 1
    mask[k // 2, : k // 2 + (mask_type == "B")] = 1
    return mask


def logistic_by_cdf(x, mean, log_scale, tails=True):  # chapter 5's solution
    u, s = 2 * x - 1, log_scale.exp()
    upper, lower = torch.sigmoid((u + 1 / 255 - mean) / s), torch.sigmoid((u - 1 / 255 - mean) / s)
    if tails:
        upper, lower = torch.where(x >= 1, 1.0, upper), torch.where(x <= 0, 0.0, lower)
    return torch.log((upper - lower).clamp(min=1e-12))


def bigram_by_loop(ids, v, k, smooth_rows=True):  # chapter 7's solution
    counts = torch.zeros(v, v)
    for a, b in zip(ids[:-1].tolist(), ids[1:].tolist(), strict=True):
        counts[a, b] += 1
    smoothed = counts + k if smooth_rows else counts + k * (counts.sum(1, keepdim=True) > 0)
    return smoothed / smoothed.sum(1, keepdim=True).clamp(min=1e-12)


def nucleus_by_sort(probs, p, include_crossing=True):  # chapter 7's solution
    sorted_p, order = probs.sort(-1, descending=True)
    before = sorted_p.cumsum(-1) - sorted_p
    keep_sorted = before < p if include_crossing else sorted_p.cumsum(-1) <= p
    keep = torch.zeros_like(keep_sorted).scatter(-1, order, keep_sorted)
    kept = probs * keep
    return kept / kept.sum(-1, keepdim=True)


def attention_by_hand(q, k, v, causal=True, scale=True):  # chapter 7's solution
    t = q.shape[-2]
    scores = q @ k.transpose(-2, -1) / (math.sqrt(q.shape[-1]) if scale else 1.0)
    if causal:
        scores = scores.masked_fill(torch.ones(t, t).triu(1).bool(), float("-inf"))
    return scores.softmax(-1) @ v


def auroc_pairs(scores, is_positive, tie=0.5):  # chapter 9's solution
    pos, neg = scores[is_positive], scores[~is_positive]
    diff = pos[:, None] - neg[None, :]
    return ((diff > 0).double() + tie * (diff == 0).double()).mean().item()


def zlib_bits(images, dtype=torch.uint8):  # chapter 9's solution
    import zlib

    return torch.tensor(
        [8.0 * len(zlib.compress(im.to(dtype).numpy().tobytes(), 9)) for im in images]
    )


def balanced_by_hand(labels, n, seed, per_class=None, seeded=True):
    g = torch.Generator().manual_seed(seed if seeded else int(torch.randint(0, 9999, ())))
    order = torch.randperm(len(labels), generator=g)
    per_class = per_class or n // 10
    return torch.cat([order[labels[order] == k][:per_class] for k in range(10)])


def t_by_hand(values, quantile=None):
    from scipy import stats

    v = torch.tensor(values, dtype=torch.float64)
    q = quantile or stats.t.ppf(0.975, len(v) - 1)
    return v.mean().item(), (q * v.std() / math.sqrt(len(v))).item()


def nn_by_hand(train, x, known, *, masked=True, paste=True):
    m = known.float() if masked else torch.ones_like(known, dtype=torch.float)
    d = (((x[:, None] - train[None]) * m) ** 2).flatten(2).sum(2)  # (N, M)
    nearest = train[d.argmin(1)]
    return torch.where(known, x, nearest) if paste else nearest


def ddim_by_hand(x, eps, ab, ab_prev):
    x0 = (x - math.sqrt(1 - ab) * eps) / math.sqrt(ab)
    return math.sqrt(ab_prev) * x0 + math.sqrt(1 - ab_prev) * eps


CASES = {
    "bigram_probabilities": (
        bigram_by_loop,
        [
            lambda ids, v, k: bigram_by_loop(ids, v, k, smooth_rows=False),  # unseen rows: 0
            lambda ids, v, k: bigram_by_loop(ids, v, k).T,  # columns for rows
        ],
    ),
    "top_p_filter": (
        nucleus_by_sort,
        [
            lambda probs, p: nucleus_by_sort(probs, p, include_crossing=False),  # stops short
            lambda probs, p: probs * (probs >= p),  # a threshold, not a nucleus
        ],
    ),
    "causal_attention": (
        attention_by_hand,
        [
            lambda q, k, v: attention_by_hand(q, k, v, causal=False),  # sees the future
            lambda q, k, v: attention_by_hand(q, k, v, scale=False),  # no 1/sqrt(hs)
        ],
    ),
    "bernoulli_log_prob": (
        lambda x, mu: (x * mu.log() + (1 - x) * (1 - mu).log()).flatten(1).sum(1),
        [
            lambda x, mu: (x * mu.log()).flatten(1).sum(1),  # forgets the off pixels
            lambda x, mu: (x * mu.log() + (1 - x) * (1 - mu).log()).sum(),  # one number
        ],
    ),
    "bits_per_dim": (
        lambda nll, d: nll / (d * math.log(2)),
        [lambda nll, d: nll / d, lambda nll, d: nll / (d * math.log(10))],
    ),
    "gaussian_kl_between": (
        kl_between,
        [
            lambda mu_q, lv_q, mu_p, lv_p: gaussian_kl(mu_q, lv_q),  # ignores the prior
            lambda *a: kl_between(*a[2:], *a[:2]),  # KL(p || q): the wrong direction
        ],
    ),
    "log_mean_exp": (
        lambda lw: torch.logsumexp(lw, 1) - math.log(lw.shape[1]),
        [
            lambda lw: lw.exp().mean(1).log(),  # underflows at -1000
            lambda lw: torch.logsumexp(lw, 1),  # a sum, not a mean
        ],
    ),
    "active_units": (
        lambda mu: int((mu.var(0) > 0.01).sum()),
        [lambda mu: int((mu.abs().mean(0) > 0.01).sum()), lambda mu: mu.shape[1]],
    ),
    "gaussian_log_likelihood": (
        gauss_ll,
        [
            lambda x, m, ls: -((x - m) ** 2).flatten(1).sum(1),  # squared error only
            lambda x, m, ls: gauss_ll(x, m, ls).mean(),  # one number, not one per image
        ],
    ),
    "discrete_bits_per_dim": (
        lambda nll, d: (nll + d * math.log(255)) / (d * math.log(2)),
        [lambda nll, d: nll / (d * math.log(2)), lambda nll, d: (nll + math.log(255)) / d],
    ),
    "nonsaturating_generator_loss": (
        lambda logits: torch.nn.functional.softplus(-logits).mean(),
        [
            lambda logits: -torch.nn.functional.softplus(logits).mean(),  # the minimax loss
            lambda logits: torch.nn.functional.softplus(-logits).sum(),  # a sum, not a mean
        ],
    ),
    "frechet_distance": (
        frechet_by_eigh,
        [
            fd_diag_only,
            lambda mu1, s1, mu2, s2: ((mu1 - mu2) ** 2).sum(),  # the means alone
        ],
    ),
    "causal_mask": (
        causal_mask_by_hand,
        [
            lambda k, t: causal_mask_by_hand(k, "B"),  # always sees the centre
            lambda k, t: causal_mask_by_hand(k, t).T,  # columns for rows
        ],
    ),
    "discretized_logistic_log_prob": (
        logistic_by_cdf,
        [
            lambda x, m, ls: logistic_by_cdf(x, m, ls, tails=False),  # end bins not open
            lambda x, m, ls: logistic_by_cdf(x, m, -ls),  # the scale inverted
        ],
    ),
    "knn_precision": (
        precision_of,
        [
            lambda r, f, k: precision_of(r, f, k, skip_self=False),  # counts itself as a neighbour
            lambda r, f, k: precision_of(f, r, k),  # recall, not precision
        ],
    ),
    "auroc_by_pairs": (
        auroc_pairs,
        [
            lambda s, y: auroc_pairs(s, y, tie=0.0),  # ties not counted
            lambda s, y: auroc_pairs(s, ~y),  # classes swapped
        ],
    ),
    "zlib_complexity": (
        zlib_bits,
        [lambda x: zlib_bits(x) / 8, lambda x: zlib_bits(x, torch.float32)],  # bytes; floats
    ),
    "gram_matrix": (
        lambda f: f.flatten(2) @ f.flatten(2).transpose(1, 2) / (f.shape[2] * f.shape[3]),
        [
            lambda f: f.flatten(2) @ f.flatten(2).transpose(1, 2),  # not divided by H·W
            lambda f: f.flatten(2).transpose(1, 2) @ f.flatten(2) / 20,  # positions, not channels
        ],
    ),
    "nn_completion": (
        nn_by_hand,
        [
            lambda t, x, k: nn_by_hand(t, x, k, masked=False),
            lambda t, x, k: nn_by_hand(t, x, k, paste=False),
        ],
    ),  # fmt: skip
    "hidden_agreement": (
        lambda c, t, k: (c == t)[~k.expand_as(t)].float().mean().item(),
        [lambda c, t, k: (c == t).float().mean().item()],  # counts the known pixels too
    ),
    "corrected_score": (
        lambda nats, bits: nats / math.log(2) - bits,
        [lambda nats, bits: nats - bits, lambda nats, bits: bits - nats / math.log(2)],
    ),
    "balanced_subset": (
        balanced_by_hand,
        [
            lambda y, n, seed: torch.randperm(len(y))[:n],  # random, not balanced
            lambda y, n, seed: balanced_by_hand(y, n, seed, seeded=False),  # ignores the seed
        ],
    ),
    "t_interval": (
        t_by_hand,
        [lambda v: t_by_hand(v, quantile=1.96), lambda v: (t_by_hand(v)[0], t_by_hand(v)[1] / 2)],
    ),
    "noised": (
        lambda x, e, ab: ab.sqrt().view(-1, 1, 1, 1) * x + (1 - ab).sqrt().view(-1, 1, 1, 1) * e,
        [
            lambda x, e, ab: ab.view(-1, 1, 1, 1) * x + (1 - ab).view(-1, 1, 1, 1) * e,  # variances
            lambda x, e, ab: ab.sqrt().mean() * x + (1 - ab).sqrt().mean() * e,  # one level
        ],
    ),
    "ddim_step": (
        ddim_by_hand,
        [
            lambda x, e, a, b: x,  # no step at all
            lambda x, e, a, b: math.sqrt(b) * x + math.sqrt(1 - b) * e,  # x_t for x0
        ],
    ),
    "guided": (
        lambda c, u, w: u + w * (c - u),
        [lambda c, u, w: c + w * (c - u), lambda c, u, w: w * c + u],
    ),
    "flow_target": (
        lambda x, e, t: (t[:, None] * x + (1 - t[:, None]) * e, x - e),
        [
            lambda x, e, t: (t[:, None] * e + (1 - t[:, None]) * x, x - e),  # t = 0 at the data
            lambda x, e, t: (t[:, None] * x + (1 - t[:, None]) * e, e - x),  # the wrong way
        ],
    ),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_checker_accepts_a_right_answer_and_rejects_wrong_ones(name, capsys):
    checker = getattr(checks, name)
    right, wrongs = CASES[name]
    assert checker(right) is True, capsys.readouterr().out
    assert "✓" in capsys.readouterr().out
    for wrong in wrongs:
        assert checker(wrong) is False
        assert "✗" in capsys.readouterr().out


@pytest.mark.parametrize("name", sorted(CASES))
def test_checker_counts_none_as_not_attempted(name, capsys):
    assert getattr(checks, name)(lambda *args: None) is False
    assert "not attempted yet" in capsys.readouterr().out
