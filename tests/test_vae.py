"""genedu.vae: the KL, the bounds, the trick, and the contract, each able to fail."""

from __future__ import annotations

import math

import pytest
import torch
from torch.distributions import Normal, kl_divergence

from genedu import data, hub, train
from genedu.vae import VAE, VAEConfig, gaussian_kl, reparameterize

TINY = VAEConfig(shape=(1, 12, 12), latent_dim=4, hidden=8)


def binary(n: int, shape=(1, 12, 12), seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.bernoulli(torch.full((n, *shape), 0.3), generator=g)


def g(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_gaussian_kl_matches_torch_distributions():
    mu, logvar = torch.randn(7, 5, generator=g(0)), torch.randn(7, 5, generator=g(1))
    q = Normal(mu, (0.5 * logvar).exp())
    p = Normal(torch.zeros_like(mu), torch.ones_like(mu))
    torch.testing.assert_close(gaussian_kl(mu, logvar), kl_divergence(q, p).sum(-1))
    assert torch.all(gaussian_kl(torch.zeros(3, 5), torch.zeros(3, 5)) == 0)


def test_gaussian_decoder_log_likelihood_is_a_normal_density():
    model = VAE(VAEConfig(shape=(1, 6, 5), latent_dim=3, hidden=4, likelihood="gaussian"))
    x = torch.rand(4, 1, 6, 5, generator=g(0))
    out = torch.randn(4, 1, 6, 5, generator=g(1))
    expected = Normal(torch.sigmoid(out), model.log_sigma.exp()).log_prob(x).flatten(1).sum(1)
    torch.testing.assert_close(model._log_likelihood(x, out), expected)


def test_gradients_flow_through_the_reparameterised_sample():
    mu = torch.zeros(3, 4, requires_grad=True)
    logvar = torch.zeros(3, 4, requires_grad=True)
    z = reparameterize(mu, logvar, g(0))
    (z**2).sum().backward()
    assert mu.grad.abs().sum() > 0 and logvar.grad.abs().sum() > 0
    model = VAE(TINY)
    model.loss(binary(8))["loss"].backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, f"no gradient reaches {name}"


@pytest.fixture(scope="module")
def trained():
    """A tiny VAE trained briefly on 64 images, so that z matters to the decoder."""
    torch.manual_seed(0)
    x = binary(64, seed=5)
    model = VAE(TINY)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(200):
        opt.zero_grad()
        model.loss(x)["loss"].backward()
        opt.step()
    return model, x


def test_iwae_with_one_sample_equals_the_elbo_in_expectation(trained):
    model, x = trained[0], trained[1][:4]
    with torch.no_grad():
        elbo = torch.stack([model.elbo(x, generator=g(s)) for s in range(400)]).mean(0)
        iwae1 = torch.stack([model.log_prob(x, k=1, generator=g(s)) for s in range(400)]).mean(0)
    # Same expectation; the analytic-KL ELBO has less variance, so allow the Monte Carlo error.
    torch.testing.assert_close(iwae1, elbo, atol=1.0, rtol=0.0)


def test_iwae_bound_rises_with_k(trained):
    model, x = trained
    bounds = [model.log_prob(x, k=k, generator=g(1)).mean().item() for k in (1, 10, 100)]
    assert bounds[0] < bounds[1] < bounds[2] and bounds[2] - bounds[0] > 0.1, bounds
    assert all(b < 0 for b in bounds)  # a log-probability of binary data


def test_one_batch_overfits():
    x = binary(16, seed=3)
    model = VAE(TINY)
    start = model.loss(x)["neg_elbo"].item()
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    torch.manual_seed(0)
    for _ in range(400):
        opt.zero_grad()
        model.loss(x)["loss"].backward()
        opt.step()
    end = model.elbo(x, generator=g(0)).neg().mean().item()
    # Random 12×12 images at p=0.3 cost 144·H(0.3) ≈ 88 nats under the best independent
    # model; memorising 16 of them must do far better.
    assert start > 90 and end < 40, (start, end)


def test_seeded_sample_repeats_and_outputs_are_images():
    model = VAE(TINY)
    a, b = model.sample(5, generator=g(7)), model.sample(5, generator=g(7))
    assert torch.equal(a, b)
    assert not torch.equal(a, model.sample(5, generator=g(8)))
    assert a.shape == (5, 1, 12, 12) and a.min() >= 0 and a.max() <= 1
    dec = model.decode(torch.randn(3, 4, generator=g(0)))
    assert dec.shape == (3, 1, 12, 12) and dec.min() >= 0 and dec.max() <= 1


@pytest.mark.parametrize("shape", [(1, 28, 20), (1, 25, 25), (3, 32, 32)])
def test_conv_model_handles_every_dataset_shape(shape):
    model = VAE(VAEConfig(shape=shape, latent_dim=4, hidden=4, likelihood="gaussian"))
    x = torch.rand(2, *shape, generator=g(0))
    assert model.sample(2, generator=g(0)).shape == (2, *shape)
    assert torch.isfinite(model.loss(x)["loss"])


def test_bad_input_gives_clear_errors():
    model = VAE(TINY)
    x = binary(2)
    with pytest.raises(ValueError, match=r"values in \[0, 1\]"):
        model.loss(x * 2)
    with pytest.raises(ValueError, match=r"tensor N×1×12×12 .*got a float32 tensor of shape"):
        model.elbo(torch.zeros(2, 1, 28, 28))
    with pytest.raises(TypeError, match="expected a float32 tensor .* got a uint8 tensor"):
        model.log_prob((x * 255).to(torch.uint8))
    with pytest.raises(ValueError, match="k: expected a whole number >= 1, got 0"):
        model.log_prob(x, k=0)
    with pytest.raises(ValueError, match="likelihood must be one of"):
        VAEConfig(likelihood="poisson")
    with pytest.raises(ValueError, match="unconditional"):
        model.sample(2, y=torch.tensor([0, 1]))


def test_class_conditional_vae_uses_its_labels():
    model = VAE(VAEConfig(shape=(1, 12, 12), latent_dim=4, hidden=8, num_classes=3))
    z = torch.randn(2, 4, generator=g(0))
    assert not torch.allclose(
        model.decode(z, torch.tensor([0, 0])), model.decode(z, torch.tensor([2, 2]))
    )
    x, y = binary(4), torch.tensor([0, 1, 2, 1])
    assert torch.isfinite(model.loss((x, y))["loss"])
    assert model.log_prob(x, k=5, y=y).shape == (4,)
    with pytest.raises(ValueError, match="class-conditional; expected y"):
        model.loss(x)
    assert model.sample(3, generator=g(0)).shape == (3, 1, 12, 12)  # classes 0, 1, 2 in turn
    with pytest.raises(ValueError, match="labels in 0..2"):
        model.sample(2, y=torch.tensor([0, 3]))


def test_beta_weights_only_the_kl():
    x = binary(8)
    torch.manual_seed(0)
    out1 = VAE(TINY).loss(x)
    torch.manual_seed(0)
    out4 = VAE(VAEConfig(**{**TINY.__dict__, "beta": 4.0})).loss(x)
    torch.testing.assert_close(out4["loss"], out4["recon"] + 4.0 * out4["kl"])
    torch.testing.assert_close(out1["neg_elbo"], out4["neg_elbo"])


def test_checkpoint_round_trips(tmp_path):
    model = VAE(VAEConfig(shape=(1, 12, 12), latent_dim=4, hidden=8, likelihood="gaussian"))
    x = torch.rand(3, 1, 12, 12, generator=g(0))
    hub.save(model, tmp_path / "vae", metrics={"test": 1.0}, command="pytest")
    loaded = hub.load(tmp_path / "vae")
    assert loaded.config == model.config
    torch.testing.assert_close(
        loaded.log_prob(x, k=5, generator=g(1)), model.log_prob(x, k=5, generator=g(1))
    )


def test_fit_with_dynamic_binarisation_lowers_the_loss():
    images = data.load("digits").images  # uint8, 1×8×8, bundled
    model = VAE(VAEConfig(shape=(1, 8, 8), latent_dim=4, hidden=8))
    history = train.fit(
        model, images, steps=150, lr=3e-3, batch_size=64, transform=data.binarize, progress=False
    )
    first, last = history.logs["neg_elbo"][:10], history.logs["neg_elbo"][-10:]
    assert sum(last) / 10 < sum(first) / 10 - 5
    assert math.isfinite(last[-1])


def test_log_likelihood_is_the_first_term_of_the_elbo():
    model = VAE(TINY)
    x = binary(5)
    mu, logvar = model.encode(x)
    z = reparameterize(mu, logvar, g(3))
    by_hand = model.log_likelihood(x, z) - gaussian_kl(mu, logvar)
    torch.testing.assert_close(by_hand, model.elbo(x, generator=g(3)))
    # Bernoulli: the decoder's probabilities scored pixel by pixel
    probs = model.decode(z)
    expected = torch.distributions.Bernoulli(probs=probs).log_prob(x).flatten(1).sum(1)
    torch.testing.assert_close(model.log_likelihood(x, z), expected, atol=1e-4, rtol=1e-5)
    with pytest.raises(ValueError, match=r"expected z of shape 5×4"):
        model.log_likelihood(x, z[:3])


# --------------------------------------------------------------------------- shipped models


def test_shipped_vae_mnist_meets_its_likelihood_goal(shared_data):
    """Issue 3's definition of done: IWAE (k=100) NLL on 1,000 test digits <= 91 nats."""
    model = hub.load("vae-mnist")
    test = data.load("mnist", "test").images[:1000]
    x = data.binarize(test, generator=g(0))
    nll = -model.log_prob(x, k=100, generator=g(0)).mean().item()
    assert nll <= 91.0, nll
    assert model.config.likelihood == "bernoulli" and not model.training


def test_shipped_vae_checkpoints_say_how_they_were_made():
    rows = {r["name"]: r for r in hub.list()}
    for name, data_name in [
        ("vae-mnist", "mnist"),
        ("vae-frey", "frey"),
        ("vae-olivetti", "olivetti"),
    ]:
        assert rows[name]["command"].startswith(f"genedu train vae --data {data_name}")
        assert {"test_neg_elbo_nats", "test_nll_iwae100_first1000_nats"} <= set(
            rows[name]["metrics"]
        )
    faces = hub.load("vae-frey")
    assert faces.config.shape == (1, 28, 20) and faces.config.likelihood == "gaussian"
    samples = faces.sample(4, generator=g(0))
    assert samples.shape == (4, 1, 28, 20) and 0 <= samples.min() <= samples.max() <= 1
    olivetti = hub.load("vae-olivetti")  # chapter 3's 64×64 showcase
    assert olivetti.config.shape == (1, 64, 64) and olivetti.config.likelihood == "gaussian"
    samples = olivetti.sample(4, generator=g(0))
    assert samples.shape == (4, 1, 64, 64) and 0 <= samples.min() <= samples.max() <= 1


def test_gaussian_scale_is_floored_at_min_sigma():
    config = VAEConfig(shape=(1, 6, 5), latent_dim=3, hidden=4, likelihood="gaussian")
    floored = VAE(VAEConfig(**{**config.__dict__, "min_sigma": 0.1}))
    x = torch.rand(4, 1, 6, 5, generator=g(0))
    out = torch.randn(4, 1, 6, 5, generator=g(1))
    with torch.no_grad():
        floored.log_sigma.fill_(math.log(0.01))  # learned below the floor
    expected = Normal(torch.sigmoid(out), 0.1).log_prob(x).flatten(1).sum(1)
    torch.testing.assert_close(floored._log_likelihood(x, out), expected)
    with pytest.raises(ValueError, match="min_sigma must be > 0"):
        VAEConfig(likelihood="gaussian", min_sigma=0.0)


def test_mean_neg_elbo_is_the_batched_mean_and_repeats():
    model, x = VAE(TINY), binary(7)
    whole = -model.elbo(x, generator=g(2)).mean().item()
    from genedu.vae import mean_neg_elbo

    assert mean_neg_elbo(model, x, generator=g(2), batch_size=7) == pytest.approx(whole)
    batched = mean_neg_elbo(model, x, generator=g(2), batch_size=3)  # 3 + 3 + 1 images
    assert batched == mean_neg_elbo(model, x, generator=g(2), batch_size=3)
    assert batched == pytest.approx(whole, abs=25)  # same expectation, other noise draws


# ------------------------------------------------- ideas a planted one-line bug would break


def test_the_importance_weighted_bound_is_exact_when_every_weight_is_equal():
    """With q(z|x) = p(z) and a decoder that ignores z, every importance weight is
    p(x | .), so L_k = log p(x) for every k: a bound that forgot its - log k would
    rise by log k."""
    model = VAE(TINY).eval()
    with torch.no_grad():
        model.to_posterior.weight.zero_()
        model.to_posterior.bias.zero_()  # mu = 0, logvar = 0: q is the prior
        model.decoder[0].weight.zero_()  # the decoder's output no longer depends on z
    x = binary(3)
    exact = model.log_likelihood(x, torch.zeros(3, TINY.latent_dim))
    for k in (1, 7, 50):
        got = model.log_prob(x, k=k, generator=torch.Generator().manual_seed(k))
        torch.testing.assert_close(got, exact, rtol=0, atol=1e-4)


def test_reparameterisation_draws_with_the_standard_deviation_exp_half_logvar():
    g = torch.Generator().manual_seed(0)
    mu, logvar = torch.full((200_000, 1), 3.0), torch.full((200_000, 1), 2.0)
    z = reparameterize(mu, logvar, g)
    assert z.mean().item() == pytest.approx(3.0, abs=0.03)
    assert z.std().item() == pytest.approx(math.e, rel=0.01)  # exp(2 / 2); not exp(2)
