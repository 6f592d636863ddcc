"""genedu.baselines: exact likelihoods, EM, sampling and input checks of chapter 1's models."""

from __future__ import annotations

import itertools

import pytest
import torch
from torch import distributions as D

from genedu import data
from genedu.baselines import BernoulliConfig, BernoulliMixture, IndependentBernoulli, MixtureConfig

SHAPE = (1, 2, 2)


def every_binary_image(shape=SHAPE) -> torch.Tensor:
    """All 2**D binary images of `shape`, as float N×C×H×W."""
    dims = shape[0] * shape[1] * shape[2]
    return torch.tensor(list(itertools.product([0.0, 1.0], repeat=dims))).view(-1, *shape)


def random_independent(shape=SHAPE, seed: int = 0) -> IndependentBernoulli:
    model = IndependentBernoulli(BernoulliConfig(shape=shape))
    with torch.no_grad():
        model.logits.copy_(2 * torch.randn(shape, generator=torch.Generator().manual_seed(seed)))
    return model


def random_mixture(components: int = 3, shape=SHAPE, seed: int = 0) -> BernoulliMixture:
    g = torch.Generator().manual_seed(seed)
    model = BernoulliMixture(MixtureConfig(components=components, shape=shape))
    with torch.no_grad():
        model.logits.copy_(2 * torch.randn(components, *shape, generator=g))
        model.weight_logits.copy_(torch.randn(components, generator=g))
    return model


def random_binary(n: int, shape=SHAPE, seed: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 2, (n, *shape), generator=g).float()


@pytest.fixture(scope="module")
def binary_mnist5k() -> tuple[torch.Tensor, torch.Tensor]:
    train, test = data.load("mnist5k", "train"), data.load("mnist5k", "test")
    return data.binarize(train.images, threshold=0.5), data.binarize(test.images, threshold=0.5)


# ------------------------------------------------------------------------ exact likelihood


@pytest.mark.parametrize(
    "make", [random_independent, random_mixture], ids=["independent", "mixture"]
)
def test_probabilities_of_all_images_sum_to_one(make):
    for seed in range(3):
        log_p = make(seed=seed).log_prob(every_binary_image())
        assert log_p.shape == (16,)
        assert log_p.exp().sum().item() == pytest.approx(1.0, abs=1e-5)


def test_independent_log_prob_matches_torch_distributions():
    model = random_independent(shape=(1, 3, 3))
    x = random_binary(20, shape=(1, 3, 3))
    reference = D.Independent(D.Bernoulli(logits=model.logits), 3).log_prob(x)
    torch.testing.assert_close(model.log_prob(x), reference, atol=1e-5, rtol=1e-5)


def test_mixture_log_prob_matches_torch_distributions():
    model = random_mixture(components=4, shape=(1, 3, 3))
    x = random_binary(20, shape=(1, 3, 3))
    reference = D.MixtureSameFamily(
        D.Categorical(logits=model.weight_logits),
        D.Independent(D.Bernoulli(logits=model.logits), 3),
    ).log_prob(x)
    torch.testing.assert_close(model.log_prob(x), reference, atol=1e-5, rtol=1e-5)


def test_loss_is_mean_negative_log_prob():
    model, x = random_mixture(), random_binary(10)
    out = model.loss(x)
    torch.testing.assert_close(out["loss"], -model.log_prob(x).mean())
    assert out["loss"].requires_grad


@pytest.mark.parametrize("pseudo_count", [1.0, 0.5])
def test_fit_closed_form_is_the_smoothed_mean(pseudo_count):
    x = random_binary(50, shape=(1, 3, 3))
    model = IndependentBernoulli(BernoulliConfig(shape=(1, 3, 3)))
    assert model.fit_closed_form(x, pseudo_count=pseudo_count) is model
    expected = (x.sum(0) + pseudo_count) / (len(x) + 2 * pseudo_count)
    torch.testing.assert_close(torch.sigmoid(model.logits), expected, atol=1e-6, rtol=1e-5)


def test_closed_form_beats_any_nearby_fit():
    x = random_binary(200, shape=(1, 3, 3), seed=4)
    model = IndependentBernoulli(BernoulliConfig(shape=(1, 3, 3))).fit_closed_form(x, 1e-6)
    best = model.log_prob(x).mean()
    with torch.no_grad():
        g = torch.Generator().manual_seed(0)
        model.logits.add_(0.05 * torch.randn(model.logits.shape, generator=g))
    assert model.log_prob(x).mean() < best


