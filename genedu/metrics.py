r"""Numbers that say whether a generative model is good.

Likelihoods are in nats per example unless a name says otherwise. Bits per dimension
divide by the number of dimensions and by $\ln 2$, so that images of any size compare:
$\mathrm{bpd} = \mathrm{NLL}_{\text{nats}} / (D \ln 2)$.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from . import inputs


def bits_per_dim(nll_nats: torch.Tensor | float, dims: int) -> torch.Tensor | float:
    """Negative log-likelihood in nats per example -> bits per dimension."""
    if dims < 1:
        raise ValueError(f"dims must be a positive number of dimensions, got {dims}")
    return nll_nats / (dims * math.log(2))


@torch.no_grad()
def mean_nll(log_prob, x: torch.Tensor, batch_size: int = 1000) -> float:
    """Mean negative log-likelihood in nats per example of `log_prob` over `x`, batched."""
    total = sum(-log_prob(x[i : i + batch_size]).sum().item() for i in range(0, len(x), batch_size))
    return total / len(x)


# ------------------------------------------------------------ the course's feature network


@dataclass(frozen=True)
class ClassifierConfig:
    """A small CNN classifier; its penultimate layer is the feature space of `fid`."""

    shape: tuple[int, int, int] = (1, 28, 28)
    num_classes: int = 10
    hidden: int = 32  # channels of the first conv block (the second has 2x)
    features: int = 128  # width of the penultimate layer: FID's feature dimension
    dropout: float = 0.3

    def __post_init__(self):
        if len(self.shape) != 3 or self.shape[0] not in (1, 3) or min(self.shape[1:]) < 8:
            raise ValueError(f"shape must be (C, H, W) with C = 1 or 3 and H, W >= 8: {self.shape}")
        if self.num_classes < 2 or self.hidden < 1 or self.features < 1:
            raise ValueError(f"num_classes >= 2, hidden and features >= 1: {self}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")


class Classifier(nn.Module):
    """conv-conv-pool, conv-conv-pool, a 128-unit layer (the features), then the classes.

    Images in [0, 1], (N, C, H, W) -> logits (N, num_classes). `features(x)` returns the
    penultimate activations (N, features) that FID and precision/recall compare.
    """

    def __init__(self, config: ClassifierConfig):
        super().__init__()
        self.config = config
        c, h = config.shape[0], config.hidden

        def block(cin: int, cout: int) -> list[nn.Module]:
            return [
                nn.Conv2d(cin, cout, 3, padding=1),
                nn.BatchNorm2d(cout),
                nn.ReLU(),
                nn.Conv2d(cout, cout, 3, padding=1),
                nn.BatchNorm2d(cout),
                nn.ReLU(),
                nn.MaxPool2d(2),
            ]

        side = (config.shape[1] // 4) * (config.shape[2] // 4)
        self.body = nn.Sequential(
            *block(c, h),  # (N, h, H/2, W/2)
            *block(h, 2 * h),  # (N, 2h, H/4, W/4)
            nn.Flatten(),
            nn.Dropout(config.dropout),
            nn.Linear(2 * h * side, config.features),
            nn.ReLU(),
        )
        self.head = nn.Sequential(
            nn.Dropout(config.dropout), nn.Linear(config.features, config.num_classes)
        )

    def _check(self, x: torch.Tensor) -> None:
        inputs.images(x, self.config.shape, what="Classifier", dtype=self.head[-1].weight.dtype)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate activations, (N, features)."""
        self._check(x)
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))

    def loss(self, batch: tuple[torch.Tensor, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Cross-entropy of a batch (images, labels), with its accuracy for the log."""
        x, y = batch
        logits = self(x)
        return {
            "loss": F.cross_entropy(logits, y),
            "accuracy": (logits.argmax(1) == y).float().mean(),
        }

    @torch.no_grad()
    def predict(self, x: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
        """Predicted classes (N,), in eval mode and batches."""
        check_unit_images(x, "Classifier.predict")
        was = self.training
        self.eval()
        out = torch.cat(
            [self(x[i : i + batch_size]).argmax(1) for i in range(0, len(x), batch_size)]
        )
        self.train(was)
        return out


def random_affine(x: torch.Tensor, *, generator: torch.Generator | None = None) -> torch.Tensor:
    """Small random rotations (±10°), scalings (±10%) and shifts (±2 px) of a batch in [0, 1]."""
    n = len(x)
    u = lambda lo, hi: lo + (hi - lo) * torch.rand(n, generator=generator)
    angle, scale = u(-10, 10) * math.pi / 180, u(0.9, 1.1)
    shift = u(-2, 2), u(-2, 2)
    cos, sin = angle.cos() / scale, angle.sin() / scale
    theta = torch.stack(
        [
            torch.stack([cos, -sin, shift[0] * 2 / x.shape[-1]], 1),
            torch.stack([sin, cos, shift[1] * 2 / x.shape[-2]], 1),
        ],
        1,
    )
    grid = F.affine_grid(theta.to(x), list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, align_corners=False, padding_mode="zeros").clamp(0, 1)


def train_classifier(
    images: torch.Tensor,
    labels: torch.Tensor,
    *,
    steps: int,
    config: ClassifierConfig | None = None,
    lr: float = 2e-3,
    batch_size: int = 128,
    augment: bool | Callable[..., torch.Tensor] = True,
    seed: int = 0,
    device: str | torch.device | None = None,
    progress: bool = True,
) -> tuple[Classifier, object]:
    """Train a `Classifier` on (images, labels) with Adam, its rate decayed on a cosine.

    images: uint8, or float in [0, 1]; augment: True applies `random_affine` to every
    batch, a function ``augment(x, generator=g)`` of float batches applies itself.
    device: where to train (default: the CPU); the batches move there one at a time.
    Returns (model in eval mode, its genedu.train.History).
    """
    from . import train

    if len(images) != len(labels):
        raise ValueError(f"{len(images)} images but {len(labels)} labels")
    config = config or ClassifierConfig(
        shape=tuple(images.shape[1:]), num_classes=int(labels.max()) + 1
    )
    train.seed_everything(seed)
    model = Classifier(config)

    def transform(x, generator=None):
        x = x.float() / 255 if x.dtype == torch.uint8 else x
        if callable(augment):
            return augment(x, generator=generator)
        return random_affine(x, generator=generator) if augment else x

    with torch.enable_grad():  # also when called from an evaluation under no_grad
        history = train.fit(
            model,
            (images, labels),
            steps=steps,
            batch_size=batch_size,
            lr=lr,
            lr_schedule=lambda progress: 0.5 * (1 + math.cos(math.pi * progress)),
            transform=transform,
            seed=seed,
            device=device,
            progress=progress,
        )
    return model.eval(), history


@torch.no_grad()
def accuracy(classifier: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> float:
    """The share of `images` (float in [0, 1] or uint8) that `classifier` labels right."""
    x = images.float() / 255 if images.dtype == torch.uint8 else images
    return (classifier.predict(x) == labels).float().mean().item()


def feature_network(name: str = "classifier-mnist") -> Classifier:
    """The shipped classifier whose penultimate layer FID, precision and recall use."""
    from . import hub

    return hub.load(name)


# -------------------------------------------------------------------------- sample quality


def check_unit_images(x: torch.Tensor, what: str = "images") -> None:
    """A clear error unless x is float32 (N, C, H, W) with values in [0, 1]."""
    inputs.images(x, what=what, hint="uint8 images need to_unit(), [-1, 1] images (x + 1) / 2")


@torch.no_grad()
def extract_features(
    images: torch.Tensor, network: Classifier | None = None, batch_size: int = 1000
) -> torch.Tensor:
    """Penultimate features (N, F) in float64 of images (float in [0, 1], or uint8)."""
    if isinstance(images, torch.Tensor) and images.dtype == torch.uint8:
        images = images.float() / 255
    check_unit_images(images, "extract_features")
    network = network or feature_network()
    was = network.training
    network.eval()
    out = torch.cat(
        [network.features(images[i : i + batch_size]) for i in range(0, len(images), batch_size)]
    )
    network.train(was)
    return out.double()


def _check_features(a: torch.Tensor, b: torch.Tensor) -> None:
    for name, f in (("a", a), ("b", b)):
        if not isinstance(f, torch.Tensor) or f.dim() != 2:
            raise ValueError(
                f"features {name}: expected a 2-D tensor (N, F), got {getattr(f, 'shape', type(f))}"
            )
    if a.shape[1] != b.shape[1]:
        raise ValueError(
            f"feature dims differ: a has {a.shape[1]}, b has {b.shape[1]}; compare features "
            "of the same network"
        )


def sqrtm_psd(m: torch.Tensor) -> torch.Tensor:
    """The symmetric square root of a symmetric positive semi-definite matrix (float64).

    Through its eigendecomposition $m = V \\Lambda V^T$: $V \\Lambda^{1/2} V^T$, with
    eigenvalues that rounding pushed below 0 set to 0.
    """
    m = 0.5 * (m + m.T).double()
    vals, vecs = torch.linalg.eigh(m)
    return (vecs * vals.clamp(min=0).sqrt()) @ vecs.T


def frechet_distance(
    mu1: torch.Tensor, sigma1: torch.Tensor, mu2: torch.Tensor, sigma2: torch.Tensor
) -> float:
    r"""The squared Fréchet (2-Wasserstein) distance between two Gaussians, in float64:

    $\|\mu_1 - \mu_2\|^2 + \operatorname{tr}\big(\Sigma_1 + \Sigma_2
      - 2 (\Sigma_1^{1/2} \Sigma_2 \Sigma_1^{1/2})^{1/2}\big)$ (Dowson & Landau 1982).

    The trace term uses the symmetric form, whose square root is that of a PSD matrix,
    so no complex parts or `sqrtm` iterations are needed (Heusel et al. 2017 use
    $(\Sigma_1 \Sigma_2)^{1/2}$, which has the same trace).
    """
    mu1, mu2, sigma1, sigma2 = (t.double() for t in (mu1, mu2, sigma1, sigma2))
    root1 = sqrtm_psd(sigma1)
    cross = torch.linalg.eigvalsh(0.5 * ((m := root1 @ sigma2 @ root1) + m.T))
    tr_cross = cross.clamp(min=0).sqrt().sum()
    value = (mu1 - mu2).pow(2).sum() + sigma1.trace() + sigma2.trace() - 2 * tr_cross
    return max(value.item(), 0.0)


def fid_from_features(a: torch.Tensor, b: torch.Tensor) -> float:
    """FID between two feature sets (N_a, F) and (N_b, F): Gaussians fitted, then compared.

    Each set needs more samples than dimensions (N > F) for a full-rank covariance.
    """
    _check_features(a, b)
    f = a.shape[1]
    for name, s in (("a", a), ("b", b)):
        if len(s) <= f:
            raise ValueError(
                f"FID needs more samples than feature dims for a full-rank covariance: set "
                f"{name} has {len(s)} samples of {f} dims (use at least {f + 1}; 2,000+ "
                "for a stable number)"
            )
    a, b = a.double(), b.double()
    return frechet_distance(a.mean(0), torch.cov(a.T), b.mean(0), torch.cov(b.T))


def fid(a: torch.Tensor, b: torch.Tensor, network: Classifier | None = None) -> float:
    """Fréchet distance between images a and b in the features of genedu's own network.

    a, b: images (N, C, H, W), float in [0, 1] or uint8. network: default the shipped
    `classifier-mnist`. Not comparable with the Inception FID of papers: a different
    network sees different features, so only compare numbers made with the same one
    and the same sample sizes (FID is biased upwards for small N).
    """
    network = network or feature_network()
    return fid_from_features(extract_features(a, network), extract_features(b, network))


def _kth_nn_radius(x: torch.Tensor, k: int, chunk: int = 2048) -> torch.Tensor:
    """Distance from each row of x to its k-th nearest other row."""
    out = []
    for i in range(0, len(x), chunk):
        d = torch.cdist(x[i : i + chunk], x)
        out.append(d.kthvalue(k + 1, dim=1).values)  # +1: the point itself is at 0
    return torch.cat(out)


def _covered(x: torch.Tensor, centres: torch.Tensor, radii: torch.Tensor, chunk: int = 2048):
    """For each row of x: is it inside some ball (centre, radius)?"""
    out = []
    for i in range(0, len(x), chunk):
        d = torch.cdist(x[i : i + chunk], centres)
        out.append((d <= radii[None]).any(1))
    return torch.cat(out)


def precision_recall(real: torch.Tensor, fake: torch.Tensor, k: int = 3) -> dict[str, float]:
    """k-NN manifold precision and recall (Kynkäänniemi et al. 2019), on features (N, F).

    Each set's manifold is the union of balls around its points, each reaching to the
    point's k-th nearest neighbour. precision: the share of fake points inside the real
    manifold (are samples realistic?). recall: the share of real points inside the fake
    manifold (is the data covered?).
    """
    _check_features(real, fake)
    if k < 1 or len(real) <= k or len(fake) <= k:
        raise ValueError(
            f"precision_recall needs k >= 1 and more than k points in each set, got k={k}, "
            f"{len(real)} real and {len(fake)} fake"
        )
    real, fake = real.double(), fake.double()
    precision = _covered(fake, real, _kth_nn_radius(real, k)).double().mean().item()
    recall = _covered(real, fake, _kth_nn_radius(fake, k)).double().mean().item()
    return {"precision": precision, "recall": recall}


def modes_covered(
    samples: torch.Tensor, centres: torch.Tensor, radius: float, min_share: float = 0.01
) -> dict[str, float]:
    """How a sample of a known mixture covers its modes (the 2-D toys of the GAN chapter).

    samples (n, d), centres (k, d). A sample is "high quality" when it lies within
    `radius` of some centre; a mode is covered when at least `min_share` of the samples
    fall in its radius. Returns {"modes": covered count, "high_quality": share}.
    """
    if samples.dim() != 2 or centres.dim() != 2 or samples.shape[1] != centres.shape[1]:
        raise ValueError(
            f"modes_covered: expected (n, d) samples and (k, d) centres, got "
            f"{tuple(samples.shape)} and {tuple(centres.shape)}"
        )
    d = torch.cdist(samples.double(), centres.double())  # (n, k)
    nearest, which = d.min(1)
    near = nearest <= radius
    counts = torch.bincount(which[near], minlength=len(centres))
    return {
        "modes": int((counts >= min_share * len(samples)).sum()),
        "high_quality": near.double().mean().item(),
    }


def classification_accuracy_score(
    images: torch.Tensor,
    labels: torch.Tensor,
    test_images: torch.Tensor,
    test_labels: torch.Tensor,
    *,
    steps: int = 2000,
    config: ClassifierConfig | None = None,
    seed: int = 0,
    progress: bool = False,
) -> float:
    """CAS (Ravuri & Vinyals 2019): train a classifier on generated (images, labels) only,
    then return its accuracy on real test data. A conditional generator that covers each
    class well scores close to a classifier trained on real data.
    """
    if isinstance(images, torch.Tensor) and images.is_floating_point():
        check_unit_images(images, "CAS images")
    model, _ = train_classifier(
        images, labels, steps=steps, config=config, seed=seed, progress=progress
    )
    return accuracy(model, test_images, test_labels)


# ------------------------------------------------------------------------- anomaly scores


def _scores_and_labels(scores, is_positive) -> tuple[torch.Tensor, torch.Tensor]:
    """(scores as float64 (N,), labels as bool (N,)), or a ValueError saying what is wrong."""
    s, y = torch.as_tensor(scores), torch.as_tensor(is_positive)
    if s.dim() != 1 or y.dim() != 1 or len(s) != len(y):
        raise ValueError(
            f"expected 1-D scores and labels of the same length, got shapes {tuple(s.shape)} "
            f"and {tuple(y.shape)}"
        )
    if y.dtype != torch.bool and not ((y == 0) | (y == 1)).all():
        raise ValueError("is_positive: expected booleans or 0/1 values")
    s, y = s.double(), y.bool()
    if not torch.isfinite(s).all():
        raise ValueError("scores: expected finite values")
    if y.all() or not y.any():
        raise ValueError(
            f"AUROC needs both classes: got {int(y.sum())} positives and {int((~y).sum())} "
            "negatives"
        )
    return s, y


def auroc(scores: torch.Tensor, is_positive: torch.Tensor) -> float:
    r"""Area under the ROC curve: the chance that a random positive scores above a random
    negative, ties counting one half (the Mann–Whitney statistic).

    scores (N,): higher means more anomalous (positive). is_positive (N,): bool or 0/1.
    With average ranks $r_i$ over all N scores, $\mathrm{AUROC} = (\sum_{i \in +} r_i
    - n_+(n_+ + 1)/2) / (n_+ n_-)$. 0.5 is chance, 1.0 separates perfectly, 0.0 perfectly
    backwards.
    """
    s, y = _scores_and_labels(scores, is_positive)
    _, inverse, counts = torch.unique(s, sorted=True, return_inverse=True, return_counts=True)
    ends = counts.cumsum(0).double()  # rank of the last member of each group of ties
    ranks = (ends - (counts - 1) / 2)[inverse]  # ties share their average rank
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    return ((ranks[y].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)).item()


def roc_curve(scores: torch.Tensor, is_positive: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The ROC curve: false- and true-positive rates (each (T + 1,), from 0 to 1) as the
    threshold falls through the T distinct scores; flagged means score >= threshold."""
    s, y = _scores_and_labels(scores, is_positive)
    order = s.argsort(descending=True)
    s, y = s[order], y[order].double()
    last = torch.ones_like(y, dtype=torch.bool)  # the last position of each distinct score
    last[:-1] = s[1:] != s[:-1]
    tp, fp = y.cumsum(0)[last], (1 - y).cumsum(0)[last]
    zero = s.new_zeros(1)
    return torch.cat([zero, fp / fp[-1]]), torch.cat([zero, tp / tp[-1]])
