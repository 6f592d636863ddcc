r"""Does training on synthetic samples help a classifier with few labels? Measured.

A common claim is that generative models "augment datasets by generating synthetic
samples, helping improve the robustness and generalization of machine learning models".
This file is the experiment that tests the claim on MNIST, following the protocol of
Oliver et al. 2018 ("Realistic evaluation of deep semi-supervised learning"):

- a balanced, seeded subset of n labelled training images; a validation split carved
  from the rest of the training set; the remaining training images, unlabelled; the
  10,000 test images touched only for the final numbers;
- one fixed small CNN (`genedu.metrics.Classifier`) with the same step budget in every
  arm, so that arms differ only in the data they see;
- the arms (`ARMS`):
  - ``real``: the n labelled images only;
  - ``classic``: the same, each batch randomly shifted, rotated, scaled (affine) and
    elastically deformed (Simard et al. 2003);
  - ``cvae``: real plus samples of a conditional VAE (Kingma et al. 2014; Sohn et al.
    2015) trained on the n labelled images only;
  - ``semi-cvae``: real plus samples of a conditional VAE trained on the labelled images
    and on the unlabelled rest, labelled by the real-only classifier where it is
    confident (pseudo-labels, Lee 2013). This one sees more images, not more labels;
  - ``classic+synthetic``: classic augmentation on real plus the better synthetic arm;
  - ``flow`` (when ``flow_steps`` > 0): real plus samples of a class-conditional
    flow-matching model (`genedu.diffusion.FlowMatching`, a small U-Net; Lipman et al.
    2023) trained on the n labelled images only, as the ``cvae``. It is run after the
    arms above, from its own seed and with the global random state put back, so adding
    it leaves their numbers as they were;
- how many synthetic samples to add (``multiples`` × n) is chosen on validation;
- measures: clean test accuracy, accuracy on a corrupted copy of the test set
  (rotation, blur and Gaussian noise together, `corrupt`), and each generator's
  classification accuracy score (CAS, Ravuri & Vinyals 2019).
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass
from typing import NamedTuple

import torch
import torch.nn.functional as F

from .. import data, diffusion, metrics, train
from ..diffusion import DiffusionConfig, FlowMatching
from ..vae import VAE, VAEConfig

ARMS = ("real", "classic", "cvae", "semi-cvae", "classic+synthetic")
SYNTHETIC = ("cvae", "semi-cvae")
FLOW = "flow"  # the optional flow-matching arm (AugmentationConfig.flow_steps > 0)
CLASSES = 10


@dataclass(frozen=True)
class AugmentationConfig:
    """One run of the experiment: how many labels, and every budget."""

    labels: int = 100  # n: labelled training images, balanced over the 10 classes
    validation: int = 1000  # carved from train; picks the number of synthetic samples
    classifier_steps: int = 200  # every arm's classifier: the same budget
    batch_size: int = 64
    classifier_hidden: int = 16  # channels of the classifier's first block
    generator_steps: int = 1000  # the cVAE on the labelled images
    semi_steps: int = 1500  # the cVAE on labelled + pseudo-labelled images
    generator_hidden: int = 256  # MLP cVAE hidden units
    latent_dim: int = 16
    min_confidence: float = 0.9  # pseudo-labels kept only above this softmax probability
    unlabelled: int = 0  # at most this many unlabelled images for the semi arm; 0: all
    multiples: tuple[float, ...] = (1, 4)  # synthetic samples to try, × labels
    cas_samples: int = 2000  # synthetic images behind each generator's CAS
    flow_steps: int = 0  # the flow-matching arm's training steps; 0: no such arm
    flow_hidden: int = 16  # its U-Net's channels at full resolution
    flow_sample_steps: int = 10  # its Euler steps per sample

    def __post_init__(self):
        problems = []
        if self.labels < CLASSES or self.labels % CLASSES:
            problems.append(f"labels must be a positive multiple of {CLASSES}: {self.labels}")
        if self.validation < CLASSES:
            problems.append(f"validation must be >= {CLASSES}: {self.validation}")
        budgets = ("classifier_steps", "generator_steps", "semi_steps", "batch_size")
        for name in (*budgets, "classifier_hidden", "generator_hidden", "latent_dim",
                     "flow_hidden", "flow_sample_steps"):  # fmt: skip
            if getattr(self, name) < 1:
                problems.append(f"{name} must be >= 1: {getattr(self, name)}")
        if not 0.0 <= self.min_confidence < 1.0:
            problems.append(f"min_confidence must be in [0, 1): {self.min_confidence}")
        if not self.multiples or min(self.multiples) <= 0:
            problems.append(f"multiples must be positive: {self.multiples}")
        if self.unlabelled < 0:
            problems.append(f"unlabelled must be >= 0 (0: all of them): {self.unlabelled}")
        if self.flow_steps < 0:
            problems.append(f"flow_steps must be >= 0 (0: no flow arm): {self.flow_steps}")
        if self.cas_samples < CLASSES:
            problems.append(f"cas_samples must be >= {CLASSES}: {self.cas_samples}")
        if problems:
            raise ValueError("AugmentationConfig: " + "; ".join(problems))


# ------------------------------------------------------------------- the splits


class Split(NamedTuple):
    """Indices into the training set: three disjoint parts."""

    labelled: torch.Tensor  # (n,), balanced over the classes
    validation: torch.Tensor  # (validation,)
    unlabelled: torch.Tensor  # the rest


def split_train(labels: torch.Tensor, n: int, validation: int, *, seed: int) -> Split:
    """A seeded, balanced labelled subset (n / 10 per class), a random validation
    split from the remaining images, and the rest as unlabelled. Disjoint by design."""
    if labels.dim() != 1 or labels.dtype != torch.int64:
        raise ValueError(f"labels: expected int64 of shape (N,), got {labels.dtype} "
                         f"{tuple(labels.shape)}")  # fmt: skip
    per_class = n // CLASSES
    if n % CLASSES or per_class < 1:
        raise ValueError(f"n must be a positive multiple of {CLASSES}, got {n}")
    g = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(labels), generator=g)
    chosen = []
    for k in range(CLASSES):
        of_k = order[labels[order] == k]
        if len(of_k) < per_class:
            raise ValueError(f"class {k} has {len(of_k)} images, fewer than {per_class}")
        chosen.append(of_k[:per_class])
    labelled = torch.cat(chosen)
    rest = order[~torch.isin(order, labelled)]
    if len(rest) <= validation:
        raise ValueError(f"{len(labels)} images leave too few for {validation} validation")
    return Split(labelled.sort().values, rest[:validation].sort().values,
                 rest[validation:].sort().values)  # fmt: skip


# ------------------------------------------------------------------- augmentations


def gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Blur each channel of (N, C, H, W) with a separable Gaussian of std `sigma` pixels."""
    radius = max(1, math.ceil(3 * sigma))
    t = torch.arange(-radius, radius + 1, dtype=x.dtype, device=x.device)
    k = torch.exp(-0.5 * (t / sigma) ** 2)
    k = k / k.sum()
    c = x.shape[1]
    x = F.pad(x, (radius, radius, radius, radius), mode="replicate")
    x = F.conv2d(x, k.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    return F.conv2d(x, k.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)


def _warp(x: torch.Tensor, displacement: torch.Tensor) -> torch.Tensor:
    """Resample x (N, C, H, W) at each pixel plus `displacement` (N, 2, H, W) pixels."""
    n, _, h, w = x.shape
    eye = torch.eye(2, 3, dtype=x.dtype).expand(n, 2, 3)
    grid = F.affine_grid(eye, [n, 1, h, w], align_corners=False)  # (N, H, W, 2) in [-1, 1]
    scale = torch.tensor([2 / w, 2 / h], dtype=x.dtype)
    grid = grid + displacement.permute(0, 2, 3, 1) * scale
    return F.grid_sample(x, grid, align_corners=False, padding_mode="zeros")


def elastic(
    x: torch.Tensor,
    *,
    alpha: float = 34.0,
    sigma: float = 4.0,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Elastic deformation (Simard et al. 2003, sec. 2): a uniform random displacement
    field in [-1, 1] per pixel, smoothed by a Gaussian of std `sigma` and scaled by
    `alpha`, warps each image. Images (N, C, H, W) in [0, 1] -> the same."""
    metrics.check_unit_images(x, "elastic")
    n, _, h, w = x.shape
    field = torch.rand(n, 2, h, w, generator=generator, dtype=x.dtype) * 2 - 1
    return _warp(x, alpha * gaussian_blur(field, sigma)).clamp(0, 1)


def classic_augment(x: torch.Tensor, *, generator: torch.Generator | None = None) -> torch.Tensor:
    """The classic arm's augmentation: `metrics.random_affine`, then `elastic`."""
    return elastic(metrics.random_affine(x, generator=generator), generator=generator)


def corrupt(
    x: torch.Tensor,
    *,
    degrees: float = 30.0,
    blur: float = 0.7,
    noise: float = 0.05,
    seed: int = 0,
) -> torch.Tensor:
    """The robustness test set: each image rotated by a random angle in ±`degrees`,
    blurred (Gaussian, std `blur` px), then given Gaussian noise of std `noise`, clipped
    to [0, 1]. Images (N, C, H, W), uint8 or float in [0, 1]; seeded, so every arm and
    every run sees the same corrupted copy."""
    x = data.to_unit(x) if x.dtype == torch.uint8 else x
    metrics.check_unit_images(x, "corrupt")
    g = torch.Generator().manual_seed(seed)
    angle = (torch.rand(len(x), generator=g) * 2 - 1) * math.radians(degrees)
    cos, sin, zero = angle.cos(), angle.sin(), torch.zeros(len(x))
    theta = torch.stack([torch.stack([cos, -sin, zero], 1), torch.stack([sin, cos, zero], 1)], 1)
    grid = F.affine_grid(theta.to(x.dtype), list(x.shape), align_corners=False)
    x = F.grid_sample(x, grid, align_corners=False, padding_mode="zeros")
    x = gaussian_blur(x, blur) if blur > 0 else x
    return (x + noise * torch.randn(x.shape, generator=g, dtype=x.dtype)).clamp(0, 1)


# ------------------------------------------------------------------- the generators


def fit_conditional_vae(
    images: torch.Tensor, labels: torch.Tensor, config: AugmentationConfig, *, steps: int, seed: int
) -> VAE:
    """A class-conditional MLP VAE trained on (uint8 images, labels), dynamically binarised."""
    model = VAE(VAEConfig(shape=tuple(images.shape[1:]), latent_dim=config.latent_dim,
                          hidden=config.generator_hidden, architecture="mlp",
                          num_classes=CLASSES))  # fmt: skip
    with torch.enable_grad():
        train.fit(model, (images, labels), steps=steps, batch_size=128, lr=2e-3,
                  transform=data.binarize, seed=seed, progress=False)  # fmt: skip
    return model.eval()


def fit_conditional_flow(
    images: torch.Tensor, labels: torch.Tensor, config: AugmentationConfig, *, seed: int
) -> FlowMatching:
    """A class-conditional flow-matching U-Net trained on (uint8 images, labels) in grey
    levels, for `config.flow_steps` steps, with the class dropped 10% of the time."""
    model = FlowMatching(DiffusionConfig(shape=tuple(images.shape[1:]), hidden=config.flow_hidden,
                                         num_classes=CLASSES, ema_decay=0.995))  # fmt: skip
    with torch.enable_grad():
        train.fit(model, (data.to_unit(images), labels), step=diffusion.train_step,
                  steps=config.flow_steps, batch_size=64, lr=1e-3,
                  lr_schedule=train.warmup_cosine(), seed=seed, progress=False)  # fmt: skip
    return model.eval()


def synthesize(
    model, count: int, *, seed: int, steps: int = 10
) -> tuple[torch.Tensor, torch.Tensor]:
    """`count` samples of a conditional generator, the classes in turn (balanced):
    (images (count, C, H, W) in [0, 1], labels (count,)). A VAE gives its decoder's mean
    images; a flow-matching model its ODE's end after `steps` Euler steps: at 10 steps
    Euler matches Heun's FID on the shipped flowmatch-mnist (53.4 against 52.7,
    benchmarks/diffusion.py, 500 samples) for about half the network calls."""
    labels = torch.arange(count) % CLASSES
    g = torch.Generator().manual_seed(seed)
    if isinstance(model, FlowMatching):
        return model.sample(count, y=labels, steps=steps, sampler="euler", generator=g), labels
    return model.sample(count, y=labels, generator=g, mean=True), labels


@torch.no_grad()
def pseudo_label(
    classifier: metrics.Classifier, images: torch.Tensor, min_confidence: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """The classifier's labels for uint8 `images`, and the mask of those it gives at least
    `min_confidence` softmax probability: (labels (N,), keep (N,) bool)."""
    x = data.to_unit(images)
    probs = torch.cat([classifier(x[i : i + 1000]).softmax(1) for i in range(0, len(x), 1000)])
    confidence, labels = probs.max(1)
    return labels, confidence >= min_confidence


# ------------------------------------------------------------------- the experiment


def run(
    train_set: data.ImageSet,
    test_set: data.ImageSet,
    config: AugmentationConfig = AugmentationConfig(),
    *,
    seed: int = 0,
    keep_models: bool = False,
) -> dict:
    """Every arm for one seed. The test set enters only `_measure`, after every choice.

    Returns a JSON-ready dict: per arm its validation, test and corrupted accuracy, the
    synthetic samples it used and its training seconds (generator included); the
    accuracy-against-synthetic-samples curve of each generator; each generator's CAS; and
    how many pseudo-labels were kept and how many were right. keep_models: also return
    the trained networks under "models" (each arm's classifier and the two generators),
    to look at; the dict is then no longer JSON-ready.
    """
    for s, what in ((train_set, "train_set"), (test_set, "test_set")):
        if s.labels is None:
            raise ValueError(f"{what} {s.name!r} has no labels; the experiment needs them")
    n = config.labels
    split = split_train(train_set.labels, n, config.validation, seed=seed)
    x_lab = data.to_unit(train_set.images[split.labelled])  # the only labels the arms see
    y_lab = train_set.labels[split.labelled]
    x_val = data.to_unit(train_set.images[split.validation])  # for choices, never trained on
    y_val = train_set.labels[split.validation]
    shape = tuple(train_set.images.shape[1:])
    clf_config = metrics.ClassifierConfig(shape=shape, hidden=config.classifier_hidden, features=64)

    def classifier(images, labels, augment) -> tuple[metrics.Classifier, float]:
        start = time.perf_counter()
        model, _ = metrics.train_classifier(
            images, labels, steps=config.classifier_steps, config=clf_config,
            batch_size=config.batch_size, augment=augment, seed=seed, progress=False,
        )  # fmt: skip
        return model, time.perf_counter() - start

    def entry(model, seconds, synthetic=0) -> dict:
        val = metrics.accuracy(model, x_val, y_val)
        return {"model": model, "validation": val, "synthetic": synthetic, "seconds": seconds}

    arms = {"real": entry(*classifier(x_lab, y_lab, False))}
    arms["classic"] = entry(*classifier(x_lab, y_lab, classic_augment))

    start = time.perf_counter()
    generators = {"cvae": fit_conditional_vae(train_set.images[split.labelled], y_lab, config,
                                              steps=config.generator_steps, seed=seed)}  # fmt: skip
    generator_seconds = {"cvae": time.perf_counter() - start}
    start = time.perf_counter()
    pool = split.unlabelled[: config.unlabelled or None]
    unlabelled = train_set.images[pool]
    guessed, keep = pseudo_label(arms["real"]["model"], unlabelled, config.min_confidence)
    right = (guessed[keep] == train_set.labels[pool][keep]).float().mean().item()
    pseudo = {"unlabelled": len(unlabelled), "kept": int(keep.sum()), "accuracy_of_kept": right}
    generators["semi-cvae"] = fit_conditional_vae(
        torch.cat([train_set.images[split.labelled], unlabelled[keep]]),
        torch.cat([y_lab, guessed[keep]]), config, steps=config.semi_steps, seed=seed,
    )  # fmt: skip
    generator_seconds["semi-cvae"] = time.perf_counter() - start

    curves, pools = {}, {}

    def with_synthetic(name: str, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        return (torch.cat([x_lab, pools[name][0][:k]]), torch.cat([y_lab, pools[name][1][:k]]))

    def synthetic_arm(name: str, **sampling) -> None:
        """Draw `name`'s pool, train on the labelled set plus k = m × n of it for each of
        the multiples, and keep as its arm the classifier best on validation."""
        most = max(round(m * n) for m in config.multiples)
        pools[name] = synthesize(generators[name], max(most, config.cas_samples), seed=seed,
                                 **sampling)  # fmt: skip
        curves[name] = []
        for m in config.multiples:
            k = round(m * n)
            clf, seconds = classifier(*with_synthetic(name, k), False)
            curves[name].append(entry(clf, seconds + generator_seconds[name], synthetic=k))
        arms[name] = max(curves[name], key=lambda e: e["validation"])  # first best wins ties

    for name in SYNTHETIC:
        synthetic_arm(name)

    best = max(SYNTHETIC, key=lambda a: arms[a]["validation"])
    k = arms[best]["synthetic"]
    clf, seconds = classifier(*with_synthetic(best, k), classic_augment)
    arms["classic+synthetic"] = entry(clf, seconds + generator_seconds[best], synthetic=k)
    arms["classic+synthetic"]["generator"] = best

    if config.flow_steps:
        with torch.random.fork_rng():  # the arms above, and the CAS after, stay as they were
            torch.manual_seed(seed)
            start = time.perf_counter()
            generators[FLOW] = fit_conditional_flow(train_set.images[split.labelled], y_lab,
                                                    config, seed=seed)  # fmt: skip
            generator_seconds[FLOW] = time.perf_counter() - start
            synthetic_arm(FLOW, steps=config.flow_sample_steps)

    result = _measure(arms, curves, pools, test_set, config, seed, split, pseudo, clf_config)
    if keep_models:
        result["models"] = {**{a: arms[a]["model"] for a in (*ARMS, FLOW) if a in arms},
                            **generators}  # fmt: skip
    return result


def _measure(arms, curves, pools, test_set, config, seed, split, pseudo, clf_config) -> dict:
    """The final numbers: every choice is made; the test set is read for the first time."""
    test_x, test_y = data.to_unit(test_set.images), test_set.labels
    corrupted = corrupt(test_x, seed=0)  # the same corrupted copy for every seed and arm

    def scores(e: dict) -> dict:
        out = {k: v for k, v in e.items() if k != "model"}
        out["test"] = metrics.accuracy(e["model"], test_x, test_y)
        out["corrupted"] = metrics.accuracy(e["model"], corrupted, test_y)
        out["seconds"] = round(out["seconds"], 2)
        return out

    cas = {
        name: metrics.classification_accuracy_score(
            pools[name][0][: config.cas_samples],
            pools[name][1][: config.cas_samples],
            test_x,
            test_y,
            steps=config.classifier_steps,
            config=clf_config,
            seed=seed,
        )  # fmt: skip
        for name in (*SYNTHETIC, *([FLOW] if FLOW in pools else []))
    }
    return {
        "labels": config.labels,
        "seed": seed,
        "config": asdict(config),
        "split": {k: len(v) for k, v in split._asdict().items()},
        "arms": {name: scores(arms[name]) for name in (*ARMS, FLOW) if name in arms},
        "curves": {name: [scores(e) for e in curve] for name, curve in curves.items()},
        "cas": cas,
        "pseudo_labels": pseudo,
    }


def interval(values: list[float], level: float = 0.95) -> tuple[float, float]:
    """Mean and the half-width of its Student-t confidence interval over seeds."""
    from scipy import stats

    v = torch.tensor(values, dtype=torch.float64)
    if len(v) < 2:
        return v.mean().item(), float("nan")
    half = stats.t.ppf(0.5 + level / 2, len(v) - 1) * v.std(unbiased=True) / math.sqrt(len(v))
    return v.mean().item(), float(half)


def summarise(runs: list[dict], measure: str = "test") -> dict[str, tuple[float, float]]:
    """Per arm, (mean, 95% half-width) of `measure` over runs of different seeds; the
    flow arm too when every run has it."""
    arms = (*ARMS, FLOW) if all(FLOW in r["arms"] for r in runs) else ARMS
    return {arm: interval([r["arms"][arm][measure] for r in runs]) for arm in arms}


# ------------------------------------------------------------------- a reference generator


def reference_generator(
    train_set: data.ImageSet,
    test_set: data.ImageSet,
    config: AugmentationConfig = AugmentationConfig(),
    *,
    semi: bool = False,
    seed: int = 0,
) -> tuple[VAE, dict]:
    """One of `run`'s two generators, trained alone as `run` trains it for `seed`: the
    ``cvae`` on the balanced labelled subset, or with semi=True the ``semi-cvae`` on it
    plus the confidently pseudo-labelled rest. Returns (the VAE in eval mode, its metrics:
    the CAS on `test_set` under the experiment's protocol, the labels it saw, and for the
    semi arm how many pseudo-labels it kept and how many were right). The recipe behind
    the shipped ``cvae-mnist`` and ``semi-cvae-mnist`` (`genedu train cvae`). Seeded as a
    whole (`train.seed_everything(seed)` first), so a seed gives one generator; it is not
    bit for bit `run`'s, whose networks start from wherever the arms before left the
    global generator."""
    for s, what in ((train_set, "train_set"), (test_set, "test_set")):
        if s.labels is None:
            raise ValueError(f"{what} {s.name!r} has no labels; a conditional VAE needs them")
    train.seed_everything(seed)
    split = split_train(train_set.labels, config.labels, config.validation, seed=seed)
    images, labels = train_set.images[split.labelled], train_set.labels[split.labelled]
    shape = tuple(train_set.images.shape[1:])
    clf_config = metrics.ClassifierConfig(shape=shape, hidden=config.classifier_hidden, features=64)
    found: dict = {"labels": config.labels, "seed": seed}
    start = time.perf_counter()
    if semi:  # pseudo-labels from the real-only classifier, as `run` makes them
        real, _ = metrics.train_classifier(
            data.to_unit(images), labels, steps=config.classifier_steps, config=clf_config,
            batch_size=config.batch_size, augment=False, seed=seed, progress=False,
        )  # fmt: skip
        pool = split.unlabelled[: config.unlabelled or None]
        guessed, keep = pseudo_label(real, train_set.images[pool], config.min_confidence)
        kept = int(keep.sum())
        found |= {"unlabelled": len(pool), "pseudo_labels_kept": kept}
        if kept:
            right = (guessed[keep] == train_set.labels[pool][keep]).float().mean().item()
            found["pseudo_labels_right"] = round(right, 4)
        images = torch.cat([images, train_set.images[pool][keep]])
        labels = torch.cat([labels, guessed[keep]])
    steps = config.semi_steps if semi else config.generator_steps
    model = fit_conditional_vae(images, labels, config, steps=steps, seed=seed)
    found |= {"train_images": len(images), "steps": steps,
              "train_seconds": round(time.perf_counter() - start, 1)}  # fmt: skip
    return model, found | generator_cas(model, test_set, config, seed=seed)


def generator_cas(
    model: VAE,
    test_set: data.ImageSet,
    config: AugmentationConfig = AugmentationConfig(),
    *,
    seed: int = 0,
) -> dict:
    """The experiment's CAS of a conditional generator: a classifier trained only on
    `config.cas_samples` of its samples, scored on `test_set`; and that protocol."""
    shape = tuple(test_set.images.shape[1:])
    clf_config = metrics.ClassifierConfig(shape=shape, hidden=config.classifier_hidden, features=64)
    fake, fake_y = synthesize(model, config.cas_samples, seed=seed)
    cas = metrics.classification_accuracy_score(
        fake, fake_y, data.to_unit(test_set.images), test_set.labels,
        steps=config.classifier_steps, config=clf_config, seed=seed,
    )  # fmt: skip
    protocol = (f"{config.cas_samples} samples, {config.classifier_steps} classifier steps, "
                f"{len(test_set)} test images")  # fmt: skip
    return {"cas": round(cas, 4), "cas_protocol": protocol}
