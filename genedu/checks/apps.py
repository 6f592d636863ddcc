"""The application chapters' checkers: anomaly detection, data augmentation, style
transfer and image completion."""

from __future__ import annotations

from collections.abc import Callable

import torch

from .verdict import _attempted, _close, _verdict


def auroc_by_pairs(fn: Callable[[torch.Tensor, torch.Tensor], float]) -> bool:
    """Check fn(scores, is_positive) -> AUROC, ties counting one half (chapter 9)."""
    from ..metrics import auroc

    g = torch.Generator().manual_seed(15)
    scores = torch.randint(0, 5, (40,), generator=g).float()  # plenty of ties
    is_positive = torch.rand(40, generator=g) < 0.4
    result = fn(scores, is_positive)
    if not _attempted(result, "auroc_by_pairs"):
        return False
    return _verdict(
        abs(float(result) - auroc(scores, is_positive)) < 1e-6,
        "auroc_by_pairs",
        "over every (positive, negative) pair count 1 when the positive scores higher and "
        "1/2 when they tie; divide by the number of pairs",
    )


def zlib_complexity(fn: Callable[[torch.Tensor], torch.Tensor]) -> bool:
    """Check fn(images uint8 (N, 1, H, W)) -> bits (N,) of zlib at level 9 (chapter 9)."""
    from ..apps.anomaly import input_complexity

    g = torch.Generator().manual_seed(16)
    x = torch.randint(0, 256, (3, 1, 8, 8), generator=g, dtype=torch.uint8)
    x[0] = 0
    x[1, :, :4] = 7
    result = fn(x)
    if not _attempted(result, "zlib_complexity"):
        return False
    return _close(
        torch.as_tensor(result, dtype=torch.float64),
        input_complexity(x, "zlib"),
        "zlib_complexity",
        "for each image: 8 * len(zlib.compress(image.numpy().tobytes(), 9)), in bits",
    )


