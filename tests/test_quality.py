"""Sample-quality metrics: FID (closed forms, symmetry, errors), k-NN precision/recall,
the classifier behind them, CAS, and the shipped GAN checkpoints."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg
import torch

from genedu import data, hub, metrics

# ------------------------------------------------------------------------------------ FID


def random_spd(d: int, seed: int) -> torch.Tensor:
    a = torch.randn(d, d, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    return a @ a.T / d + 0.1 * torch.eye(d, dtype=torch.float64)


def test_frechet_distance_matches_scipy_sqrtm():
    mu1, mu2 = torch.zeros(6, dtype=torch.float64), torch.linspace(-1, 1, 6, dtype=torch.float64)
    s1, s2 = random_spd(6, 0), random_spd(6, 1)
    cross = scipy.linalg.sqrtm(s1.numpy() @ s2.numpy()).real  # the oracle: Heusel et al.'s form
    expected = ((mu1 - mu2) ** 2).sum().item() + np.trace(s1.numpy() + s2.numpy() - 2 * cross)
    assert metrics.frechet_distance(mu1, s1, mu2, s2) == pytest.approx(expected, rel=1e-9)


def test_frechet_distance_of_diagonal_gaussians_is_the_closed_form():
    # diagonal: sum (mu1 - mu2)^2 + sum (sqrt v1 - sqrt v2)^2
    v1, v2 = torch.tensor([1.0, 4.0, 9.0]), torch.tensor([4.0, 4.0, 1.0])
    mu1, mu2 = torch.tensor([0.0, 1.0, 2.0]), torch.tensor([1.0, 1.0, 0.0])
    expected = 1 + 0 + 4 + (1 - 2) ** 2 + 0 + (3 - 1) ** 2
    got = metrics.frechet_distance(mu1, torch.diag(v1), mu2, torch.diag(v2))
    assert got == pytest.approx(expected, rel=1e-12)


def test_fid_of_samples_approaches_the_closed_form_and_is_symmetric():
    g = torch.Generator().manual_seed(0)
    d, n = 4, 40_000
    s1, s2 = random_spd(d, 2), random_spd(d, 3)
    mu2 = torch.full((d,), 0.5, dtype=torch.float64)
    a = torch.randn(n, d, generator=g, dtype=torch.float64) @ torch.linalg.cholesky(s1).T
    b = torch.randn(n, d, generator=g, dtype=torch.float64) @ torch.linalg.cholesky(s2).T + mu2
    exact = metrics.frechet_distance(torch.zeros(d), s1, mu2, s2)
    assert metrics.fid_from_features(a, b) == pytest.approx(exact, rel=0.05)
    assert metrics.fid_from_features(a, b) == pytest.approx(
        metrics.fid_from_features(b, a), rel=1e-9
    )
    assert metrics.fid_from_features(a, a) == pytest.approx(0.0, abs=1e-8)


def test_fid_refuses_bad_inputs():
    a = torch.randn(200, 8)
    with pytest.raises(ValueError, match="feature dims differ: a has 8, b has 6"):
        metrics.fid_from_features(a, torch.randn(200, 6))
    with pytest.raises(ValueError, match="more samples than feature dims.*has 8 samples of 8"):
        metrics.fid_from_features(a, torch.randn(8, 8))
    net = metrics.Classifier(metrics.ClassifierConfig(hidden=4, features=8))
    with pytest.raises(ValueError, match=r"expected values in \[0, 1\], got values in \[-1, 1\]"):
        metrics.fid(torch.rand(20, 1, 28, 28) * 2 - 1, torch.rand(20, 1, 28, 28), net)
    with pytest.raises(ValueError, match=r"tensor N×1×28×28 .* of shape \(20, 1, 32, 32\)"):
        metrics.extract_features(torch.rand(20, 1, 32, 32), net)


def test_fid_on_images_uses_the_features_and_is_zero_for_a_set_with_itself():
    torch.manual_seed(0)
    net = metrics.Classifier(metrics.ClassifierConfig(hidden=4, features=8))
    x = torch.rand(64, 1, 28, 28)
    assert metrics.fid(x, x, net) == pytest.approx(0.0, abs=1e-12)
    # an untrained network's features are small, so compare: uint8 is read as /255 (a
    # rounding away from x), while halving the images moves the features far more
    rounded = metrics.fid(x, (x * 255).round().to(torch.uint8), net)
    assert metrics.fid(x, 0.5 * x, net) > 1000 * rounded


# ------------------------------------------------------------------------ precision/recall


def clusters(centres: list[int], n_each: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    eye = 10.0 * torch.eye(8)
    return torch.cat([eye[c] + 0.3 * torch.randn(n_each, 8, generator=g) for c in centres])


def test_precision_and_recall_are_one_on_identical_sets():
    x = clusters([0, 1, 2, 3], 100, 0)
    assert metrics.precision_recall(x, x) == {"precision": 1.0, "recall": 1.0}


def test_precision_and_recall_by_hand():
    # real points on a line at 0, 1, 2, 10: with k = 1 their radii are 1, 1, 1 and 8
    real = torch.tensor([[0.0], [1.0], [2.0], [10.0]])
    fake = torch.tensor([[0.5], [2.9], [3.5], [17.0], [30.0]])
    # fake inside some real ball: 0.5 (ball of 0), 2.9 (ball of 2), 3.5 (ball of 10);
    # 17 is inside the ball of 10 (radius 8) too, 30 is not: precision 4/5
    # fake radii (k = 1): 2.4, 0.6, 0.6, 13, 13; real 0, 1, 2 lie within 2.4 of 0.5,
    # and 10 within 13 of 17: recall 4/4. (Counting a point as its own neighbour would
    # give every ball radius 0, and both numbers 0.)
    assert metrics.precision_recall(real, fake, k=1) == {"precision": 0.8, "recall": 1.0}
    # without 17 and 30, nothing generated reaches 10: recall 3/4
    assert metrics.precision_recall(real, fake[:3], k=1)["recall"] == 0.75


def test_dropping_modes_lowers_recall_and_keeps_precision():
    real = clusters([0, 1, 2, 3], 200, 0)
    half = clusters([0, 1], 400, 1)  # a generator that drops two of four modes
    pr = metrics.precision_recall(real, half)
    assert pr["precision"] > 0.8
    assert 0.4 < pr["recall"] < 0.6
    off = clusters([4, 5], 400, 2)  # samples nowhere near the data
    assert metrics.precision_recall(real, off)["precision"] == 0.0


def test_precision_recall_refuses_bad_inputs():
    with pytest.raises(ValueError, match="more than k points"):
        metrics.precision_recall(torch.randn(3, 4), torch.randn(10, 4), k=3)
    with pytest.raises(ValueError, match="feature dims differ"):
        metrics.precision_recall(torch.randn(10, 4), torch.randn(10, 5))


# ----------------------------------------------------------------- classifier and CAS


def test_cas_rewards_right_labels_and_punishes_wrong_ones():
    train = data.load("mnist5k", "train")
    test = data.load("mnist5k", "test")
    small = metrics.ClassifierConfig(hidden=8, features=32)
    x, y = train.images[:2000], train.labels[:2000]
    right = metrics.classification_accuracy_score(
        x, y, test.images, test.labels, steps=150, config=small
    )
    shuffled = y[torch.randperm(len(y), generator=torch.Generator().manual_seed(0))]
    wrong = metrics.classification_accuracy_score(
        x, shuffled, test.images, test.labels, steps=150, config=small
    )
    assert right > 0.8 and wrong < 0.3


def test_random_affine_keeps_range_and_moves_pixels():
    x = data.load("mnist5k", "train").images[:8].float() / 255
    moved = metrics.random_affine(x, generator=torch.Generator().manual_seed(0))
    assert moved.shape == x.shape and 0 <= moved.min() and moved.max() <= 1
    assert (moved - x).abs().mean() > 0.01
    again = metrics.random_affine(x, generator=torch.Generator().manual_seed(0))
    assert torch.equal(moved, again)


def test_shipped_classifier_reaches_99_percent(shared_data):
    net = hub.load("classifier-mnist")
    test = data.load("mnist", "test")
    assert len(test) == 10_000
    assert metrics.accuracy(net, test.images, test.labels) >= 0.99


def test_shipped_cdcgan_draws_the_digit_asked_for():
    model = hub.load("cdcgan-mnist")
    net = hub.load("classifier-mnist")
    asked = torch.arange(1000) % 10
    x = model.sample(1000, y=asked, generator=torch.Generator().manual_seed(0))
    assert metrics.accuracy(net, x, asked) >= 0.95


@pytest.mark.parametrize("name", ["classifier-mnist", "dcgan-mnist", "cdcgan-mnist"])
def test_shipped_checkpoints_say_how_they_were_made(name):
    row = next(r for r in hub.list() if r["name"] == name)
    model = name.split("-")[0]
    assert row["command"].startswith(f"genedu train {model} --data mnist")
    assert row["metrics"]