# ------------------------------------------------------------------------------------- EM


def test_em_log_likelihood_never_decreases(binary_mnist5k):
    x = binary_mnist5k[0][:1000]
    model = BernoulliMixture(MixtureConfig(components=6, shape=(1, 28, 28)))
    curve = model.fit_em(x, iterations=12, generator=torch.Generator().manual_seed(0))
    assert len(curve) == 12
    steps = torch.tensor(curve).diff()
    assert (steps >= -1e-4).all(), curve
    assert curve[-1] > curve[0] + 10  # it does climb
    # em_step reports the log-likelihood before its update: one more step shows the last one
    assert model.em_step(x) >= curve[-1] - 1e-4


def test_em_step_is_the_textbook_update():
    """One step by hand (Bishop 9.3.3, with the Beta prior): r, then pi and mu."""
    model = random_mixture(components=3, shape=(1, 3, 3))
    x = random_binary(40, shape=(1, 3, 3), seed=2)
    with torch.no_grad():
        ll_before = model.log_prob(x).mean().item()
        prior = torch.softmax(model.weight_logits, 0)
        mu = torch.sigmoid(model.logits.flatten(1))  # (K, D)
        flat = x.flatten(1)
        likelihood = (mu[None] ** flat[:, None] * (1 - mu[None]) ** (1 - flat[:, None])).prod(2)
        r = prior * likelihood / (prior * likelihood).sum(1, keepdim=True)  # (N, K)
        nk = r.sum(0)
        expected_mu = (r.T @ flat + 1.0) / (nk[:, None] + 2.0)

    assert model.em_step(x, pseudo_count=1.0) == pytest.approx(ll_before, abs=1e-4)
    # pi_k = (n_k + 1e-3) / (N + 1e-3 K): the mean responsibility, and never log 0
    smoothed = (nk + 1e-3) / (len(x) + 3e-3)
    torch.testing.assert_close(torch.softmax(model.weight_logits, 0), smoothed, atol=0, rtol=1e-5)
    torch.testing.assert_close(torch.sigmoid(model.logits.flatten(1)), expected_mu)


def test_an_empty_component_keeps_a_tiny_finite_weight():
    model = random_mixture(components=3, shape=(1, 3, 3))
    x = torch.ones(10, 1, 3, 3)
    with torch.no_grad():
        model.logits[2] = -30.0  # component 2 all but rules out a white image: r = 0
    model.em_step(x)
    weights = torch.softmax(model.weight_logits, 0)
    assert torch.isfinite(model.weight_logits).all()
    assert weights[2].item() == pytest.approx(1e-3 / (10 + 3e-3), rel=1e-4)


def test_responsibilities_are_a_distribution(binary_mnist5k):
    model = random_mixture(components=5, shape=(1, 28, 28))
    r = model.responsibilities(binary_mnist5k[1][:50])
    assert r.shape == (50, 5)
    assert (r >= 0).all()
    torch.testing.assert_close(r.sum(1), torch.ones(50))


def test_mixture_beats_independent_on_held_out_digits(binary_mnist5k):
    train, test = binary_mnist5k
    independent = IndependentBernoulli().fit_closed_form(train)
    mix = BernoulliMixture(MixtureConfig(components=10))
    mix.fit_em(train, iterations=10, generator=torch.Generator().manual_seed(0))
    ll_independent = independent.log_prob(test).mean().item()
    ll_mixture = mix.log_prob(test).mean().item()
    assert ll_mixture > ll_independent + 20  # nats per image


# ------------------------------------------------------------------------------- sampling


def test_samples_are_binary_and_seeded():
    for model in (random_independent(), random_mixture()):
        a = model.sample(50, generator=torch.Generator().manual_seed(0))
        b = model.sample(50, generator=torch.Generator().manual_seed(0))
        c = model.sample(50, generator=torch.Generator().manual_seed(1))
        assert a.shape == (50, *SHAPE) and a.is_floating_point()
        assert set(a.unique().tolist()) <= {0.0, 1.0}
        assert torch.equal(a, b) and not torch.equal(a, c)


