"""genedu.pixelcnn: causality, exact normalisation, the likelihoods, and sampling that
the cache must not change. Each test can fail."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
from torch.autograd.functional import jacobian

from genedu import hub, train
from genedu.pixelcnn import (
    LIKELIHOODS,
    GatedPixelCNN,
    MaskedConv2d,
    PixelCNN,
    PixelCNNConfig,
    logistic_mixture_log_prob,
    receptive_field,
)

MODELS = (PixelCNN, GatedPixelCNN)


def g(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def tiny(cls, shape=(1, 5, 6), likelihood="bernoulli", classes=0, layers=2, seed=0):
    torch.manual_seed(seed)
    config = PixelCNNConfig(
        shape=shape,
        hidden=6,
        layers=layers,
        first_kernel=3,
        likelihood=likelihood,
        mixtures=2,
        num_classes=classes,
    )
    return cls(config).double()


def valid_images(model, n: int, seed: int = 0) -> torch.Tensor:
    """Random images of the kind the model accepts: binary, or on the 256-level grid."""
    u = torch.rand(n, *model.config.shape, generator=g(seed), dtype=torch.float64)
    if model.config.likelihood == "bernoulli":
        return (u > 0.5).double()
    return (u * 255).round() / 255


def raster_dependence(model, x, y=None) -> torch.Tensor:
    """(H·W outputs, H·W inputs) bool: does any output parameter at pixel p move with any
    channel of the input at pixel q, for any of the images x? From full Jacobians."""
    c, h, w = model.config.shape
    jac = jacobian(lambda inp: model._network(inp, y), x, vectorize=True)  # (B,P,H,W,B,C,H,W)
    return (jac.abs().sum((0, 1, 4, 5)) > 0).reshape(h * w, h * w)


# ------------------------------------------------------------------ masks and causality
@pytest.mark.parametrize("mask_type", ["A", "B"])
def test_masked_conv_sees_only_earlier_pixels(mask_type):
    torch.manual_seed(0)
    conv = MaskedConv2d(2, 3, 5, mask_type).double()
    before = conv.weight.detach().clone()
    x = torch.randn(1, 2, 6, 7, dtype=torch.float64)
    jac = jacobian(conv, x)[0].abs().sum(0).sum(3).reshape(42, 42) > 0
    for p in range(42):
        # every output channel, every input channel: nothing after p; p itself only for B
        assert not jac[p, p + 1 :].any()
        assert bool(jac[p, p]) == (mask_type == "B")
        if p >= 8 and p % 7:  # below the top row, right of the first column: up and left
            assert jac[p, p - 7] and jac[p, p - 1]
    assert torch.equal(conv.weight, before)  # the mask multiplies; it never edits weights


def test_mask_type_must_be_a_or_b():
    with pytest.raises(ValueError, match="mask_type must be 'A' or 'B'"):
        MaskedConv2d(1, 1, 3, "C")


@pytest.mark.parametrize("cls", MODELS)
@pytest.mark.parametrize("likelihood", LIKELIHOODS)
@pytest.mark.parametrize("classes", [0, 3])
def test_output_never_depends_on_the_same_or_later_pixels(cls, likelihood, classes):
    shape = (3, 4, 5) if likelihood == "logistic" else (1, 4, 5)
    model = tiny(cls, shape, likelihood, classes)
    x = valid_images(model, 3)
    y = torch.tensor([2, 0, 1]) if classes else None
    dep = raster_dependence(model, x, y)
    assert not dep.triu().any()  # the diagonal and above: the pixel itself and later ones
    assert dep[-1, :-1].any() and dep[6, 5]  # and it does depend on earlier pixels


def test_plain_pixelcnn_has_a_blind_spot_and_gated_does_not():
    shape, (i, j) = (1, 5, 7), (3, 2)  # output pixel (3, 2) of a 5×7 image
    earlier = torch.arange(35).reshape(5, 7) < i * 7 + j
    plain = tiny(PixelCNN, shape, layers=6)
    gated = tiny(GatedPixelCNN, shape, layers=6)
    plain_rf = raster_dependence(plain, valid_images(plain, 3))[i * 7 + j].reshape(5, 7)
    gated_rf = raster_dependence(gated, valid_images(gated, 3))[i * 7 + j].reshape(5, 7)
    # Up one row and two to the right is never reached by stacked 3×3 masks, however deep.
    assert not plain_rf[i - 1, j + 2] and not plain_rf[i - 2, j + 4]
    assert torch.equal(gated_rf, earlier)  # the gated stacks see every earlier pixel
    # the package's gradient map agrees with the Jacobian
    assert torch.equal(receptive_field(plain.float(), i, j), plain_rf)
    assert torch.equal(receptive_field(gated.float(), i, j), gated_rf)


# ------------------------------------------------------------------ exact likelihoods
@pytest.mark.parametrize("cls", MODELS)
@pytest.mark.parametrize("classes", [0, 3])
def test_all_sixteen_binary_2x2_images_sum_to_one(cls, classes):
    model = tiny(cls, (1, 2, 2), classes=classes)
    images = torch.tensor(list(itertools.product([0.0, 1.0], repeat=4))).double()
    images = images.reshape(16, 1, 2, 2)
    for label in range(max(1, classes)):
        y = torch.full((16,), label) if classes else None
        total = model.log_prob(images, y=y).exp().sum().item()
        assert total == pytest.approx(1.0, abs=1e-5)
    # a conditional model's marginal over the classes is a distribution too
    assert model.log_prob(images).exp().sum().item() == pytest.approx(1.0, abs=1e-5)


@pytest.mark.parametrize("cls", MODELS)
@pytest.mark.parametrize("likelihood", ["categorical", "logistic"])
def test_all_65536_grey_1x2_images_sum_to_one(cls, likelihood):
    model = tiny(cls, (1, 1, 2), likelihood)
    levels = torch.arange(256, dtype=torch.float64) / 255
    images = torch.cartesian_prod(levels, levels).reshape(-1, 1, 1, 2)
    assert model.log_prob(images).exp().sum().item() == pytest.approx(1.0, abs=1e-5)


def test_colour_logistic_mixture_sums_to_one_over_all_16m_colours():
    """The channel coefficients (G on R, B on R and G) must keep it normalised."""
    params = torch.randn(1, 2 * 10, 1, 1, generator=g(0), dtype=torch.float64)
    levels = torch.arange(256, dtype=torch.float64) / 255
    gb = torch.cartesian_prod(levels, levels)  # (65536, 2)
    total = 0.0
    for r in levels:
        x = torch.cat([r.expand(len(gb), 1), gb], 1)[..., None, None]  # (65536, 3, 1, 1)
        total += logistic_mixture_log_prob(params.expand(len(x), -1, -1, -1), x, 2).exp().sum()
    assert total.item() == pytest.approx(1.0, abs=1e-6)


def test_logistic_mixture_matches_the_cdf_difference():
    """One component, grey: log(σ((x+1/255-μ)/s) - σ((x-1/255-μ)/s)), tails to ±∞."""
    mu, log_s = torch.tensor(0.1, dtype=torch.float64), torch.tensor(-2.0, dtype=torch.float64)
    params = torch.stack([torch.tensor(0.0).double(), mu, log_s]).reshape(1, 3, 1, 1)
    levels = torch.arange(256, dtype=torch.float64) / 255
    x = levels.reshape(-1, 1, 1, 1)
    got = logistic_mixture_log_prob(params.expand(256, -1, -1, -1), x, 1).flatten()
    xs, s = 2 * levels - 1, log_s.exp()
    upper = torch.sigmoid((xs + 1 / 255 - mu) / s)
    lower = torch.sigmoid((xs - 1 / 255 - mu) / s)
    upper[-1], lower[0] = 1.0, 0.0
    torch.testing.assert_close(got, torch.log(upper - lower))


def test_categorical_log_prob_matches_torch_distributions():
    model = tiny(GatedPixelCNN, (1, 3, 4), "categorical")
    x = valid_images(model, 3)
    logits = model(x)  # (B, 256, C, H, W)
    assert logits.shape == (3, 256, 1, 3, 4)
    dist = torch.distributions.Categorical(logits=logits.movedim(1, -1))
    expected = dist.log_prob((x * 255).round().long()).flatten(1).sum(1)
    torch.testing.assert_close(model.log_prob(x), expected)
    bpd = model.bits_per_dim(x)
    torch.testing.assert_close(bpd, -expected / (12 * math.log(2)))


def test_bernoulli_output_layout_and_log_prob():
    model = tiny(PixelCNN, (1, 3, 4))
    x = valid_images(model, 2)
    logits = model(x)
    assert logits.shape == x.shape
    expected = torch.distributions.Bernoulli(logits=logits).log_prob(x).flatten(1).sum(1)
    torch.testing.assert_close(model.log_prob(x), expected)


# ------------------------------------------------------------------ sampling
@pytest.mark.parametrize("cls", MODELS)
@pytest.mark.parametrize("likelihood", LIKELIHOODS)
def test_cached_sampling_equals_naive(cls, likelihood):
    # 6×9 with two layers: the cache's windows are narrower than the image
    shape = (3, 6, 9) if likelihood == "logistic" else (1, 6, 9)
    model = tiny(cls, shape, likelihood, classes=3).float()
    y = torch.tensor([0, 1, 2, 1])
    naive = model.sample(4, generator=g(5), method="naive", y=y)
    cached = model.sample(4, generator=g(5), method="cached", y=y)
    assert torch.equal(naive, cached)
    assert naive.shape == (4, *shape) and 0 <= naive.min() and naive.max() <= 1
    again = model.sample(4, generator=g(5), y=y)
    assert torch.equal(again, cached)  # seeded: repeats exactly
    assert not torch.equal(model.sample(4, generator=g(6), y=y), cached)


@pytest.mark.parametrize("cls", MODELS)
def test_samples_follow_the_models_own_probabilities(cls):
    """The frequencies of the 16 binary 2×2 images match exp(log_prob)."""
    model = tiny(cls, (1, 2, 2)).float()
    images = torch.tensor(list(itertools.product([0.0, 1.0], repeat=4))).reshape(16, 1, 2, 2)
    p = model.log_prob(images).exp()
    x = model.sample(40_000, generator=g(0))
    code = (x.flatten(1) * torch.tensor([8.0, 4.0, 2.0, 1.0])).sum(1).long()
    freq = torch.bincount(code, minlength=16).float() / len(x)
    assert (freq - p).abs().max() < 0.01


def test_logistic_samples_follow_the_mixture():
    model = tiny(GatedPixelCNN, (1, 1, 1), "logistic").float()
    levels = torch.arange(256.0).reshape(-1, 1, 1, 1) / 255
    p = model.log_prob(levels).exp()
    x = model.sample(100_000, generator=g(1))
    freq = torch.bincount((x.flatten() * 255).round().long(), minlength=256) / len(x)
    assert 0.5 * (freq - p).abs().sum() < 0.04  # total variation


@pytest.mark.parametrize("cls", MODELS)
@pytest.mark.parametrize("method", ["cached", "naive"])
def test_complete_keeps_every_known_pixel(cls, method):
    model = tiny(cls, (1, 6, 7)).float()
    x = valid_images(model, 3).float()
    bottom_unknown = torch.ones(1, 1, 6, 7, dtype=torch.bool)
    bottom_unknown[..., 3:, :] = False
    holes = torch.rand(3, 1, 6, 7, generator=g(2)) > 0.3
    for known in (bottom_unknown, holes):
        filled = model.complete(x, known, generator=g(3), method=method)
        assert torch.equal(filled[known.expand_as(x)], x[known.expand_as(x)])
        assert set(filled.unique().tolist()) <= {0.0, 1.0}
    filled = model.complete(x, bottom_unknown, generator=g(3), method=method)
    assert not torch.equal(filled, x)  # 3 rows × 7 × 3 images drawn: some change
    cached = model.complete(x, holes, generator=g(3), method="cached")
    assert torch.equal(model.complete(x, holes, generator=g(3), method="naive"), cached)


# ------------------------------------------------------------------ training and checkpoints
def test_training_on_one_batch_overfits_it():
    model = tiny(GatedPixelCNN, (1, 6, 6)).float()
    x = valid_images(model, 8).float()
    before = -model.log_prob(x).mean().item()
    train.fit(model, x, steps=150, lr=1e-2, batch_size=8, progress=False)
    after = -model.log_prob(x).mean().item()
    assert after < 0.5 * before  # about 25 nats to memorise 8 images of 36 random bits


def test_class_conditioning_changes_the_likelihood():
    model = tiny(GatedPixelCNN, (1, 4, 4), classes=2).float()
    x = valid_images(model, 4).float()
    y0, y1 = torch.zeros(4, dtype=torch.long), torch.ones(4, dtype=torch.long)
    with torch.no_grad():
        model.layers[0].embed.weight[1] += 1.0
    assert not torch.allclose(model.log_prob(x, y=y0), model.log_prob(x, y=y1))
    assert model.loss((x, y0))["loss"].item() == pytest.approx(
        -model.log_prob(x, y=y0).mean().item()
    )
    # no label: the exact marginal log Σ_y p(y) p(x|y) with p(y) = 1/2
    marginal = torch.logaddexp(model.log_prob(x, y=y0), model.log_prob(x, y=y1)) - math.log(2)
    torch.testing.assert_close(model.log_prob(x), marginal)
    # completing without a label draws it from p(y | the known prefix): Bayes' rule
    everything = torch.ones_like(x, dtype=torch.bool)
    joint = torch.stack([model.log_prob(x, y=y0), model.log_prob(x, y=y1)], 1)
    torch.testing.assert_close(model._class_posterior(x, everything), joint.softmax(1))
    nothing = torch.zeros_like(everything)
    torch.testing.assert_close(model._class_posterior(x, nothing), torch.full((4, 2), 0.5))
    # and sampling without a label draws the class first, seeded
    assert torch.equal(model.sample(3, generator=g(0)), model.sample(3, generator=g(0)))


def test_checkpoint_round_trip(tmp_path):
    model = tiny(GatedPixelCNN, (1, 5, 5), "categorical").float()
    x = valid_images(model, 2).float()
    hub.save(model, tmp_path / "p", metrics={"nll": 1.0})
    loaded = hub.load(tmp_path / "p")
    assert isinstance(loaded, GatedPixelCNN) and loaded.config == model.config
    torch.testing.assert_close(loaded.log_prob(x), model.log_prob(x))


def test_shipped_pixelcnn_mnist_loads_and_samples():
    model = hub.load("pixelcnn-mnist")
    assert isinstance(model, GatedPixelCNN) and model.config.shape == (1, 28, 28)
    assert model.config.num_classes == 10
    x = model.sample(2, generator=g(0), y=torch.tensor([3, 7]))
    assert x.shape == (2, 1, 28, 28) and set(x.unique().tolist()) <= {0.0, 1.0}
    assert 40 < -model.log_prob(x, y=torch.tensor([3, 7])).mean().item() < 300


# ------------------------------------------------------------------ bad input
@pytest.mark.parametrize(
    "bad, error, match",
    [
        (torch.full((2, 1, 4, 4), 0.5), ValueError, r"binary values \(0 or 1\), got fractions"),
        (torch.zeros(2, 1, 4, 5), ValueError, r"tensor N×1×4×4 .* of shape \(2, 1, 4, 5\)"),
        (torch.zeros(2, 4, 4), ValueError, r"of shape \(2, 4, 4\)"),
        (torch.zeros(2, 1, 4, 4, dtype=torch.uint8), TypeError, "got a uint8 tensor"),
    ],
)
def test_bad_images_raise_clear_errors(bad, error, match):
    model = tiny(PixelCNN, (1, 4, 4)).float()
    with pytest.raises(error, match=match):
        model.log_prob(bad)


def test_off_grid_values_and_bad_arguments_raise():
    model = tiny(GatedPixelCNN, (1, 4, 4), "categorical", classes=2).float()
    y = torch.zeros(2, dtype=torch.long)
    with pytest.raises(ValueError, match="k/255"):
        model.log_prob(torch.full((2, 1, 4, 4), 0.3), y=y)
    with pytest.raises(ValueError, match="class-conditional"):
        model(torch.zeros(2, 1, 4, 4))
    with pytest.raises(ValueError, match="integer class labels in 0..1, got values in 0..5"):
        model.sample(2, y=torch.tensor([0, 5]))
    with pytest.raises(ValueError, match="'cached' or 'naive'"):
        model.sample(2, y=y, method="fast")
    with pytest.raises(ValueError, match="known_mask"):
        model.complete(torch.zeros(2, 1, 4, 4), torch.ones(2, 1, 4, 4), y=y)
    with pytest.raises(ValueError, match="likelihood must be one of"):
        PixelCNNConfig(likelihood="gaussian")
    with pytest.raises(ValueError, match="kernel must be odd"):
        PixelCNNConfig(kernel=4)


def test_colour_completion_keeps_known_values_exactly_and_refuses_split_pixels():
    model = tiny(GatedPixelCNN, (3, 4, 5), "logistic").float()
    x = valid_images(model, 2).float()
    known = torch.rand(2, 1, 4, 5, generator=g(4)) > 0.5
    cached = model.complete(x, known, generator=g(1))
    assert torch.equal(cached[known.expand_as(x)], x[known.expand_as(x)])  # bit for bit
    levels = cached * 255
    assert ((levels - levels.round()).abs() < 1e-4).all()  # every value on the 8-bit grid
    assert torch.equal(model.complete(x, known, generator=g(1), method="naive"), cached)
    split = known.expand(2, 3, 4, 5).clone()
    split[:, 1] = ~split[:, 1]  # G unknown where R is known
    with pytest.raises(ValueError, match="known or unknown as a whole"):
        model.complete(x, split)
