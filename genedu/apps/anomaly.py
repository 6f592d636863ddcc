r"""Anomaly detection with generative models: score each image, flag the high scores.

References: An & Cho 2015 ("Variational autoencoder based anomaly detection using
reconstruction probability": a VAE's likelihood as the score); Nalisnick et al. 2019
("Do deep generative models know what they don't know?": a model of Fashion-MNIST gives
MNIST a *higher* likelihood); Serrà et al. 2020 ("Input complexity and
out-of-distribution detection with likelihood-based generative models": subtract what
a real compressor needs, eq. 2); Ren et al. 2019 ("Likelihood ratios for
out-of-distribution detection": subtract a background model trained on mutated inputs,
eq. 5).

A score is a tensor (N,) where *higher means more anomalous*; `genedu.metrics.auroc`
then says how well it separates. Likelihood scores are $-\log p(x)$ in nats. Serrà's
corrected score, in bits, is

$$S(x) = -\log_2 p(x) - L(x),$$

where $L(x)$ is the length of $x$ compressed by PNG: a simple image (mostly black) is
likely under *any* model, and the correction asks how much better the model does than
a generic compressor.

Two experiments: `one_class` (train on one MNIST digit, the other nine are anomalies)
and `ood_fashion_mnist` (train on Fashion-MNIST, MNIST is out of distribution).
"""

from __future__ import annotations

import io
import math
import time
import zlib
from dataclasses import dataclass, field

import numpy as np
import torch
from PIL import Image

from .. import data, metrics, train
from ..pixelcnn import GatedPixelCNN, PixelCNNConfig
from ..vae import VAE, VAEConfig

METHODS = ("vae", "pixelcnn", "pca")
COMPRESSORS = ("png", "zlib")


# ------------------------------------------------------------------------------ checks
def _as_uint8(x: torch.Tensor, what: str) -> torch.Tensor:
    """Grey images (N, 1, H, W), uint8 or float in [0, 1], as uint8."""
    if not isinstance(x, torch.Tensor) or x.dim() != 4 or x.shape[1] != 1:
        got = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"{what}: expected grey images of shape (N, 1, H, W), got {got}")
    if x.dtype == torch.uint8:
        return x
    if not x.is_floating_point() or (x.numel() and (x.min() < 0 or x.max() > 1)):
        raise ValueError(f"{what}: expected uint8 images or floats in [0, 1], got {x.dtype}")
    return (x * 255).round().to(torch.uint8)


def _as_rows(x: torch.Tensor, what: str) -> torch.Tensor:
    """Images (N, ...) or vectors (N, D), uint8 or float, as float64 rows (N, D)."""
    if not isinstance(x, torch.Tensor) or x.dim() < 2 or len(x) == 0:
        got = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"{what}: expected a non-empty tensor (N, ...) of images, got {got}")
    x = x.double() / 255 if x.dtype == torch.uint8 else x.double()
    return x.flatten(1)


# ------------------------------------------------------------------------------ scores
@torch.no_grad()
def vae_score(
    model: VAE,
    x: torch.Tensor,
    *,
    samples: int = 4,
    generator: torch.Generator | None = None,
    batch_size: int = 500,
) -> torch.Tensor:
    """-ELBO per image (N,), in nats, averaged over `samples` draws of z (An & Cho 2015).

    x: images (N, C, H, W) as the VAE takes them (binary for a Bernoulli decoder). Without
    a generator the draws come from seed 0, so the scores repeat exactly.
    """
    if samples < 1:
        raise ValueError(f"vae_score: samples must be >= 1, got {samples}")
    g = generator or torch.Generator().manual_seed(0)
    model.eval()
    return torch.cat(
        [torch.stack([-model.elbo(b, generator=g) for _ in range(samples)]).mean(0)
         for b in x.split(batch_size)]
    )  # fmt: skip


@torch.no_grad()
def pixelcnn_score(model: GatedPixelCNN, x: torch.Tensor, *, batch_size: int = 500) -> torch.Tensor:
    """-log p(x) per image (N,), in nats: exact, by the chain rule over pixels."""
    model.eval()
    return torch.cat([-model.log_prob(b) for b in x.split(batch_size)])