def test_independent_samples_follow_the_pixel_probabilities():
    model = random_independent(shape=(1, 3, 3))
    x = model.sample(20_000, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(x.mean(0), torch.sigmoid(model.logits), atol=0.02, rtol=0)


def distinct_components_mixture() -> BernoulliMixture:
    """Component 0 is (nearly) all ones, 1 all zeros, 2 a checkerboard; weights .6/.3/.1."""
    model = BernoulliMixture(MixtureConfig(components=3, shape=SHAPE))
    checker = torch.tensor([[1.0, -1.0], [-1.0, 1.0]])
    with torch.no_grad():
        model.logits.copy_(
            20 * torch.stack([torch.ones(2, 2), -torch.ones(2, 2), checker])[:, None]
        )
        model.weight_logits.copy_(torch.tensor([0.6, 0.3, 0.1]).log())
    return model


def test_sample_component_draws_from_that_component():
    model = distinct_components_mixture()
    g = torch.Generator().manual_seed(0)
    assert (model.sample(100, component=0, generator=g) == 1).all()
    assert (model.sample(100, component=1, generator=g) == 0).all()
    checker = model.sample(100, component=2, generator=g)
    assert (checker == torch.tensor([[1.0, 0.0], [0.0, 1.0]])).all()


def test_sample_picks_components_by_their_weights():
    model = distinct_components_mixture()
    x = model.sample(10_000, generator=torch.Generator().manual_seed(0)).flatten(1)
    counts = torch.stack([(x == 1).all(1), (x == 0).all(1)]).float().mean(1)
    torch.testing.assert_close(counts, torch.tensor([0.6, 0.3]), atol=0.02, rtol=0)


# ------------------------------------------------------------------------------ bad input


@pytest.mark.parametrize(
    "make", [random_independent, random_mixture], ids=["independent", "mixture"]
)
def test_bad_inputs_are_refused_clearly(make):
    model = make()
    with pytest.raises(ValueError, match=r"binary values \(0 or 1\)"):
        model.log_prob(torch.full((3, *SHAPE), 0.5))
    with pytest.raises(
        ValueError, match=r"tensor N×1×2×2 .*got a float32 tensor of shape \(3, 1, 3, 3\)"
    ):
        model.log_prob(torch.zeros(3, 1, 3, 3))
    with pytest.raises(TypeError, match="expected a float32 tensor.*int64.*binarize"):
        model.log_prob(torch.zeros(3, *SHAPE, dtype=torch.int64))


def test_fit_closed_form_refuses_non_binary():
    with pytest.raises(ValueError, match="binary"):
        IndependentBernoulli(BernoulliConfig(shape=SHAPE)).fit_closed_form(torch.rand(4, *SHAPE))


@pytest.mark.parametrize("component", [-1, 3])
def test_component_out_of_range(component):
    with pytest.raises(
        ValueError, match=r"component(: expected a whole number >= 0| must be in \[0, 3\))"
    ):
        random_mixture(components=3).sample(2, component=component)


def test_mixture_needs_a_component():
    with pytest.raises(ValueError, match="components must be >= 1"):
        BernoulliMixture(MixtureConfig(components=0))


def test_independent_histogram_is_the_smoothed_count_and_normalised():
    from genedu.baselines import HistogramConfig, IndependentHistogram

    x = torch.tensor([0, 0, 255, 7]).float().reshape(4, 1, 1, 1) / 255
    model = IndependentHistogram(HistogramConfig(shape=(1, 1, 1))).fit_closed_form(x)
    # level 0 was seen twice in 4: (2 + 1) / (4 + 256)
    assert model.log_prob(x[:1]).exp().item() == pytest.approx(3 / 260)
    levels = torch.arange(256.0).reshape(-1, 1, 1, 1) / 255
    assert model.log_prob(levels).exp().sum().item() == pytest.approx(1.0, abs=1e-5)
    s = model.sample(2000, generator=torch.Generator().manual_seed(0))
    assert (s == 0).float().mean().item() == pytest.approx(3 / 260, abs=0.01)
    with pytest.raises(ValueError, match="8-bit"):
        model.log_prob(torch.full((1, 1, 1, 1), 0.3))
