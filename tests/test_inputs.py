"""Bad inputs get clear errors: genedu.inputs itself, then a sweep over every public
entry point of every family with each class of bad input.

Each case must raise TypeError or ValueError from genedu's own code (the innermost
frame of the traceback is in genedu/, not in torch), and its message must say what was
expected. The sweep's size is printed by `test_the_sweep_is_large`.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from genedu import gan, inputs, metrics, text
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
from genedu.metrics import Classifier, ClassifierConfig
from genedu.pixelcnn import GatedPixelCNN, PixelCNN, PixelCNNConfig
from genedu.stylegan import StyleGAN, StyleGANConfig
from genedu.text import CharTransformer, NGram, NGramConfig, TransformerConfig
from genedu.vae import VAE, VAEConfig

GENEDU = str(Path(inputs.__file__).parent)

# ----------------------------------------------------------------------- genedu.inputs


def test_images_accepts_what_it_should():
    inputs.images(torch.rand(2, 1, 4, 4), (1, 4, 4))
    inputs.images(torch.randint(0, 2, (2, 1, 4, 4)).float(), (1, 4, 4), values="binary")
    inputs.images(torch.randint(0, 256, (2, 3, 4, 4)).float() / 255, values="levels")
    inputs.images(torch.randn(5, 2) * 10, (2,), values="any")
    inputs.images(torch.rand(2, 1, 4, 4, dtype=torch.float64), (1, 4, 4), dtype=torch.float64)


@pytest.mark.parametrize(
    ("x", "kwargs", "error", "message"),
    [
        ([[0.5]], {}, TypeError, "expected a float32 tensor N×1×4×4 of values in [0, 1], got list"),
        (torch.zeros(2, 1, 4, 4, dtype=torch.uint8), {}, TypeError, "got a uint8 tensor"),
        (torch.zeros(2, 1, 4, 4, dtype=torch.int64), {}, TypeError, "got a int64 tensor"),
        (torch.zeros(2, 1, 4, 4, dtype=torch.float64), {}, TypeError, "use .to(torch.float32)"),
        (torch.zeros(2, 1, 5, 4), {}, ValueError, "got a float32 tensor of shape (2, 1, 5, 4)"),
        (torch.zeros(1, 4, 4), {}, ValueError, "of shape (1, 4, 4)"),
        (torch.zeros(0, 1, 4, 4), {}, ValueError, "got an empty batch"),
        (torch.full((2, 1, 4, 4), math.nan), {}, ValueError, "got NaN or inf"),
        (torch.full((2, 1, 4, 4), math.inf), {}, ValueError, "got NaN or inf"),
        (torch.full((2, 1, 4, 4), 2.0), {}, ValueError, "got values in [2, 2]"),
        (torch.full((2, 1, 4, 4), 0.5), {"values": "binary"}, ValueError, "got fractions"),
        (torch.full((2, 1, 4, 4), 0.3), {"values": "levels"}, ValueError, "k/255"),
    ],
)  # fmt: skip
def test_images_names_what_it_expected(x, kwargs, error, message):
    with pytest.raises(error) as info:
        inputs.images(x, (1, 4, 4), what="model.loss", **kwargs)
    assert str(info.value).startswith("model.loss: expected")
    assert message in str(info.value)


@pytest.mark.parametrize(
    ("value", "error"),
    [(-1, ValueError), (0, ValueError), (2.5, TypeError), (True, TypeError), ("3", TypeError),
     (None, TypeError), (torch.tensor(1.0), TypeError)],
)  # fmt: skip
def test_count_wants_a_whole_number(value, error):
    with pytest.raises(error, match=r"n: expected a whole number >= 1, got"):
        inputs.count(value, "n")
    assert inputs.count(3, "n") == 3 and inputs.count(torch.tensor(3), "n") == 3
    assert inputs.count(0, "n", minimum=0) == 0


@pytest.mark.parametrize(
    ("value", "error"),
    [(math.nan, ValueError), (math.inf, ValueError), (-0.1, ValueError), (1.5, ValueError),
     (0.0, ValueError), ("hot", TypeError), (True, TypeError), (None, TypeError)],
)  # fmt: skip
def test_number_wants_a_finite_number_in_its_range(value, error):
    with pytest.raises(error, match=r"top_p: expected a finite number in \(0, 1\], got"):
        inputs.number(value, "top_p", low=0, high=1, open_low=True)
    assert inputs.number(1, "top_p", low=0, high=1, open_low=True) == 1.0


@pytest.mark.parametrize(
    ("y", "k", "error", "message"),
    [
        (None, 10, ValueError, "class-conditional; expected y: 4 integer class labels in 0..9"),
        (torch.zeros(4), 10, TypeError, "got a float32 tensor"),
        (torch.zeros(4, dtype=torch.bool), 10, TypeError, "got a bool tensor"),
        (torch.zeros(3, dtype=torch.long), 10, ValueError, "of shape (3,)"),
        (torch.tensor([0, 1, 2, 10]), 10, ValueError, "got values in 0..10"),
        (torch.tensor([0, -1, 2, 3]), 10, ValueError, "got values in -1..3"),
        ([0, 1, 2, 3], 10, TypeError, "got list"),
        (2.0, 10, TypeError, "got float 2.0"),
        (torch.zeros(4, dtype=torch.long), 0, ValueError, "unconditional (num_classes=0)"),
    ],
)  # fmt: skip
def test_labels_name_what_they_expected(y, k, error, message):
    with pytest.raises(error) as info:
        inputs.labels(y, 4, k, what="VAE.loss")
    assert message in str(info.value)


def test_labels_come_back_as_int64_and_an_int_means_one_class_for_all():
    assert inputs.labels(None, 4, 0) is None
    assert inputs.labels(torch.tensor([1, 2], dtype=torch.int32), 2, 3).dtype == torch.int64
    assert inputs.labels(7, 3, 10).tolist() == [7, 7, 7]


def test_vectors():
    inputs.vectors(torch.zeros(2, 3), 3)
    for z, error in [(torch.zeros(2, 4), ValueError), (torch.zeros(2, 3).double(), TypeError),
                     (torch.zeros(0, 3), ValueError), (torch.full((2, 3), math.nan), ValueError),
                     ([[0.0] * 3], TypeError)]:  # fmt: skip
        with pytest.raises(error, match="z: expected"):
            inputs.vectors(z, 3)


# ------------------------------------------------------------------------------ the sweep

SHAPE = (1, 8, 8)


def _models() -> dict:
    torch.manual_seed(0)
    vocab = "\nabc"
    char = TransformerConfig(vocab=vocab, boundary="\n", block_size=8, layers=1, heads=1,
                             hidden=8)  # fmt: skip
    ngram = NGram(NGramConfig(vocab=vocab, boundary="\n", order=2))
    ngram.count(torch.tensor([[0, 1, 2, 3, 0]]))
    return {
        "vae": VAE(VAEConfig(shape=SHAPE, latent_dim=2, hidden=4)),
        "cvae": VAE(VAEConfig(shape=SHAPE, latent_dim=2, hidden=4, num_classes=3)),
        "gan": GAN(GANConfig(shape=SHAPE, latent_dim=4, hidden=4)),
        "cgan": GAN(GANConfig(shape=SHAPE, latent_dim=4, hidden=4, num_classes=3)),
        "points-gan": GAN(GANConfig(architecture="mlp", shape=(2,), latent_dim=2, hidden=8)),
        "stylegan": StyleGAN(StyleGANConfig(shape=(1, 8, 8), latent_dim=4, w_dim=4,
                                            hidden=4, mapping_layers=1, d_hidden=4)),
        "pixelcnn": PixelCNN(PixelCNNConfig(shape=SHAPE, hidden=4, layers=1, first_kernel=3)),
        "gated": GatedPixelCNN(PixelCNNConfig(shape=SHAPE, hidden=4, layers=1, first_kernel=3,
                                              likelihood="logistic", mixtures=1, num_classes=3)),
        "bernoulli": IndependentBernoulli(),
        "mixture": BernoulliMixture(MixtureConfig(components=2, shape=SHAPE)),
        "histogram": IndependentHistogram(HistogramConfig(shape=SHAPE)),
        "classifier": Classifier(ClassifierConfig(shape=SHAPE, hidden=4, features=4)),
        "char": CharTransformer(char),
        "ngram": ngram,
        "ddpm": DDPM(DiffusionConfig(shape=SHAPE, hidden=4, timesteps=5)),
        "flow": FlowMatching(DiffusionConfig(shape=SHAPE, hidden=4, num_classes=3)),
        "points-flow": FlowMatching(DiffusionConfig(shape=(2,), architecture="mlp", hidden=4)),
        "latent": LatentDiffusion(LatentDiffusionConfig(hidden=4, layers=1)),
    }  # fmt: skip


MODELS = _models()

# Each class of bad image, as the model's own layout would make it.
BAD_IMAGES = {
    "a list": lambda shape: [[0.0]],
    "uint8": lambda shape: torch.zeros(2, *shape, dtype=torch.uint8),
    "int64": lambda shape: torch.zeros(2, *shape, dtype=torch.int64),
    "float64": lambda shape: torch.zeros(2, *shape, dtype=torch.float64),
    "a wrong shape": lambda shape: torch.zeros(2, *shape[:-1], shape[-1] + 1),
    "no batch dimension": lambda shape: torch.zeros(*shape),
    "an empty batch": lambda shape: torch.zeros(0, *shape),
    "a NaN": lambda shape: torch.zeros(2, *shape).index_fill_(0, torch.tensor([1]), math.nan),
    "an inf": lambda shape: torch.zeros(2, *shape).index_fill_(0, torch.tensor([0]), math.inf),
    "values above 1": lambda shape: torch.full((2, *shape), 3.0),
    "negative values": lambda shape: torch.full((2, *shape), -1.0),
}
BINARY_ONLY = {"fractions": lambda shape: torch.full((2, *shape), 0.5)}
LEVELS_ONLY = {"off the 256-level grid": lambda shape: torch.full((2, *shape), 0.3)}
POINTS = {k: v for k, v in BAD_IMAGES.items() if k not in ("values above 1", "negative values")}


def _image_entry_points():
    """(name, the model's image layout, call(x), the bad-image classes it must refuse)."""
    m = MODELS
    unit, binary = dict(BAD_IMAGES), {**BAD_IMAGES, **BINARY_ONLY}
    levels = {**BAD_IMAGES, **LEVELS_ONLY}
    y3 = torch.zeros(2, dtype=torch.long)
    yield "VAE.loss", SHAPE, lambda x: m["vae"].loss(x), unit
    yield "VAE.elbo", SHAPE, lambda x: m["vae"].elbo(x), unit
    yield "VAE.encode", SHAPE, lambda x: m["vae"].encode(x), unit
    yield "VAE.log_prob", SHAPE, lambda x: m["vae"].log_prob(x, k=2), unit
    yield "cVAE.loss", SHAPE, lambda x: m["cvae"].loss((x, y3)), unit
    yield "GAN.loss", SHAPE, lambda x: m["gan"].loss(x), unit
    yield "gan.train_step", SHAPE, lambda x: gan.train_step(
        m["gan"], x, m["gan"].optimizers()), unit  # fmt: skip
    yield "cGAN.check_data", SHAPE, lambda x: m["cgan"].check_data(x, y3), unit
    yield "points GAN.loss", (2,), lambda x: m["points-gan"].loss(x), POINTS
    yield "StyleGAN.loss", SHAPE, lambda x: m["stylegan"].loss(x), unit
    yield "PixelCNN.loss", SHAPE, lambda x: m["pixelcnn"].loss(x), binary
    yield "PixelCNN.log_prob", SHAPE, lambda x: m["pixelcnn"].log_prob(x), binary
    yield "PixelCNN.forward", SHAPE, lambda x: m["pixelcnn"](x), binary
    yield "PixelCNN.complete", SHAPE, lambda x: m["pixelcnn"].complete(
        x, torch.ones(1, 1, 8, 8, dtype=torch.bool)), binary  # fmt: skip
    yield "GatedPixelCNN.log_prob", SHAPE, lambda x: m["gated"].log_prob(x), levels
    yield "GatedPixelCNN.loss", SHAPE, lambda x: m["gated"].loss((x, y3)), levels
    yield "IndependentBernoulli.log_prob", (1, 28, 28), lambda x: m["bernoulli"].log_prob(x), binary
    yield "BernoulliMixture.log_prob", SHAPE, lambda x: m["mixture"].log_prob(x), binary
    yield "BernoulliMixture.responsibilities", SHAPE, lambda x: m["mixture"].responsibilities(
        x), binary  # fmt: skip
    yield "IndependentHistogram.log_prob", SHAPE, lambda x: m["histogram"].log_prob(x), levels
    yield "Classifier.forward", SHAPE, lambda x: m["classifier"](x), unit
    yield "Classifier.predict", SHAPE, lambda x: m["classifier"].predict(x), unit
    yield "DDPM.loss", SHAPE, lambda x: m["ddpm"].loss(x), unit
    yield "FlowMatching.loss", SHAPE, lambda x: m["flow"].loss((x, y3)), unit
    yield "FlowMatching.log_prob", SHAPE, lambda x: m["flow"].log_prob(x, y=y3, steps=1), unit
    yield "points FlowMatching.log_prob", (2,), lambda x: m["points-flow"].log_prob(x), POINTS
    yield "LatentDiffusion.loss", (1, 28, 28), lambda x: m["latent"].loss(x), unit
    no_uint8 = {k: v for k, v in unit.items() if k != "uint8"}  # it reads uint8 images too
    yield "metrics.extract_features", SHAPE, lambda x: metrics.extract_features(
        x, m["classifier"]), no_uint8  # fmt: skip


def _counts():
    """(name, call(n)) for every argument that must be a whole number >= 1."""
    m, g = MODELS, torch.Generator().manual_seed(0)
    x = torch.zeros(2, *SHAPE)
    yield "VAE.sample n", lambda n: m["vae"].sample(n)
    yield "VAE.log_prob k", lambda k: m["vae"].log_prob(x, k=k)
    yield "GAN.sample n", lambda n: m["gan"].sample(n)
    yield "GAN.noise n", lambda n: m["gan"].noise(n)
    yield "StyleGAN.sample n", lambda n: m["stylegan"].sample(n)
    yield "PixelCNN.sample n", lambda n: m["pixelcnn"].sample(n)
    yield "IndependentBernoulli.sample n", lambda n: m["bernoulli"].sample(n)
    yield "BernoulliMixture.sample n", lambda n: m["mixture"].sample(n)
    yield "IndependentHistogram.sample n", lambda n: m["histogram"].sample(n)
    yield "CharModel.sample n", lambda n: m["char"].sample(n, length=2)
    yield "CharModel.sample length", lambda n: m["char"].sample(1, length=n)
    yield "text.generate num_samples", lambda n: text.generate(m["char"], "", 2, num_samples=n)
    yield "text.generate top_k", lambda k: text.generate(m["char"], "", 2, top_k=k, generator=g)
    yield "ngram generate top_k", lambda k: text.generate(m["ngram"], "a", 2, top_k=k)
    yield "LatentDiffusion.sample steps", lambda s: m["latent"].sample(1, steps=s)
    yield "DDPM.sample n", lambda n: m["ddpm"].sample(n)
    yield "DDPM.sample steps", lambda s: m["ddpm"].sample(1, steps=s, sampler="ddim")
    yield "FlowMatching.sample n", lambda n: m["flow"].sample(n, steps=1)
    yield "FlowMatching.sample steps", lambda s: m["flow"].sample(1, steps=s)
    yield "FlowMatching.log_prob steps", lambda s: m["points-flow"].log_prob(
        torch.zeros(1, 2), steps=s)  # fmt: skip


BAD_COUNTS = {"negative": -1, "zero": 0, "fractional": 2.5, "a bool": True, "a string": "3"}


def _numbers():
    """(name, call(v), the bad values it must refuse)."""
    m = MODELS
    z = torch.zeros(2, 4)
    common = {"NaN": math.nan, "inf": math.inf, "a string": "hot", "a bool": True}
    negative = {**common, "negative": -0.5}
    yield "VAE.sample temperature", lambda t: m["vae"].sample(2, temperature=t), negative
    yield "text.generate temperature", lambda t: text.generate(
        m["char"], "", 2, temperature=t), negative  # fmt: skip
    yield "text.generate top_p", lambda p: text.generate(m["char"], "", 2, top_p=p), {
        **common, "zero": 0.0, "above 1": 1.5}  # fmt: skip
    yield "StyleGAN.generate psi", lambda p: m["stylegan"].generate(z, psi=p), {
        **common, "negative": -0.1, "above 1": 1.1}  # fmt: skip
    yield "FlowMatching.sample guidance", lambda w: m["flow"].sample(2, steps=1, guidance=w), common
    yield "DDPM.sample eta", lambda e: m["ddpm"].sample(1, steps=2, sampler="ddim", eta=e), {
        **common, "negative": -0.5, "above 1": 1.5}  # fmt: skip


def _labels():
    """(name, call(y), the bad labels it must refuse)."""
    m = MODELS
    x = torch.zeros(2, *SHAPE)
    bad = {
        "float labels": torch.zeros(2),
        "out of range": torch.tensor([0, 3]),
        "negative": torch.tensor([-1, 0]),
        "the wrong length": torch.zeros(3, dtype=torch.long),
        "a list": [0, 1],
        "missing": None,
    }
    yield "cVAE.loss y", lambda y: m["cvae"].loss((x, y)), bad
    yield "cVAE.sample y", lambda y: m["cvae"].sample(2, y=y), {
        k: v for k, v in bad.items() if k != "missing"}  # fmt: skip
    yield "cGAN.generate y", lambda y: m["cgan"].generate(torch.zeros(2, 4), y), bad
    yield "cGAN.sample y", lambda y: m["cgan"].sample(2, y=y), {
        k: v for k, v in bad.items() if k != "missing"}  # fmt: skip
    yield "GatedPixelCNN.sample y", lambda y: m["gated"].sample(2, y=y), {
        k: v for k, v in bad.items() if k != "missing"}  # fmt: skip
    unconditional = {"labels for an unconditional model": torch.zeros(2, dtype=torch.long)}
    yield "VAE.sample y", lambda y: m["vae"].sample(2, y=y), unconditional
    yield "GAN.sample y", lambda y: m["gan"].sample(2, y=y), unconditional
    yield "StyleGAN.sample y", lambda y: m["stylegan"].sample(2, y=y), unconditional
    yield "PixelCNN.sample y", lambda y: m["pixelcnn"].sample(2, y=y), unconditional
    yield "DDPM.sample y", lambda y: m["ddpm"].sample(2, y=y), unconditional
    yield "FlowMatching.sample y", lambda y: m["flow"].sample(2, y=y, steps=1), {
        k: v for k, v in bad.items() if k != "missing"}  # fmt: skip
    yield "FlowMatching.loss y", lambda y: m["flow"].loss((x, y)), bad


def _latents():
    """(name, latent size, call(z))."""
    m = MODELS
    yield "VAE.decode", 2, lambda z: m["vae"].decode(z)
    yield "GAN.generate", 4, lambda z: m["gan"].generate(z)
    yield "StyleGAN.generate", 4, lambda z: m["stylegan"].generate(z)
    yield "StyleGAN.mix", 4, lambda z: m["stylegan"].mix(z, z, 1)


BAD_LATENTS = {
    "a wrong width": lambda d: torch.zeros(2, d + 1),
    "one dimension": lambda d: torch.zeros(d),
    "float64": lambda d: torch.zeros(2, d, dtype=torch.float64),
    "integers": lambda d: torch.zeros(2, d, dtype=torch.long),
    "a NaN": lambda d: torch.full((2, d), math.nan),
    "an empty batch": lambda d: torch.zeros(0, d),
}


def _text_rows():
    m = MODELS
    bad = {
        "a list": [[0, 1]],
        "floats": torch.zeros(2, 4),
        "int32": torch.zeros(2, 4, dtype=torch.int32),
        "one dimension": torch.zeros(4, dtype=torch.long),
        "an empty batch": torch.zeros(0, 4, dtype=torch.long),
        "ids past the vocabulary": torch.full((2, 4), 9),
        "one id per row": torch.zeros(2, 1, dtype=torch.long),
    }
    for name in ("char", "ngram"):
        yield f"{name} loss", lambda r, name=name: m[name].loss(r), bad
        yield f"{name} log_prob", lambda r, name=name: m[name].log_prob(r), bad


def _cases():
    cases = []
    for name, shape, call, bad in _image_entry_points():
        cases += [(f"{name}: {k}", call, make(shape)) for k, make in bad.items()]
    for name, call in _counts():
        cases += [(f"{name}: {k}", call, v) for k, v in BAD_COUNTS.items()]
    for name, call, bad in (*_numbers(), *_labels(), *_text_rows()):
        cases += [(f"{name}: {k}", call, v) for k, v in bad.items()]
    for name, dim, call in _latents():
        cases += [(f"{name}: {k}", call, make(dim)) for k, make in BAD_LATENTS.items()]
    cases += [("text.generate prompt: an int", lambda p: text.generate(MODELS["char"], p, 2), 3)]
    return cases


CASES = _cases()


@pytest.mark.parametrize(("name", "call", "bad"), CASES, ids=[c[0] for c in CASES])
def test_every_entry_point_refuses_each_bad_input_clearly(name, call, bad):
    with pytest.raises((TypeError, ValueError)) as info:
        call(bad)
    innermost = str(info.traceback[-1].path)
    assert innermost.startswith(GENEDU), f"{name}: raised inside {innermost}: {info.value}"
    assert "expect" in str(info.value) or "pass no" in str(info.value), str(info.value)


def test_the_sweep_is_large():
    print(f"\nbad-input sweep: {len(CASES)} cases over {len(MODELS)} models")
    assert len(CASES) >= 300
