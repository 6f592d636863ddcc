"""Artistic synthesis with the course's own generators (chapter 10).

* `class_means` and `analogy`: latent arithmetic in a VAE. The code of an image, minus
  the mean code of its class, plus the mean code of another class, decoded: "this 3,
  drawn as an 8", in the handwriting of the 3.
* `walk`: a loop through a VAE's latent space, spherical between the stops, back to
  where it began, for an animation or a strip.
* StyleGAN collages are `genedu.viz.mixing_grid`; textures from a photograph are
  `genedu.apps.style.texture`.
"""

from __future__ import annotations

import torch

from ..vae import VAE
from ..viz import slerp


@torch.no_grad()
def class_means(model: VAE, images: torch.Tensor, labels: torch.Tensor) -> dict[int, torch.Tensor]:
    """The mean posterior mean E[mu(x)] per class: {label: (latent_dim,)}.

    images: (N, C, H, W) in [0, 1], as the VAE takes them; labels: (N,) integers.
    """
    if labels.shape != (len(images),) or labels.is_floating_point():
        raise ValueError(f"class_means: expected {len(images)} integer labels, got {labels}")
    model.eval()
    mu = torch.cat([model.encode(b)[0] for b in images.split(500)])
    return {int(k): mu[labels == k].mean(0) for k in labels.unique()}


@torch.no_grad()
def analogy(
    model: VAE, x: torch.Tensor, source: torch.Tensor, target: torch.Tensor
) -> torch.Tensor:
    """Decode mu(x) - source + target for each image x (N, C, H, W): the mean images
    (N, C, H, W). source, target: codes (latent_dim,), such as two `class_means`."""
    d = model.config.latent_dim
    if source.shape != (d,) or target.shape != (d,):
        raise ValueError(
            f"analogy: expected source and target codes of shape ({d},), got "
            f"{tuple(source.shape)} and {tuple(target.shape)}"
        )
    model.eval()
    mu, _ = model.encode(x)
    return model.decode(mu - source + target)


@torch.no_grad()
def walk(model: VAE, stops: torch.Tensor, steps: int = 8, *, loop: bool = True) -> torch.Tensor:
    """Images (K·steps, C, H, W) along a path through the codes `stops` (K, latent_dim):
    `steps` frames from each stop towards the next (spherical), back to the first when
    `loop`, so the last frame leads into the first."""
    if stops.dim() != 2 or stops.shape[1] != model.config.latent_dim or len(stops) < 2:
        raise ValueError(
            f"walk: expected at least 2 codes of shape (K, {model.config.latent_dim}), "
            f"got {tuple(stops.shape)}"
        )
    if steps < 1:
        raise ValueError(f"walk: steps must be >= 1, got {steps}")
    ends = torch.cat([stops, stops[:1]]) if loop else stops
    path = [slerp(a, b, steps + 1)[:-1] for a, b in zip(ends[:-1], ends[1:], strict=True)]
    if not loop:
        path.append(stops[-1:])
    model.eval()
    return model.decode(torch.cat(path))
