"""AUROC, the anomaly scores and the two experiments of genedu.apps.anomaly."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score

from genedu import cli, data, hub, metrics
from genedu.apps import anomaly
from genedu.pixelcnn import GatedPixelCNN
from genedu.vae import VAE, VAEConfig


# ---------------------------------------------------------------------------- AUROC
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_auroc_matches_scikit_learn_with_ties(seed):
    g = torch.Generator().manual_seed(seed)
    scores = torch.randint(0, 6, (300,), generator=g).float()  # many ties
    labels = torch.rand(300, generator=g) < 0.3
    expected = roc_auc_score(labels.numpy(), scores.numpy())
    assert metrics.auroc(scores, labels) == pytest.approx(expected, abs=1e-12)
    fpr, tpr = metrics.roc_curve(scores, labels)
    assert fpr[0] == tpr[0] == 0 and fpr[-1] == tpr[-1] == 1
    assert np.trapezoid(tpr.numpy(), fpr.numpy()) == pytest.approx(expected, abs=1e-12)


def test_roc_curve_has_one_point_per_distinct_threshold():
    """(T + 1) points for T distinct scores: (0, 0), then one per threshold, ties together."""
    scores = torch.tensor([0.9, 0.8, 0.8, 0.3, 0.1])
    labels = torch.tensor([1, 1, 0, 0, 1])
    fpr, tpr = metrics.roc_curve(scores, labels)
    assert torch.allclose(fpr, torch.tensor([0, 0, 1 / 2, 1, 1], dtype=fpr.dtype))
    assert torch.allclose(tpr, torch.tensor([0, 1 / 3, 2 / 3, 2 / 3, 1], dtype=tpr.dtype))


def test_auroc_is_one_and_zero_on_separated_scores_and_half_on_constant():
    labels = torch.tensor([0, 0, 0, 1, 1])
    assert metrics.auroc(torch.tensor([0.1, 0.2, 0.3, 0.8, 0.9]), labels) == 1.0
    assert metrics.auroc(torch.tensor([0.8, 0.9, 1.0, 0.1, 0.2]), labels) == 0.0
    assert metrics.auroc(torch.zeros(5), labels) == 0.5


@pytest.mark.parametrize(
    "scores, labels",
    [
        (torch.rand(5), torch.tensor([0, 1, 0, 1])),  # lengths differ
        (torch.rand(2, 2), torch.tensor([[0, 1], [0, 1]])),  # not 1-D
        (torch.rand(4), torch.ones(4, dtype=torch.bool)),  # one class only
        (torch.rand(3), torch.tensor([0, 2, 1])),  # labels not 0/1
    ],
)
def test_auroc_rejects_bad_input(scores, labels):
    with pytest.raises(ValueError):
        metrics.auroc(scores, labels)
    with pytest.raises(ValueError):
        metrics.roc_curve(scores, labels)


# ---------------------------------------------------------------------------- complexity
def test_input_complexity_uses_a_real_compressor():
    g = torch.Generator().manual_seed(0)
    blank = torch.zeros(1, 1, 28, 28, dtype=torch.uint8)
    noise = torch.randint(0, 256, (1, 1, 28, 28), generator=g, dtype=torch.uint8)
    raw = 8 * 28 * 28
    for compressor in anomaly.COMPRESSORS:
        bits = anomaly.input_complexity(torch.cat([blank, noise]), compressor)
        assert bits.shape == (2,) and bits.dtype == torch.float64
        assert bits[0] < raw / 10  # a constant image compresses to almost nothing
        assert bits[1] > 0.95 * raw  # noise does not compress
    # floats in [0, 1] are the same images
    png = anomaly.input_complexity(noise)
    assert torch.equal(anomaly.input_complexity(noise.float() / 255), png)


@pytest.mark.parametrize(
    "x",
    [
        torch.rand(2, 3, 8, 8),  # colour
        torch.rand(2, 8, 8),  # no channel
        torch.rand(2, 1, 8, 8) * 2,  # out of [0, 1]
        torch.ones(2, 1, 8, 8, dtype=torch.int64),  # neither uint8 nor float
    ],
)
def test_input_complexity_rejects_bad_images(x):
    with pytest.raises(ValueError):
        anomaly.input_complexity(x)


def test_input_complexity_rejects_unknown_compressor():
    with pytest.raises(ValueError, match="compressor"):
        anomaly.input_complexity(torch.zeros(1, 1, 4, 4), "gzip")


def test_corrected_score_is_bits_of_the_model_minus_bits_of_the_compressor():
    nats = torch.tensor([math.log(2) * 100, math.log(2) * 50])
    bits = torch.tensor([30.0, 80.0])
    got = anomaly.complexity_corrected_score(nats, bits)
    assert torch.allclose(got, torch.tensor([70.0, -30.0], dtype=torch.float64))
    with pytest.raises(ValueError):
        anomaly.complexity_corrected_score(nats, bits[:1])


# ---------------------------------------------------------------------------- baselines
def test_pca_score_is_zero_in_the_span_and_positive_off_it():
    g = torch.Generator().manual_seed(0)
    basis = torch.randn(3, 20, generator=g, dtype=torch.float64)
    train = torch.randn(50, 3, generator=g, dtype=torch.float64) @ basis + 1.0
    inside = torch.randn(5, 3, generator=g, dtype=torch.float64) @ basis + 1.0
    outside = inside + torch.randn(5, 20, generator=g, dtype=torch.float64)
    assert anomaly.pca_score(train, train, 3).abs().max() < 1e-8
    assert anomaly.pca_score(train, inside, 3).abs().max() < 1e-8
    assert (anomaly.pca_score(train, outside, 3) > 0.1).all()
    assert (anomaly.pca_score(train, outside, 2) > anomaly.pca_score(train, outside, 3)).all()
    with pytest.raises(ValueError, match="components"):
        anomaly.pca_score(train, inside, 0)
    with pytest.raises(ValueError, match="dims"):
        anomaly.pca_score(train, inside[:, :10], 3)


def test_knn_score_is_zero_on_training_points():
    train = torch.rand(30, 1, 4, 4)
    assert anomaly.knn_score(train, train).abs().max() < 1e-6
    assert (anomaly.knn_score(train, train + 0.5) > 0).all()


def test_mutate_changes_about_the_rate():
    images = torch.zeros(20, 1, 28, 28, dtype=torch.uint8)
    out = anomaly.mutate(images, 0.3, generator=torch.Generator().manual_seed(0))
    assert out.dtype == torch.uint8 and abs((out != 0).float().mean().item() - 0.3) < 0.02
    assert torch.equal(anomaly.mutate(images, 0.0), images)
    with pytest.raises(ValueError):
        anomaly.mutate(images, 1.5)


def test_vae_score_repeats_for_a_seed_and_is_minus_the_elbo():
    torch.manual_seed(0)
    model = VAE(VAEConfig(shape=(1, 8, 8), latent_dim=2, hidden=4))
    x = (torch.rand(6, 1, 8, 8) > 0.5).float()
    a = anomaly.vae_score(model, x, generator=torch.Generator().manual_seed(1))
    b = anomaly.vae_score(model, x, generator=torch.Generator().manual_seed(1))
    assert a.shape == (6,) and torch.equal(a, b)
    one = anomaly.vae_score(model, x, samples=1, generator=torch.Generator().manual_seed(1))
    elbo = model.elbo(x, generator=torch.Generator().manual_seed(1))
    assert torch.allclose(one, -elbo)
    with pytest.raises(ValueError):
        anomaly.vae_score(model, x, samples=0)


# ---------------------------------------------------------------------------- experiments
@pytest.fixture(scope="module")
def digits() -> data.ImageSet:
    return data.load("mnist5k", "test")  # bundled: 1,000 real digits


@pytest.mark.parametrize("method", anomaly.METHODS)
def test_one_class_runs_end_to_end(method, digits):
    result = anomaly.one_class(
        1, method=method, steps=2, train_size=64, test_size=100, batch_size=16, components=5,
        train_set=digits, test_set=digits,
    )  # fmt: skip
    assert result.scores.shape == (100,) and torch.isfinite(result.scores).all()
    assert result.is_anomaly.sum() == (result.labels != 1).sum() > 0
    assert 0.0 <= result.auroc <= 1.0
    assert result.auroc == metrics.auroc(result.scores, result.is_anomaly)
    if method == "pca":
        assert result.corrected_scores is None and result.corrected_auroc is None
        return
    # Serrà's correction, on the very binarised images that were scored (seeded draw)
    x = data.binarize(digits.images[:100], generator=torch.Generator().manual_seed(0))
    bits = anomaly.input_complexity(x)
    assert torch.allclose(result.corrected_scores, result.scores / math.log(2) - bits)
    assert result.corrected_auroc == metrics.auroc(result.corrected_scores, result.is_anomaly)


def test_one_class_scores_a_given_model_without_training(digits):
    torch.manual_seed(0)
    model = VAE(VAEConfig(latent_dim=2, hidden=4))
    result = anomaly.one_class(
        8, method="vae", model=model, test_set=digits, test_size=60, steps=10**9
    )  # fmt: skip  (steps unused: nothing trains)
    assert result.train_seconds == 0.0 and result.train_images == 0
    x = data.binarize(digits.images[:60], generator=torch.Generator().manual_seed(0))
    expected = anomaly.vae_score(model, x, generator=torch.Generator().manual_seed(0))
    assert torch.equal(result.scores, expected)
    assert result.auroc == metrics.auroc(expected, digits.labels[:60] != 8)
    for method, wrong in (("pixelcnn", model), ("pca", model), ("vae", GatedPixelCNN())):
        with pytest.raises(ValueError, match="cannot score"):
            anomaly.one_class(8, method=method, model=wrong, test_set=digits)


def test_one_class_rejects_bad_arguments():
    with pytest.raises(ValueError, match="method"):
        anomaly.one_class(1, method="gan")
    with pytest.raises(ValueError, match="digit"):
        anomaly.one_class(10)


def test_ood_runs_end_to_end_with_every_score():
    g = torch.Generator().manual_seed(0)
    dark = torch.randint(0, 60, (48, 1, 8, 8), generator=g, dtype=torch.uint8)
    bright = torch.randint(150, 256, (16, 1, 8, 8), generator=g, dtype=torch.uint8)
    result = anomaly.ood(
        dark[:32], dark[32:], bright, steps=2, background_steps=1, batch_size=8,
        config=anomaly.grey_pixelcnn_config((1, 8, 8)),
    )  # fmt: skip
    assert set(result.aurocs) == {"likelihood", "complexity", "corrected", "likelihood_ratio"}
    assert all(0.0 <= v <= 1.0 for v in result.aurocs.values())
    assert result.neg_log_p["in"].shape == result.complexity["out"].shape == (16,)
    corrected = anomaly.complexity_corrected_score(
        result.neg_log_p["out"], result.complexity["out"]
    )
    assert torch.equal(result.scores["corrected"]["out"], corrected)
    with pytest.raises(ValueError, match="uint8"):
        anomaly.ood(dark.float() / 255, dark, bright, steps=1)


def test_ood_scores_a_given_model_with_every_score():
    g = torch.Generator().manual_seed(0)
    dark = torch.randint(0, 60, (12, 1, 8, 8), generator=g, dtype=torch.uint8)
    bright = torch.randint(150, 256, (10, 1, 8, 8), generator=g, dtype=torch.uint8)
    torch.manual_seed(0)
    model = GatedPixelCNN(anomaly.grey_pixelcnn_config((1, 8, 8)))
    result = anomaly.ood_scores(model, dark, bright)
    assert set(result.aurocs) == {"likelihood", "complexity", "corrected"}
    assert result.train_seconds == {}
    assert torch.equal(result.neg_log_p["out"], anomaly.pixelcnn_score(model, bright / 255))
    assert torch.equal(result.complexity["in"], anomaly.input_complexity(dark))
    is_out = torch.cat([torch.zeros(12), torch.ones(10)]).bool()
    for name, s in result.scores.items():
        assert result.aurocs[name] == metrics.auroc(torch.cat([s["in"], s["out"]]), is_out)
    with pytest.raises(ValueError, match="uint8"):
        anomaly.ood_scores(model, dark.float() / 255, bright)


def test_train_vae_on_one_digit_records_its_one_class_auroc(tmp_path, capsys):
    out = tmp_path / "vae-8"
    argv = "train vae --data mnist5k --digit 8 --steps 3 --latent 2 --hidden 4 --out"
    assert cli.main([*argv.split(), str(out)]) == 0, capsys.readouterr().err
    assert "one-class AUROC" in capsys.readouterr().out
    meta = json.loads(out.with_suffix(".json").read_text())
    m, train_set = meta["metrics"], data.load("mnist5k", "train")
    assert m["digit"] == 8 and m["train_images"] == int((train_set.labels == 8).sum())
    assert m["test_images_of_digit"] == int((data.load("mnist5k", "test").labels == 8).sum())
    # the recorded AUROC is the one the shipped model gives back (up to its float16)
    again = anomaly.one_class(8, method="vae", model=hub.load(out),
                              test_set=data.load("mnist5k", "test"))  # fmt: skip
    assert again.auroc == pytest.approx(m["one_class_test_auroc"], abs=0.01)
    assert cli.main([*argv.split()[:-1], "--digit", "8", "--data", "lfw-faces", "--out",
                     str(tmp_path / "x")]) == 2  # fmt: skip
    assert "no images labelled 8" in capsys.readouterr().err


def test_train_pixelcnn_takes_the_number_of_logistic_mixtures(tmp_path, capsys):
    out = tmp_path / "p"
    argv = "train pixelcnn --data mnist5k --likelihood logistic --mixtures 2 --steps 1"
    argv += " --hidden 4 --layers 1 --n-test 8 --out"
    assert cli.main([*argv.split(), str(out)]) == 0, capsys.readouterr().err
    config = json.loads(out.with_suffix(".json").read_text())["config"]
    assert config["mixtures"] == 2 and config["likelihood"] == "logistic"


def test_ood_fashion_mnist_loads_the_two_sets(shared_data):
    result = anomaly.ood_fashion_mnist(steps=1, train_size=16, test_size=8, batch_size=8)
    assert result.neg_log_p["in"].shape == result.neg_log_p["out"].shape == (8,)


def test_ood_images_train_on_the_bundled_test_set_without_the_training_set(capsys):
    images = anomaly.ood_images(train_size=10, test_size=5)  # tests have no Fashion train
    assert "training on the last 8,000 of its 10,000 test images" in capsys.readouterr().out
    test = data.load("fashion-mnist", "test").images  # it ships with genedu
    assert torch.equal(images["train"], test[2000:2010])  # held apart from "in"
    assert torch.equal(images["in"], test[:5])
    assert [len(v) for v in images.values()] == [10, 5, 5]
    assert all(v.dtype == torch.uint8 and v.shape[1:] == (1, 28, 28) for v in images.values())


def test_ood_images_fall_back_to_grey_patches_without_fashion_mnist(capsys, monkeypatch):
    load = data.load

    def no_fashion(name, *args, **kwargs):
        if name == "fashion-mnist":
            raise data.DataError("fashion-mnist is not here (a test)")
        return load(name, *args, **kwargs)

    monkeypatch.setattr(data, "load", no_fashion)
    images = anomaly.ood_images(train_size=10, test_size=5)
    assert "natural-image patches" in capsys.readouterr().out
    assert [len(v) for v in images.values()] == [10, 5, 5]
    assert all(v.dtype == torch.uint8 and v.shape[1:] == (1, 28, 28) for v in images.values())


# ------------------------------------------------------------ the shipped models (chapter 9)
def test_shipped_fashion_pixelcnn_gives_back_its_recorded_nll():
    row = next(r for r in hub.list() if r["name"] == "pixelcnn-fashion-mnist")
    assert row["command"].startswith("genedu train pixelcnn --data fashion-mnist")
    x = data.to_unit(data.load("fashion-mnist", "test").images[:1000])  # bundled
    nll = metrics.mean_nll(hub.load("pixelcnn-fashion-mnist").log_prob, x, batch_size=250)
    assert nll == pytest.approx(row["metrics"]["test_nll_nats"], abs=0.05)


def test_shipped_one_class_vae_gives_back_its_recorded_auroc(shared_data):
    row = next(r for r in hub.list() if r["name"] == "vae-mnist-8")
    assert row["command"].startswith("genedu train vae --data mnist --digit 8")
    result = anomaly.one_class(8, method="vae", model=hub.load("vae-mnist-8"),
                               test_set=data.load("mnist", "test"))  # fmt: skip
    assert result.auroc == pytest.approx(row["metrics"]["one_class_test_auroc"], abs=0.005)


def test_the_likelihood_ratio_cancels_what_the_background_model_explains_too():
    nlp = torch.tensor([100.0, 80.0, 120.0])  # -log p under the in-distribution model
    background = torch.tensor([100.0, 100.0, 100.0])  # -log p under the background model
    score = anomaly.likelihood_ratio_score(nlp, background)
    assert score.tolist() == [0.0, -20.0, 20.0]  # explained only by the model: less anomalous
    assert metrics.auroc(score, torch.tensor([False, False, True])) == 1.0