def pca_score(train: torch.Tensor, test: torch.Tensor, components: int) -> torch.Tensor:
    r"""Squared reconstruction error (N_test,) of each test image from the top `components`
    principal directions V of the training images: $\|r - V V^\top r\|^2$ with
    $r = x - \bar x$, in squared [0, 1] grey levels. The baseline with no network."""
    a, b = _as_rows(train, "pca_score train"), _as_rows(test, "pca_score test")
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"pca_score: train has {a.shape[1]} dims per image, test {b.shape[1]}")
    if not 1 <= components <= min(a.shape):
        raise ValueError(f"pca_score: components must be in 1..{min(a.shape)}, got {components}")
    mean = a.mean(0)
    # NumPy's eigh: torch's stalls for seconds on some multi-threaded CPU builds
    vecs = torch.from_numpy(np.linalg.eigh(((a - mean).T @ (a - mean)).numpy())[1])
    v = vecs[:, -components:]  # (D, components): the principal directions
    r = b - mean
    return (r - r @ v @ v.T).pow(2).sum(1)


def knn_score(train: torch.Tensor, test: torch.Tensor, k: int = 1) -> torch.Tensor:
    """Euclidean distance (N_test,) from each test image to its k-th nearest training image."""
    a, b = _as_rows(train, "knn_score train"), _as_rows(test, "knn_score test")
    if a.shape[1] != b.shape[1] or not 1 <= k <= len(a):
        raise ValueError(f"knn_score: need equal dims and k in 1..{len(a)}, got k={k}")
    return torch.cat([torch.cdist(c, a).kthvalue(k, 1).values for c in b.split(1000)])


def input_complexity(x: torch.Tensor, compressor: str = "png") -> torch.Tensor:
    """L(x): bits (N,) that a real lossless compressor needs for each 8-bit image.

    x: grey images (N, 1, H, W), uint8 or float in [0, 1] (rounded to 256 levels).
    compressor: "png" (Pillow at level 9, what Serrà et al. 2020 use) or "zlib" (level 9
    on the raw bytes). Either includes its fixed headers, a constant that shifts every
    score alike. An image stored raw takes 8·H·W bits.
    """
    if compressor not in COMPRESSORS:
        raise ValueError(f"compressor must be one of {COMPRESSORS}, got {compressor!r}")
    images = _as_uint8(x, "input_complexity")[:, 0].numpy()
    bits = []
    for image in images:
        if compressor == "zlib":
            bits.append(8 * len(zlib.compress(image.tobytes(), 9)))
            continue
        buffer = io.BytesIO()
        Image.fromarray(image).save(buffer, format="PNG", compress_level=9)
        bits.append(8 * buffer.tell())
    return torch.tensor(bits, dtype=torch.float64)


def complexity_corrected_score(
    neg_log_p_nats: torch.Tensor, complexity_bits: torch.Tensor
) -> torch.Tensor:
    """S(x) = -log2 p(x) - L(x) per image (N,), in bits (Serrà et al. 2020, eq. 2).

    neg_log_p_nats: -log p(x) in nats (N,); complexity_bits: `input_complexity(x)` (N,).
    """
    a, b = torch.as_tensor(neg_log_p_nats), torch.as_tensor(complexity_bits)
    if a.dim() != 1 or a.shape != b.shape:
        raise ValueError(
            f"expected two 1-D tensors of the same length, got {tuple(a.shape)} and "
            f"{tuple(b.shape)}"
        )
    return a.double() / math.log(2) - b.double()


