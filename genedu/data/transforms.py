"""What every family does to images on the way in: checks, [0, 1] floats, a square
side, binarisation; and the 2-D toy sets."""

from __future__ import annotations

import torch

from .types import (
    check_images,
)

# ----------------------------------------------------------------------------- checks


def to_unit(images: torch.Tensor) -> torch.Tensor:
    """uint8 images in 0..255 to float32 in [0, 1]."""
    check_images(images)
    return images.float() / 255.0


def to_square(images: torch.Tensor, size: int) -> torch.Tensor:
    """Images (N, C, H, W), uint8 or float in [0, 1], as floats of size × size.

    Larger square images are average-pooled down by a whole factor (Olivetti 64 -> 32);
    smaller ones are padded evenly by repeating their border (Frey 28×20 -> 32×32 with
    its own background; MNIST 28 -> 32 with its black edge). The GANs' sides must be
    powers of two or multiples of 4, which the course's datasets are not.
    """
    x = images.float() / 255 if images.dtype == torch.uint8 else images
    h, w = x.shape[-2:]
    pool = h // size if h == w and h > size and h % size == 0 else 1
    h, w = h // pool, w // pool
    pads = ((size - w) // 2, (size - w + 1) // 2, (size - h) // 2, (size - h + 1) // 2)
    if min(pads) < 0:
        raise ValueError(
            f"to_square: {tuple(images.shape[-2:])} images neither pool down by a whole "
            f"factor nor pad up to {size}×{size}"
        )
    x = torch.nn.functional.avg_pool2d(x, pool) if pool > 1 else x
    return torch.nn.functional.pad(x, pads, mode="replicate") if any(pads) else x


def binarize(
    images: torch.Tensor,
    *,
    generator: torch.Generator | None = None,
    threshold: float | None = None,
) -> torch.Tensor:
    """Binarise uint8 images to float32 {0, 1}, same shape.

    Dynamic binarisation (the default) draws each pixel from Bernoulli(intensity / 255),
    afresh on every call: the standard protocol for likelihoods on binarised MNIST
    (Salakhutdinov & Murray 2008). With `threshold` (in [0, 1]) it is a fixed cut.
    """
    p = to_unit(images)
    if threshold is not None:
        if not 0.0 <= threshold <= 1.0:
            raise ValueError(f"threshold must be in [0, 1], got {threshold}")
        return (p > threshold).float()
    return torch.bernoulli(p, generator=generator)


def toy_2d(name: str, n: int, *, generator: torch.Generator | None = None) -> torch.Tensor:
    """Samples (n, 2) from a 2-D toy distribution: "ring" (8 Gaussians), "moons" or "spiral"."""
    g = generator
    if name == "ring":
        k = torch.randint(0, 8, (n,), generator=g)
        angle = k.float() * (2 * torch.pi / 8)
        centres = 2.0 * torch.stack([angle.cos(), angle.sin()], dim=1)
        return centres + 0.05 * torch.randn(n, 2, generator=g)
    if name == "moons":
        upper = torch.rand(n, generator=g) < 0.5
        t = torch.rand(n, generator=g) * torch.pi
        x = torch.where(upper, t.cos(), 1 - t.cos())
        y = torch.where(upper, t.sin(), 0.5 - t.sin())
        return torch.stack([x - 0.5, y - 0.25], dim=1) + 0.08 * torch.randn(n, 2, generator=g)
    if name == "spiral":
        t = 3 * torch.pi * torch.rand(n, generator=g).sqrt()
        xy = torch.stack([t * t.cos(), t * t.sin()], dim=1) / (1.5 * torch.pi)
        return xy + 0.08 * torch.randn(n, 2, generator=g)
    raise ValueError(f"unknown toy distribution {name!r}: expected 'ring', 'moons' or 'spiral'")
