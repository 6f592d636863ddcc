"""Image completion: fill in the hidden part of a digit, three ways (chapter 10).

* **PixelCNN** (`pixelcnn_complete`): the exact conditional p(x_missing | x_known) of an
  autoregressive model, drawn pixel by pixel in raster order. It is exact only when the
  hidden region comes after every known pixel (the bottom half); for the right half or
  a centred square, the known pixels below the first hidden one are kept but the model
  cannot look ahead to them.
* **VAE** (`vae_complete`): search the latent space for codes z whose decoded image
  matches the known pixels, maximising log p(x_known | z) + log p(z) from several
  random starts (one completion per start), then decode the hidden pixels.
* **Nearest neighbour** (`nearest_neighbour_complete`): copy the hidden part of the
  training images whose known part is closest; a baseline with no model at all.

Every method returns (N, S, C, H, W): S completions per image, with the known pixels
exactly those of the input. `evaluate` scores completions against the hidden truth
(does `classifier-mnist` still read the right digit, how many hidden pixels agree,
how different the S completions are from each other).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .. import inputs
from ..pixelcnn import _PixelModel
from ..vae import VAE

MASKS = ("bottom", "right", "centre")
METHODS = ("pixelcnn", "vae", "neighbour")


def mask(kind: str, shape: tuple[int, int] = (28, 28), *, size: int | None = None) -> torch.Tensor:
    """Which pixels are known, as a bool tensor (1, 1, H, W): True = known.

    kind: "bottom" (the bottom half hidden), "right" (the right half hidden) or "centre"
    (a centred square of side `size` hidden; default half the height).
    """
    if kind not in MASKS:
        raise ValueError(f"mask: kind must be one of {MASKS}, got {kind!r}")
    h, w = shape
    known = torch.ones(1, 1, h, w, dtype=torch.bool)
    if kind == "bottom":
        known[..., h // 2 :, :] = False
    elif kind == "right":
        known[..., :, w // 2 :] = False
    else:
        side = size or h // 2
        if not 0 < side <= min(h, w):
            raise ValueError(f"mask: size must be in 1..{min(h, w)}, got {side}")
        top, left = (h - side) // 2, (w - side) // 2
        known[..., top : top + side, left : left + side] = False
    return known


def check_known(known: torch.Tensor, x: torch.Tensor, what: str) -> torch.Tensor:
    """Validate a known-pixel mask for images x (N, C, H, W); return it as (N, 1, H, W).

    A mask must be bool, (1 or N, 1, H, W), and hide some pixels but not all of them.
    """
    if not isinstance(known, torch.Tensor) or known.dtype != torch.bool or known.dim() != 4:
        got = getattr(known, "dtype", type(known).__name__)
        raise ValueError(f"{what}: expected a bool mask (N or 1, 1, H, W), True = known; got {got}")
    if known.shape[0] not in (1, len(x)) or known.shape[1] != 1 or known.shape[2:] != x.shape[2:]:
        raise ValueError(
            f"{what}: mask of shape {tuple(known.shape)} does not fit images of shape "
            f"{tuple(x.shape)}: expected ({len(x)} or 1, 1, {x.shape[2]}, {x.shape[3]})"
        )
    per_image = known.flatten(1)
    if per_image.all(1).any():
        raise ValueError(f"{what}: the mask hides nothing (every pixel known): nothing to complete")
    if not per_image.any(1).all():
        raise ValueError(f"{what}: the mask hides everything: nothing to condition on (use sample)")
    return known.expand(len(x), -1, -1, -1)


def _check(x: torch.Tensor, known: torch.Tensor, samples: int, what: str, shape=None):
    inputs.images(x, shape, what=what, hint="use genedu.data.binarize")
    inputs.count(samples, f"{what}: samples")
    return check_known(known, x, what)


def _paste(x: torch.Tensor, known: torch.Tensor, filled: torch.Tensor) -> torch.Tensor:
    """(N, S, C, H, W): the known pixels of x, the rest from filled (N, S, C, H, W)."""
    return torch.where(known[:, None], x[:, None], filled)


# --------------------------------------------------------------------------- the methods
@torch.no_grad()
def pixelcnn_complete(
    model: _PixelModel,
    x: torch.Tensor,
    known: torch.Tensor,
    *,
    samples: int = 4,
    generator: torch.Generator | None = None,
    batch_size: int = 1000,
) -> torch.Tensor:
    """S completions per image (N, S, C, H, W) drawn from the PixelCNN's conditional.

    x: images (N, C, H, W) as the model takes them (binary for a Bernoulli model).
    A class-conditional model draws each completion's class from its posterior given
    the known pixels before the first hidden one (`GatedPixelCNN.complete`).
    """
    known = _check(x, known, samples, "pixelcnn_complete", model.config.shape)
    n = len(x)
    rep = lambda t: t.repeat_interleave(samples, 0)  # noqa: E731 (image-major order)
    xs, ks = rep(x), rep(known)
    classes = [None] * len(xs)
    if model.config.num_classes:
        # p(y | known prefix) once per image, not once per completion: it costs a full
        # pass of the network per class, more than drawing the pixels themselves
        full = known.expand_as(x)
        posterior = torch.cat([
            model._class_posterior(x[i : i + batch_size], full[i : i + batch_size]).cpu()
            for i in range(0, n, batch_size)
        ])  # fmt: skip
        classes = posterior.multinomial(samples, replacement=True, generator=generator).flatten()
    out = torch.cat([
        model.complete(xs[i : i + batch_size], ks[i : i + batch_size], generator=generator,
                       y=None if classes[0] is None else classes[i : i + batch_size]).cpu()
        for i in range(0, len(xs), batch_size)
    ])  # fmt: skip
    return _paste(x, known, out.view(n, samples, *x.shape[1:]))


def vae_search(
    model: VAE,
    x: torch.Tensor,
    known: torch.Tensor,
    *,
    samples: int = 4,
    steps: int = 100,
    lr: float = 0.1,
    spread: float = 1.0,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Codes z (N·S, latent_dim), image-major, that explain the known pixels of x.

    Each search starts from the encoder's mean for the image with its hidden pixels set
    to 0, plus `spread` times a standard normal draw, and takes `steps` Adam steps on
    -[log p(x_known | z) + log p(z)] (`known_fit`): only the known pixels are compared.
    """
    known = _check(x, known, samples, "vae_search", model.config.shape)
    if model.config.num_classes:
        raise ValueError("vae_search: expected an unconditional VAE (num_classes=0)")
    if model.config.likelihood != "bernoulli":
        raise ValueError("vae_search: expected a Bernoulli VAE (binary images)")
    if steps < 0:
        raise ValueError(f"vae_search: steps must be >= 0, got {steps}")
    g = generator or torch.Generator().manual_seed(0)
    xs, ks = x.repeat_interleave(samples, 0), known.repeat_interleave(samples, 0)
    was = model.training
    model.eval()
    frozen = [p for p in model.parameters() if p.requires_grad]
    for p in frozen:
        p.requires_grad_(False)
    try:
        with torch.no_grad():
            mu, _ = model.encode(xs * ks)
        z = (mu + spread * torch.randn(mu.shape, generator=g)).requires_grad_(True)
        optimiser = torch.optim.Adam([z], lr=lr)
        for _ in range(steps):
            loss = known_fit(model, z, xs, ks).sum()
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
    finally:
        for p in frozen:
            p.requires_grad_(True)
        model.train(was)
    return z.detach()


