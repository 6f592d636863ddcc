r"""The networks that diffusion and flow matching train: a small U-Net for images, an MLP
for points, each told the time $t$ (and, optionally, the class).

Both take ``(x_t, t, y)`` and return a tensor shaped like ``x_t``: the predicted noise for
DDPM, the velocity for flow matching (`genedu.diffusion`). The time is a float in
[0, 1] (DDPM passes its step over T), embedded with sines and cosines at geometric
frequencies (Vaswani et al. 2017; Ho et al. 2020, appendix B) and added to every block.
A class is an embedding added to the time's; the extra index `num_classes` is "no
class", which classifier-free guidance trains and samples with.

The U-Net (Ronneberger et al. 2015, as DDPM uses it) works at three resolutions, R, R/2
and R/4: residual blocks on the way down keep their outputs, and the way up
concatenates them, so fine detail need not pass through the 7×7 bottleneck.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def time_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    """t (N,) in [0, 1] -> (N, dim): sin and cos of 1000·t at frequencies 1 ... 1/10000."""
    half = dim // 2
    freqs = torch.exp(-math.log(10_000) * torch.arange(half, device=t.device) / half)
    angles = 1000 * t.float()[:, None] * freqs[None]
    emb = torch.cat([angles.sin(), angles.cos()], dim=1)
    return F.pad(emb, (0, dim - 2 * half))


class Conditioning(nn.Module):
    """(t, y) -> one vector per example: the time's embedding through an MLP, plus the
    class's embedding (index num_classes is "no class")."""

    def __init__(self, dim: int, num_classes: int):
        super().__init__()
        self.dim = dim
        self.mlp = nn.Sequential(nn.Linear(dim, dim), nn.SiLU(), nn.Linear(dim, dim))
        self.classes = nn.Embedding(num_classes + 1, dim) if num_classes else None

    def forward(self, t: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        e = self.mlp(time_embedding(t, self.dim).to(self.mlp[0].weight.dtype))
        return e if self.classes is None or y is None else e + self.classes(y)


def _groups(channels: int) -> int:
    return math.gcd(8, channels)


class ResBlock(nn.Module):
    """norm, SiLU, conv; add the conditioning; norm, SiLU, conv; plus the input."""

    def __init__(self, c_in: int, c_out: int, emb: int):
        super().__init__()
        self.norm1, self.conv1 = nn.GroupNorm(_groups(c_in), c_in), nn.Conv2d(c_in, c_out, 3, 1, 1)
        self.emb = nn.Linear(emb, c_out)
        self.norm2 = nn.GroupNorm(_groups(c_out), c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1)
        self.skip = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, x: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = h + self.emb(F.silu(e))[:, :, None, None]
        h = self.conv2(F.silu(self.norm2(h)))
        return self.skip(x) + h


class UNet(nn.Module):
    """A three-level U-Net for C×R×R' images (R and R' divisible by 4), `hidden`
    channels at full resolution and twice that below; 0.68M weights at hidden=32."""

    def __init__(self, channels: int, hidden: int, num_classes: int = 0):
        super().__init__()
        h, e = hidden, 4 * hidden
        self.cond = Conditioning(e, num_classes)
        self.stem = nn.Conv2d(channels, h, 3, 1, 1)
        self.down = nn.ModuleList(
            [ResBlock(h, h, e), ResBlock(h, 2 * h, e), ResBlock(2 * h, 2 * h, e)]
        )
        self.pool = nn.ModuleList([nn.Conv2d(h, h, 3, 2, 1), nn.Conv2d(2 * h, 2 * h, 3, 2, 1)])
        self.mid = ResBlock(2 * h, 2 * h, e)
        self.up = nn.ModuleList(
            [ResBlock(4 * h, 2 * h, e), ResBlock(4 * h, 2 * h, e), ResBlock(2 * h, h, e)]
        )
        # each upsampling: nearest x2, then a conv (to h channels at full resolution,
        # where convolutions cost the most)
        self.unpool = nn.ModuleList(
            [nn.Conv2d(2 * h, 2 * h, 3, 1, 1), nn.Conv2d(2 * h, h, 3, 1, 1)]
        )
        self.out_norm = nn.GroupNorm(_groups(h), h)
        self.out = nn.Conv2d(h, channels, 3, 1, 1)
        nn.init.zeros_(self.out.weight)  # the untrained network predicts 0
        nn.init.zeros_(self.out.bias)

    def forward(self, x: torch.Tensor, t: torch.Tensor, y: torch.Tensor | None = None):
        e = self.cond(t, y)
        h = self.stem(x)
        skips = []
        for i, block in enumerate(self.down):  # R, R/2, R/4
            h = block(h, e)
            skips.append(h)
            if i < len(self.pool):
                h = self.pool[i](h)
        h = self.mid(h, e)
        for i, block in enumerate(self.up):  # R/4, R/2, R
            h = block(torch.cat([h, skips.pop()], 1), e)
            if i < len(self.unpool):
                h = self.unpool[i](F.interpolate(h, scale_factor=2.0, mode="nearest"))
        return self.out(F.silu(self.out_norm(h)))


class MLP(nn.Module):
    """For points in R^d (2-D toys, a VAE's latent codes): residual SiLU layers of
    `hidden` units, each told the conditioning."""

    def __init__(self, dim: int, hidden: int, layers: int, num_classes: int = 0):
        super().__init__()
        self.cond = Conditioning(hidden, num_classes)
        self.inp = nn.Linear(dim, hidden)
        self.layers = nn.ModuleList(nn.Linear(hidden, hidden) for _ in range(layers))
        self.out = nn.Linear(hidden, dim)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, x: torch.Tensor, t: torch.Tensor, y: torch.Tensor | None = None):
        e = self.cond(t, y)
        h = self.inp(x) + e
        for layer in self.layers:
            h = h + layer(F.silu(h + e))
        return self.out(F.silu(h))