def corrected_score(fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> bool:
    """Check fn(neg_log_p_nats, complexity_bits) -> S(x) in bits (Serrà et al., eq. 2)."""
    from ..apps.anomaly import complexity_corrected_score

    g = torch.Generator().manual_seed(17)
    nats, bits = 1000 * torch.rand(5, generator=g), 2000 * torch.rand(5, generator=g)
    result = fn(nats, bits)
    if not _attempted(result, "corrected_score"):
        return False
    return _close(
        torch.as_tensor(result, dtype=torch.float64),
        complexity_corrected_score(nats, bits),
        "corrected_score",
        "turn nats into bits first (divide by ln 2), then subtract the compressed length",
    )


def balanced_subset(fn: Callable[[torch.Tensor, int, int], torch.Tensor]) -> bool:
    """Check fn(labels, n, seed) -> n indices, n / 10 of each class, seeded (chapter 8)."""
    g = torch.Generator().manual_seed(18)
    labels = torch.randint(0, 10, (600,), generator=g)
    result = fn(labels, 50, 0)
    if not _attempted(result, "balanced_subset"):
        return False
    idx = torch.as_tensor(result).long()
    name = "balanced_subset"
    if idx.shape != (50,) or len(idx.unique()) != 50:
        return _verdict(False, name, "return 50 different indices into labels")
    if torch.bincount(labels[idx], minlength=10).tolist() != [5] * 10:
        return _verdict(False, name, "take n / 10 indices of each class, no more, no less")
    again, other = torch.as_tensor(fn(labels, 50, 0)), torch.as_tensor(fn(labels, 50, 1))
    if not torch.equal(idx, again.long()):
        return _verdict(False, name, "draw from a torch.Generator seeded with `seed`")
    return _verdict(
        not torch.equal(idx.sort().values, other.long().sort().values),
        name,
        "a different seed should give a different subset: shuffle with the generator",
    )


def t_interval(fn: Callable[[list[float]], tuple[float, float]]) -> bool:
    """Check fn(values) -> (mean, half-width of the 95% Student-t interval) (chapter 8)."""
    from ..apps.augmentation import interval

    cases = [[0.71, 0.74, 0.69, 0.75, 0.72], [1.0, 2.0, 3.0]]
    results = [fn(v) for v in cases]
    if not _attempted(results[0], "t_interval"):
        return False
    ok = all(
        abs(float(r[0]) - interval(v)[0]) < 1e-9 and abs(float(r[1]) - interval(v)[1]) < 1e-6
        for r, v in zip(results, cases, strict=True)
    )
    return _verdict(
        ok,
        "t_interval",
        "half-width = t(0.975, n - 1) · s / sqrt(n), with s the sample standard deviation "
        "(divide by n - 1) and scipy.stats.t.ppf for the quantile",
    )


def gram_matrix(fn: Callable[[torch.Tensor], torch.Tensor]) -> bool:
    """Check fn(features (N, C, H, W)) -> Gram matrices (N, C, C) divided by H·W (ch. 10)."""
    from ..apps.style import gram_matrix as reference

    f = torch.randn(2, 3, 4, 5, generator=torch.Generator().manual_seed(10))
    result = fn(f)
    if not _attempted(result, "gram_matrix"):
        return False
    result = torch.as_tensor(result)
    if result.shape != (2, 3, 3):
        return _verdict(False, "gram_matrix", "return (N, C, C): one C×C matrix per image")
    return _verdict(
        torch.allclose(result.double(), reference(f).double(), atol=1e-5),
        "gram_matrix",
        "flatten the positions, F = features.flatten(2) is (N, C, H·W); then F @ F^T, "
        "divided by H·W",
    )


def nn_completion(fn: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]) -> bool:
    """Check fn(train (M, 1, H, W), x (N, 1, H, W), known (1, 1, H, W) bool) -> (N, 1, H, W):
    x's known pixels, the rest from the training image nearest on the known ones (ch. 10)."""
    from ..apps.completion import nearest_neighbour_complete

    g = torch.Generator().manual_seed(11)
    train = torch.rand(30, 1, 6, 6, generator=g)  # grey levels: no ties in distance
    x = torch.rand(4, 1, 6, 6, generator=g)
    known = torch.ones(1, 1, 6, 6, dtype=torch.bool)
    known[..., 3:, :] = False
    result = fn(train, x, known)
    if not _attempted(result, "nn_completion"):
        return False
    result = torch.as_tensor(result).float()
    if result.shape != x.shape:
        return _verdict(False, "nn_completion", "return one completion per image, (N, 1, H, W)")
    if not torch.equal(result[known.expand_as(x)], x[known.expand_as(x)]):
        return _verdict(False, "nn_completion", "keep x's known pixels as they are")
    expected = nearest_neighbour_complete(train, x, known, samples=1)[:, 0]
    return _verdict(
        torch.equal(result, expected),
        "nn_completion",
        "measure the distance on the known pixels only (multiply by the mask), take the "
        "argmin over the training images, and copy its hidden pixels",
    )


def hidden_agreement(fn: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], float]) -> bool:
    """Check fn(completion (N, 1, H, W), truth (N, 1, H, W), known (1, 1, H, W)) -> the
    share of hidden pixels where the completion equals the truth (ch. 10)."""
    g = torch.Generator().manual_seed(12)
    truth = (torch.rand(5, 1, 4, 4, generator=g) < 0.5).float()
    known = torch.ones(1, 1, 4, 4, dtype=torch.bool)
    known[..., 2:, :] = False
    guess = torch.where(known, truth, (torch.rand(5, 1, 4, 4, generator=g) < 0.5).float())
    result = fn(guess, truth, known)
    if not _attempted(result, "hidden_agreement"):
        return False
    hidden = ~known.expand_as(truth)
    expected = (guess[hidden] == truth[hidden]).float().mean().item()
    return _verdict(
        abs(float(result) - expected) < 1e-6,
        "hidden_agreement",
        "compare only where the mask is False: the known pixels agree by construction",
    )