def known_fit(model: VAE, z: torch.Tensor, x: torch.Tensor, known: torch.Tensor) -> torch.Tensor:
    """-[log p(x_known | z) + log p(z)] per code (N,), in nats, up to a constant: the
    Bernoulli decoder's loss on the known pixels only, plus the prior's ||z||² / 2."""
    nll = F.binary_cross_entropy_with_logits(model._decode(z, None), x, reduction="none")
    return (nll * known).flatten(1).sum(1) + 0.5 * (z**2).sum(1)


def vae_complete(
    model: VAE, x: torch.Tensor, known: torch.Tensor, *, binary: bool = True, **search
) -> torch.Tensor:
    """S completions per image (N, S, C, H, W) by a search in the VAE's latent space.

    `vae_search` finds one code per completion (`search`: its keywords, samples=S,
    steps, lr, spread and generator); the hidden pixels are the decoder's mean image
    for it, thresholded at 0.5 when `binary` (each pixel's most likely value; a
    Bernoulli draw would add salt noise, since the decoder's pixels are independent
    given z). Different starts settle in different codes: that is the diversity.
    """
    z = vae_search(model, x, known, **search)
    with torch.no_grad():
        mean = model.decode(z)
    filled = (mean > 0.5).to(x.dtype) if binary else mean
    known = check_known(known, x, "vae_complete")
    return _paste(x, known, filled.view(len(x), -1, *x.shape[1:]))


@torch.no_grad()
def nearest_neighbour_complete(
    train_images: torch.Tensor,
    x: torch.Tensor,
    known: torch.Tensor,
    *,
    samples: int = 4,
    batch_size: int = 500,
) -> torch.Tensor:
    """S completions per image (N, S, C, H, W): the hidden pixels of the S training
    images whose known pixels are nearest to x's (squared distance on the known ones).

    train_images: (M, C, H, W) in [0, 1], of the same kind as x (binary or grey).
    """
    known = _check(x, known, samples, "nearest_neighbour_complete")
    if train_images.dim() != 4 or train_images.shape[1:] != x.shape[1:]:
        raise ValueError(
            f"nearest_neighbour_complete: training images must be (M, "
            f"{', '.join(map(str, x.shape[1:]))}), got {tuple(train_images.shape)}"
        )
    if len(train_images) < samples:
        raise ValueError(f"nearest_neighbour_complete: {samples} samples need that many images")
    train = train_images.flatten(1).float()
    picks = []
    for i in range(0, len(x), batch_size):
        q = x[i : i + batch_size].flatten(1).float()
        k = known[i : i + batch_size].expand(-1, x.shape[1], -1, -1).flatten(1).float()
        # sum_k m·(q - t)² = m·q² - 2 (m·q)·t + m·t², one matrix product per term
        d = (k * q * q).sum(1, keepdim=True) - 2 * (k * q) @ train.T + k @ (train * train).T
        picks.append(d.topk(samples, dim=1, largest=False).indices)
    index = torch.cat(picks)
    filled = train_images[index.flatten()].view(len(x), samples, *x.shape[1:]).to(x.dtype)
    return _paste(x, known, filled)


