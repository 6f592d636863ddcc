"""Every family through the same checks (genedu.contract): loss, sample, log_prob, y=."""

from __future__ import annotations

import dataclasses
import inspect

import pytest
import torch

from genedu import contract, gan, hub, train
from genedu.baselines import (
    BernoulliMixture,
    HistogramConfig,
    IndependentBernoulli,
    IndependentHistogram,
    MixtureConfig,
)
from genedu.diffusion import DDPM, DiffusionConfig, FlowMatching
from genedu.gan import GAN, GANConfig
from genedu.latent_diffusion import LatentDiffusion, LatentDiffusionConfig
from genedu.pixelcnn import GatedPixelCNN, PixelCNN, PixelCNNConfig
from genedu.stylegan import StyleGAN, StyleGANConfig
from genedu.text import CharRNN, CharTransformer, NGram, NGramConfig, RNNConfig, TransformerConfig
from genedu.vae import VAE, VAEConfig

SHAPE = (1, 8, 8)
VOCAB = "\nab"


def g(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def binary(n=64):
    return (torch.rand(n, *SHAPE, generator=g(0)) < 0.3).float()


def levels(n=64):
    return torch.randint(0, 40, (n, *SHAPE), generator=g(0)).float() / 255


def rows(n=64):
    # a pattern a model can learn: "ab" repeated after each newline
    return torch.tensor([[0, 1, 2, 1, 2, 1, 2, 0]]).repeat(n, 1)


def labels(n=64):
    return torch.arange(n) % 3


# name: (model maker, data maker, the family's step, lr, whether it has log_prob)
FAMILIES = {
    "vae": (lambda: VAE(VAEConfig(shape=SHAPE, latent_dim=2, hidden=4)), binary, None, 1e-2),
    "cvae": (lambda: VAE(VAEConfig(shape=SHAPE, latent_dim=2, hidden=4, num_classes=3)),
             lambda: (binary(), labels()), None, 1e-2),
    "gan": (lambda: GAN(GANConfig(shape=SHAPE, latent_dim=4, hidden=4)), binary,
            gan.train_step, 2e-4),
    "cgan": (lambda: GAN(GANConfig(shape=SHAPE, latent_dim=4, hidden=4, num_classes=3)),
             lambda: (binary(), labels()), gan.train_step, 2e-4),
    "stylegan": (lambda: StyleGAN(StyleGANConfig(shape=SHAPE, latent_dim=4, w_dim=4,
                                                 hidden=4, mapping_layers=1, d_hidden=4)),
                 binary, gan.train_step, 2e-4),
    "pixelcnn": (lambda: PixelCNN(PixelCNNConfig(shape=SHAPE, hidden=4, layers=1,
                                                 first_kernel=3)), binary, None, 1e-2),
    "gated-conditional": (lambda: GatedPixelCNN(PixelCNNConfig(
        shape=SHAPE, hidden=4, layers=1, first_kernel=3, likelihood="logistic", mixtures=1,
        num_classes=3)), lambda: (levels(), labels()), None, 1e-2),
    "bernoulli": (lambda: IndependentBernoulli(), lambda: (torch.rand(64, 1, 28, 28,
                  generator=g(0)) < 0.3).float(), None, 5e-2),
    "mixture": (lambda: BernoulliMixture(MixtureConfig(components=2, shape=SHAPE)), binary,
                None, 5e-2),
    "histogram": (lambda: IndependentHistogram(HistogramConfig(shape=SHAPE)), levels, None, 5e-2),
    "transformer": (lambda: CharTransformer(TransformerConfig(
        vocab=VOCAB, boundary="\n", block_size=8, layers=1, heads=1, hidden=8)), rows, None,
        1e-2),
    "gru": (lambda: CharRNN(RNNConfig(vocab=VOCAB, boundary="\n", embed=4, hidden=8)), rows,
            None, 1e-2),
    "ddpm": (lambda: DDPM(DiffusionConfig(shape=SHAPE, hidden=4, timesteps=10)), binary, None,
             1e-2),
    "latent": (lambda: LatentDiffusion(LatentDiffusionConfig(hidden=16, layers=1)),
               lambda: (torch.rand(64, 1, 28, 28, generator=g(0)) < 0.3).float(), None, 1e-2),
    "flow-conditional": (lambda: FlowMatching(DiffusionConfig(shape=SHAPE, hidden=4,
                                                              num_classes=3)),
                         lambda: (binary(), labels()), None, 1e-2),
}  # fmt: skip
LIKELIHOOD = {"vae", "cvae", "pixelcnn", "gated-conditional", "bernoulli", "mixture",
              "histogram", "transformer", "gru", "flow-conditional"}  # fmt: skip
CONDITIONAL = {"cvae", "cgan", "gated-conditional", "flow-conditional"}


def make(name):
    torch.manual_seed(0)
    maker, data, step, lr = FAMILIES[name]
    return maker(), data(), step, lr


def first(batch):
    return batch[0] if isinstance(batch, tuple) else batch


def y_of(batch):
    return batch[1] if isinstance(batch, tuple) else None


@pytest.mark.parametrize("name", FAMILIES)
def test_each_family_states_the_contract(name):
    model, *_ = make(name)
    assert isinstance(model, contract.Generative)
    assert isinstance(model, contract.Likelihood) == (name in LIKELIHOOD)
    assert dataclasses.is_dataclass(model.config)
    with pytest.raises(dataclasses.FrozenInstanceError):
        model.config.__setattr__(dataclasses.fields(model.config)[0].name, None)
    methods = ("sample", "log_prob") if name in LIKELIHOOD else ("sample",)
    for method in methods:
        params = inspect.signature(getattr(model, method)).parameters
        assert params["y"].kind is inspect.Parameter.KEYWORD_ONLY, f"{method}: y= keyword"
    assert inspect.signature(model.sample).parameters["generator"].kind is (
        inspect.Parameter.KEYWORD_ONLY
    )


@pytest.mark.parametrize("name", FAMILIES)
def test_loss_is_a_scalar_that_training_lowers(name):
    model, batch, step, lr = make(name)
    assert model.loss(batch)["loss"].dim() == 0
    with torch.no_grad():
        before = model.train().loss(batch)["loss"].item()
    kwargs = {"step": step} if step else {}
    train.fit(model, batch, steps=40, lr=lr, batch_size=64, progress=False, **kwargs)
    with torch.no_grad():
        after = model.train().loss(batch)["loss"].item()
    assert after < before, f"{name}: loss {before:.4g} -> {after:.4g}"


@pytest.mark.parametrize("name", FAMILIES)
def test_sample_gives_draws_in_the_data_layout_repeatable_for_a_seed(name):
    model, batch, *_ = make(name)
    x = first(batch)
    model.eval()
    kw = {"length": 6} if name in ("transformer", "gru") else {}
    a, b = model.sample(5, generator=g(1), **kw), model.sample(5, generator=g(1), **kw)
    c = model.sample(5, generator=g(2), **kw)
    assert torch.equal(a, b) and not torch.equal(a, c)
    if x.is_floating_point():
        assert a.shape == (5, *x.shape[1:]) and a.dtype == x.dtype
        assert 0 <= a.min() and a.max() <= 1
    else:  # character ids, -1 after a name's end
        assert a.dtype == torch.long and a.shape == (5, 6) and a.max() < len(VOCAB)


@pytest.mark.parametrize("name", sorted(LIKELIHOOD))
def test_log_prob_is_nats_per_example(name):
    model, batch, *_ = make(name)
    x, y = first(batch), y_of(batch)
    model.eval()
    with torch.no_grad():
        if name in ("vae", "cvae"):  # a bound: with k=1 it is the ELBO, the loss's -neg_elbo
            lp = torch.stack([model.log_prob(x, y=y, k=1, generator=g(s)) for s in range(50)])
            lp = lp.mean(0)
            expected = -model.loss(batch)["neg_elbo"]
            assert lp.mean().item() == pytest.approx(expected.item(), rel=0.03)
        elif name in ("transformer", "gru"):  # per row; the loss is per predicted character
            lp = model.log_prob(x, y=y)
            per_char = -model.loss(batch)["loss"].item()
            assert lp.sum().item() == pytest.approx(per_char * (x.shape[1] - 1) * len(x), rel=1e-5)
        elif name == "flow-conditional":  # a density on [0, 1]^D by the ODE, per example
            x, y = x[:3], y[:3]
            lp = model.log_prob(x, y=y, steps=2)
            assert torch.allclose(model.log_prob(x[:1], y=y[:1], steps=2), lp[:1], atol=1e-5)
            assert lp.shape == (len(x),) and torch.isfinite(lp).all()
            return
        else:  # exact: the loss is its mean negative
            lp = model.log_prob(x, y=y)
            assert lp.mean().item() == pytest.approx(-model.loss(batch)["loss"].item(), rel=1e-5)
    assert lp.shape == (len(x),) and torch.isfinite(lp).all()
    assert (lp < 0).all()  # a discrete distribution: probabilities below 1


@pytest.mark.parametrize("name", sorted(CONDITIONAL))
def test_the_class_label_is_always_y(name):
    model, batch, *_ = make(name)
    model.eval()
    a = model.sample(4, y=1, generator=g(0))
    b = model.sample(4, y=torch.ones(4, dtype=torch.long), generator=g(0))
    assert torch.equal(a, b)
    with pytest.raises(ValueError, match="expected y: 4 integer class labels in 0..2"):
        model.sample(4, y=torch.full((4,), 3), generator=g(0))


@pytest.mark.parametrize("name", sorted(set(FAMILIES) - CONDITIONAL))
def test_unconditional_families_refuse_labels(name):
    model, *_ = make(name)
    with pytest.raises(ValueError, match="unconditional"):
        model.sample(2, y=torch.zeros(2, dtype=torch.long))


def test_every_shipped_checkpoint_is_a_family_of_the_contract():
    for row in hub.list():
        if row["class"] == "genedu.metrics.Classifier":  # a measuring instrument, not a model
            continue
        model = hub.load(row["name"])
        assert isinstance(model, contract.Generative), row["name"]


def test_ngram_counts_instead_of_training_and_keeps_the_rest_of_the_contract():
    model = NGram(NGramConfig(vocab=VOCAB, boundary="\n", order=2)).count(rows())
    assert isinstance(model, contract.Likelihood)
    lp = model.log_prob(rows(4))
    assert lp.shape == (4,) and lp.mean().item() == pytest.approx(
        -model.loss(rows(4))["loss"].item() * 7, rel=1e-5
    )
    assert torch.equal(model.sample(3, generator=g(0), length=5),
                       model.sample(3, generator=g(0), length=5))  # fmt: skip