def mutate(
    images: torch.Tensor, rate: float, *, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Replace each pixel of uint8 images with a uniform random level with probability
    `rate`: the background model's training data (Ren et al. 2019, section 3)."""
    data.check_images(images, "mutate")
    if not 0 <= rate <= 1:
        raise ValueError(f"mutate: rate must be in [0, 1], got {rate}")
    flip = torch.rand(images.shape, generator=generator) < rate
    noise = torch.randint(0, 256, images.shape, generator=generator, dtype=torch.uint8)
    return torch.where(flip, noise, images)


# ------------------------------------------------------------------------- the models
def _fit(model, images: torch.Tensor, transform, *, steps: int, seed: int, lr: float,
         batch_size: int, progress: bool) -> float:  # fmt: skip
    """Train with genedu.train.fit; returns the training seconds."""
    history = train.fit(model, images, steps=steps, lr=lr, batch_size=batch_size, seed=seed,
                        transform=transform, progress=progress)  # fmt: skip
    return history.seconds[-1] if history.seconds else 0.0


def vae_config() -> VAEConfig:
    """The conv VAE of `one_class`: binarised 28×28 digits, a Bernoulli decoder. At 500
    steps a 4-d code (the benchmark's) and the default 32-d one gave the same mean AUROC
    over the ten digits (0.894 and 0.896): better on 2 and 3, worse on 0, 6, 7 and 9."""
    return VAEConfig(latent_dim=4, hidden=32)


def binary_pixelcnn_config() -> PixelCNNConfig:
    """The small gated PixelCNN of `one_class`: binarised 28×28 digits."""
    return PixelCNNConfig(hidden=16, layers=4, likelihood="bernoulli")


def grey_pixelcnn_config(shape: tuple[int, int, int] = (1, 28, 28)) -> PixelCNNConfig:
    """The gated PixelCNN of `ood`: 256 grey levels, a logistic mixture."""
    return PixelCNNConfig(shape=shape, hidden=16, layers=4, likelihood="logistic", mixtures=3)


@dataclass(frozen=True)
class OneClassResult:
    """One digit's experiment: the test scores, which are anomalies, and the AUROC."""

    digit: int
    method: str
    auroc: float
    scores: torch.Tensor = field(repr=False)  # (N,), higher = more anomalous
    labels: torch.Tensor = field(repr=False)  # (N,) the test digits
    train_seconds: float = 0.0
    train_images: int = 0
    # vae / pixelcnn: Serrà's S(x) = score in bits - PNG bits of the scored (binarised)
    # image, and its AUROC; None for pca, which has no likelihood to correct.
    corrected_scores: torch.Tensor | None = field(default=None, repr=False)
    corrected_auroc: float | None = None

    @property
    def is_anomaly(self) -> torch.Tensor:
        """(N,) bool: every test digit but the trained one."""
        return self.labels != self.digit


def one_class(
    digit: int,
    *,
    method: str = "vae",
    steps: int = 1000,
    seed: int = 0,
    train_size: int | None = None,
    test_size: int | None = None,
    components: int = 10,
    config: VAEConfig | PixelCNNConfig | None = None,
    batch_size: int = 64,
    progress: bool = False,
    train_set: data.ImageSet | None = None,
    test_set: data.ImageSet | None = None,
    model: VAE | GatedPixelCNN | None = None,
) -> OneClassResult:
    """Train on the MNIST training images of one digit, score the MNIST test set.

    method: "vae" (conv VAE, Bernoulli, score -ELBO), "pixelcnn" (small gated PixelCNN on
    binarised digits, score -log p) or "pca" (reconstruction error from `components`
    directions). config: the model's (default `vae_config()` or `binary_pixelcnn_config()`).
    Binarised models train on fresh draws and score one seeded draw.
    train_size / test_size: use only the first so many images (None: all of them).
    train_set / test_set: labelled digits to use instead of loading MNIST (loaded once,
    they serve all ten digits).
    model: a trained VAE ("vae") or GatedPixelCNN ("pixelcnn"), e.g. the shipped
    `hub.load("vae-mnist-8")`, to score instead of training one: steps, config and the
    training images are then unused, and train_seconds and train_images are 0.
    Returns a OneClassResult; its auroc treats the other nine digits as positives. For
    the two likelihood models it also holds the complexity-corrected score (Serrà et al.
    2020, as `ood` uses it): -ELBO or -log p in bits minus the PNG length of the same
    binarised test image, and that score's AUROC.
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    if not (isinstance(digit, int) and 0 <= digit <= 9):
        raise ValueError(f"digit must be an int in 0..9, got {digit!r}")
    wanted = {"vae": VAE, "pixelcnn": GatedPixelCNN}.get(method)
    if model is not None and (wanted is None or not isinstance(model, wanted)):
        raise ValueError(f"one_class: method {method!r} cannot score a {type(model).__name__}")
    test_set = test_set or data.load("mnist", "test", fallback="mnist5k")
    test, labels = test_set.images[:test_size], test_set.labels[:test_size]
    images = test[:0]  # no training images when a trained model is given
    if model is None:
        train_set = train_set or data.load("mnist", "train", fallback="mnist5k")
        images = train_set.images[train_set.labels == digit][:train_size]
    train.seed_everything(seed)
    start, seconds = time.perf_counter(), 0.0
    if method == "pca":
        scores = pca_score(images, test, components)
        seconds = time.perf_counter() - start
    else:
        x = data.binarize(test, generator=torch.Generator().manual_seed(seed))
        if method == "vae":
            if model is None:
                model = VAE(config or vae_config())
                seconds = _fit(model, images, data.binarize, steps=steps, seed=seed, lr=1e-3,
                               batch_size=batch_size, progress=progress)  # fmt: skip
            scores = vae_score(model, x, generator=torch.Generator().manual_seed(seed))
        else:
            if model is None:
                model = GatedPixelCNN(config or binary_pixelcnn_config())
                seconds = _fit(model, images, data.binarize, steps=steps, seed=seed, lr=2e-3,
                               batch_size=batch_size, progress=progress)  # fmt: skip
            scores = pixelcnn_score(model, x)
    value = metrics.auroc(scores, labels != digit)
    corrected = corrected_value = None
    if method != "pca":
        corrected = complexity_corrected_score(scores, input_complexity(x))
        corrected_value = metrics.auroc(corrected, labels != digit)
    return OneClassResult(digit, method, value, scores, labels, seconds, len(images),
                          corrected, corrected_value)  # fmt: skip


@dataclass(frozen=True)
class OODResult:
    """Fashion-MNIST test (in) against MNIST test (out): every score and its AUROC."""

    neg_log_p: dict[str, torch.Tensor] = field(repr=False)  # "in"/"out": (N,) nats
    complexity: dict[str, torch.Tensor] = field(repr=False)  # "in"/"out": (N,) PNG bits
    scores: dict[str, dict[str, torch.Tensor]] = field(repr=False)  # score -> in/out
    aurocs: dict[str, float] = field(default_factory=dict)  # score -> AUROC (MNIST positive)
    train_seconds: dict[str, float] = field(default_factory=dict)  # model -> seconds


def ood_scores(
    model: GatedPixelCNN, in_images: torch.Tensor, out_images: torch.Tensor
) -> OODResult:
    """Score `in_images` and `out_images` (uint8 (N, 1, H, W)) with a trained grey-level
    PixelCNN, e.g. the shipped `hub.load("pixelcnn-fashion-mnist")`: "likelihood" (-log p,
    nats), "complexity" (PNG bits alone) and "corrected" (Serrà et al. 2020), each with its
    AUROC (out = positive). train_seconds is empty: nothing is trained here."""
    for name, images in (("in", in_images), ("out", out_images)):
        data.check_images(images, f"ood_scores {name}_images")
    x = {"in": data.to_unit(in_images), "out": data.to_unit(out_images)}
    nlp = {k: pixelcnn_score(model, v) for k, v in x.items()}
    bits = {k: input_complexity(v) for k, v in x.items()}
    scores = {
        "likelihood": nlp,
        "complexity": bits,
        "corrected": {k: complexity_corrected_score(nlp[k], bits[k]) for k in x},
    }
    return OODResult(nlp, bits, scores, _aurocs(scores), {})


def _aurocs(scores: dict[str, dict[str, torch.Tensor]]) -> dict[str, float]:
    """Each score's AUROC, with the "out" images as the positives."""
    aurocs = {}
    for name, s in scores.items():
        is_out = torch.cat([torch.zeros(len(s["in"])), torch.ones(len(s["out"]))]).bool()
        aurocs[name] = metrics.auroc(torch.cat([s["in"], s["out"]]), is_out)
    return aurocs


def ood(
    train_images: torch.Tensor,
    in_images: torch.Tensor,
    out_images: torch.Tensor,
    *,
    steps: int = 2000,
    seed: int = 0,
    background_steps: int = 0,
    mutation_rate: float = 0.2,
    config: PixelCNNConfig | None = None,
    batch_size: int = 32,
    progress: bool = False,
) -> OODResult:
    """Train a gated PixelCNN on 8-bit grey `train_images` (uint8 (N, 1, H, W)), then score
    `in_images` (held out, same distribution) and `out_images` (another data set).

    Scores, each with its AUROC (out = positive): "likelihood" (-log p, nats; Nalisnick
    et al. 2019 found it backwards), "complexity" (PNG bits alone), "corrected" (Serrà
    et al. 2020) and, when background_steps > 0, "likelihood_ratio" (Ren et al. 2019: a
    second model trained on images mutated at `mutation_rate`; score -log p(x) + log
    p_background(x)).
    """
    for name, images in (("train", train_images), ("in", in_images), ("out", out_images)):
        data.check_images(images, f"ood {name}_images")
    if steps < 1 or background_steps < 0:
        raise ValueError(f"steps must be >= 1, background_steps >= 0: {steps}, {background_steps}")
    config = config or grey_pixelcnn_config(tuple(train_images.shape[1:]))
    train.seed_everything(seed)
    model, seconds = GatedPixelCNN(config), {}
    seconds["model"] = _fit(model, train_images, None, steps=steps, seed=seed, lr=2e-3,
                            batch_size=batch_size, progress=progress)  # fmt: skip
    result = ood_scores(model, in_images, out_images)
    scores, nlp = result.scores, result.neg_log_p
    if background_steps:
        train.seed_everything(seed + 1)
        background = GatedPixelCNN(config)

        def mutated(batch, generator):
            return data.to_unit(mutate(batch, mutation_rate, generator=generator))

        seconds["background"] = _fit(background, train_images, mutated, steps=background_steps,
                                     seed=seed + 1, lr=2e-3, batch_size=batch_size,
                                     progress=progress)  # fmt: skip
        x = {"in": data.to_unit(in_images), "out": data.to_unit(out_images)}
        nlp_background = {k: pixelcnn_score(background, v) for k, v in x.items()}
        scores["likelihood_ratio"] = {
            k: likelihood_ratio_score(nlp[k], nlp_background[k]) for k in x
        }
    return OODResult(nlp, result.complexity, scores, _aurocs(scores), seconds)


def likelihood_ratio_score(neg_log_p: torch.Tensor, neg_log_p_background: torch.Tensor):
    r"""Ren et al. 2019's score, higher for more anomalous: $-\log p(x) + \log
    p_{\text{background}}(x)$. What both models explain equally well (the background
    statistics a mutated-data model also learns) cancels; what only the in-distribution
    model explains lowers the score."""
    return neg_log_p - neg_log_p_background


def ood_images(
    train_size: int | None = None, test_size: int | None = None
) -> dict[str, torch.Tensor]:
    """uint8 grey 28×28 images {"train", "in", "out"} for `ood`: Fashion-MNIST train and
    test, and MNIST test; the first train_size / test_size of each (None: all).

    Offline, genedu ships Fashion-MNIST's test set but not its training set: "train" and
    "in" then fall back (after one printed line) to a split of the test set, the last
    8,000 images to train on and the first 2,000 to test. Without Fashion-MNIST at all,
    they fall back to grey 28×28 crops of the bundled natural-image patches: also more
    complex than digits, so the lesson holds. MNIST itself falls back to mnist5k.
    """
    try:
        in_set = data.load("fashion-mnist", "test").images
        try:
            train_set = data.load("fashion-mnist", "train").images
        except data.DataError as err:
            if isinstance(err, data.CorruptFileError):
                raise
            print(f"genedu: the fashion-mnist training images are not available "
                  f"({err.reason}); training on the last {len(in_set) - 2000:,} of its "
                  f"{len(in_set):,} test images instead, testing on the first 2,000.")  # fmt: skip
            train_set, in_set = in_set[2000:], in_set[:2000]
    except data.DataError as err:
        if isinstance(err, data.CorruptFileError):
            raise
        print(f"genedu: fashion-mnist is not available ({err.reason}); using grey crops of "
              "the bundled natural-image patches instead.")  # fmt: skip
        grey = lambda x: x.float().mean(1, keepdim=True)[..., 2:30, 2:30].round().byte()  # noqa: E731
        train_set, in_set = (grey(data.load("patches", s).images) for s in ("train", "test"))
    out_set = data.load("mnist", "test", fallback="mnist5k").images
    return {"train": train_set[:train_size], "in": in_set[:test_size], "out": out_set[:test_size]}


def ood_fashion_mnist(
    *, train_size: int | None = None, test_size: int | None = None, **kwargs
) -> OODResult:
    """`ood` on `ood_images(train_size, test_size)`: trained on Fashion-MNIST, its test set
    "in" and MNIST's "out". kwargs: those of `ood` (steps, seed, background_steps, ...)."""
    images = ood_images(train_size, test_size)
    return ood(images["train"], images["in"], images["out"], **kwargs)