# --------------------------------------------------------------------------- measuring
@dataclass(frozen=True)
class Scores:
    """How good S completions per image are, against the hidden truth."""

    accuracy: float  # share of completions that classifier-mnist reads as the true digit
    agreement: float  # mean share of hidden pixels equal to the truth (rounded to 0/1)
    diversity: float  # mean share of hidden pixels on which two completions differ
    completions: int


@torch.no_grad()
def evaluate(
    completions: torch.Tensor,
    truth: torch.Tensor,
    known: torch.Tensor,
    labels: torch.Tensor,
    classifier: nn.Module,
) -> Scores:
    """Score completions (N, S, C, H, W) of truth (N, C, H, W) with labels (N,).

    Pixels are compared after rounding to 0/1. Diversity averages, over images and over
    the S·(S-1)/2 pairs of completions, the share of hidden pixels that differ (0 when
    S = 1, or when every completion is the same).
    """
    if (
        completions.dim() != 5
        or completions.shape[0] != len(truth)
        or completions.shape[2:] != truth.shape[1:]
    ):
        raise ValueError(
            f"evaluate: expected completions (N, S, C, H, W) for truth {tuple(truth.shape)}, "
            f"got {tuple(completions.shape)}"
        )
    n, s = completions.shape[:2]
    known = check_known(known, truth, "evaluate")
    hidden = (~known).expand_as(truth)[:, None].float()  # (N, 1, C, H, W)
    per_image = hidden.flatten(2).sum(2)  # (N, 1)
    c, t = completions.round(), truth.round()[:, None]
    agreement = (((c == t).float() * hidden).flatten(2).sum(2) / per_image).mean().item()
    predicted = classifier.predict(completions.flatten(0, 1)).view(n, s).cpu()
    accuracy = (predicted == labels.view(n, 1)).float().mean().item()
    diversity = 0.0
    if s > 1:
        pairs = [(a, b) for a in range(s) for b in range(a + 1, s)]
        differ = [((c[:, a] != c[:, b]).float() * hidden[:, 0]).flatten(1).sum(1) for a, b in pairs]
        diversity = (torch.stack(differ, 1) / per_image).mean().item()
    return Scores(accuracy, agreement, diversity, n * s)


def complete(
    method: str,
    x: torch.Tensor,
    known: torch.Tensor,
    *,
    samples: int = 4,
    seed: int = 0,
    model: nn.Module | None = None,
    train_images: torch.Tensor | None = None,
    **options,
) -> tuple[torch.Tensor, float]:
    """One method by name ("pixelcnn", "vae" or "neighbour"); returns the completions
    (N, S, C, H, W) and the seconds they took. model: the PixelCNN or VAE (default: the
    shipped `pixelcnn-mnist` / `vae-mnist`); train_images: the neighbour's database."""
    if method not in METHODS:
        raise ValueError(f"complete: method must be one of {METHODS}, got {method!r}")
    start = time.perf_counter()
    g = torch.Generator().manual_seed(seed)
    if method == "neighbour":
        if train_images is None:
            raise ValueError("complete: the neighbour method needs train_images")
        out = nearest_neighbour_complete(train_images, x, known, samples=samples, **options)
    else:
        if model is None:
            from .. import hub

            model = hub.load(f"{method}-mnist")
        fill = pixelcnn_complete if method == "pixelcnn" else vae_complete
        out = fill(model, x, known, samples=samples, generator=g, **options)
    return out, time.perf_counter() - start


def occluded(x: torch.Tensor, known: torch.Tensor, shade: float = 0.5) -> torch.Tensor:
    """x (N, C, H, W) with its hidden pixels painted grey, to show what is missing."""
    known = check_known(known, x, "occluded")
    return torch.where(known, x, torch.full_like(x, shade))


def panel(x: torch.Tensor, known: torch.Tensor, completions: dict[str, torch.Tensor]):
    """One row per image: the occluded input, each method's S completions in turn, then
    the truth. Returns (images (N·K, C, H, W), K, column names) for `viz.make_grid`."""
    columns = [occluded(x, known)[:, None]] + list(completions.values()) + [x[:, None]]
    names = ["input"] + [f"{m} ×{c.shape[1]}" for m, c in completions.items()] + ["truth"]
    rows = torch.cat(columns, 1)
    return rows.flatten(0, 1), rows.shape[1], names
