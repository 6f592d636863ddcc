r"""StyleGAN: a generator steered by styles, small enough to train on a laptop.

References: Karras, Laine & Aila 2019 (StyleGAN: the mapping network z -> w of section 2,
AdaIN, eq. 1, per-layer noise, style mixing in section 3.1 and the truncation trick in
appendix B); Karras et al. 2020 (StyleGAN2: modulated convolution with demodulation,
eqs. 1-3, skip toRGB outputs, lazy R1, equalised learning rates); Zhao et al. 2020
(DiffAugment: the same differentiable augmentation of real and fake images, so D can
learn from a few hundred images).

What changes from DCGAN is the generator. z is first mapped to w = f(z) by an MLP. The
synthesis network starts from a learned constant, not from z, and every convolution
takes its own copy of w through a learned affine map to per-channel scales s. Those
scales modulate the convolution's weights,

$$w'_{ijk} = s_i \, w_{ijk}, \qquad
  w''_{ijk} = w'_{ijk} \Big/ \sqrt{\textstyle\sum_{i,k} w'^2_{ijk} + \epsilon},$$

(input channel i, output channel j, tap k), and demodulation (the second step) brings
each output channel back to unit variance for unit-variance inputs: what AdaIN did to
the activations, done to the weights. Per-pixel noise, scaled per layer, adds the
stochastic details. D is the GAN chapter's DCGAN discriminator (with the minibatch-std
feature), so the comparison with DCGAN changes G alone; training is the GAN chapter's
loop, `genedu.train.fit` with ``step=gan.train_step``, unchanged.

Images are floats in [0, 1] outside the model; G's raw output and D's input live in
[-1, 1]. The layers that take a w are numbered 0 .. num_ws-1, coarse (4×4) to fine.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from . import inputs
from .gan import GAN, LOSSES, Discriminator, GANConfig

NOISE_MODES = ("random", "fixed", "zero")  # resampled every call, drawn once, or off
AUGMENTS = ("color", "translation", "cutout")


@dataclass(frozen=True)
class StyleGANConfig:
    """A StyleGAN's shape and its training recipe (the defaults suit MNIST at 32×32)."""

    shape: tuple[int, int, int] = (1, 32, 32)  # (C, H, W): H = W, a power of two >= 8
    latent_dim: int = 64  # z
    w_dim: int = 64  # w, the style vector
    # depth of the MLP z -> w, and the share of style-mixing batches: the papers use 8
    # and 0.9; on 2 CPU threads 2 and 0.5 together gave FID 654.8 (recall 0.51) after 10
    # minutes on MNIST, against 860.1 (recall 0.32) for 4 and 0.9 (benchmarks/stylegan.py)
    mapping_layers: int = 2
    mapping_lr: float = 0.01  # the mapping's learning-rate multiplier (StyleGAN's 0.01)
    # channels at resolution r: min(hidden, base // r); 512 gives 64, 64, 32, 16 at
    # 4, 8, 16, 32: on 2 CPU threads 1.6x faster a step than 1024 (32 channels at 32×32)
    # and a lower FID after the same 8 minutes (922.6 against 2336.6, a sweep on MNIST)
    channel_base: int = 512
    hidden: int = 64  # G's width: the channels of its widest layers
    d_hidden: int = 64  # D: the DCGAN discriminator's first channels (genedu.gan)
    mixing: float = 0.5  # probability of a style-mixing pair in a training batch
    w_avg_beta: float = 0.995  # running average of w (the centre of truncation)
    augment: str = ""  # DiffAugment policy: "" or a comma list of AUGMENTS
    loss: str = "nonsaturating"
    r1_gamma: float = 0.05  # R1 weight w.r.t. [0, 1] images, as in genedu.gan
    r1_every: int = 16  # lazy R1 (StyleGAN2, section 3.1)
    ema_decay: float = 0.998

    # what genedu.gan's loop reads: an unconditional image GAN
    architecture = "stylegan"
    num_classes = 0

    def __post_init__(self):
        c, h, w = self.shape if len(self.shape) == 3 else (0, 0, 1)
        if c not in (1, 3) or h != w or h < 8 or h & (h - 1):
            raise ValueError(
                f"StyleGAN: shape must be (C, R, R) with C = 1 or 3 and R a power of two "
                f">= 8 (8, 16, 32, 64, ...), got {self.shape}"
            )
        for name in ("latent_dim", "w_dim", "mapping_layers", "channel_base", "hidden"):
            if getattr(self, name) < 1:
                raise ValueError(f"StyleGAN: {name} must be >= 1, got {getattr(self, name)}")
        if not (0 <= self.mixing <= 1 and 0 <= self.w_avg_beta < 1 and 0 <= self.ema_decay < 1):
            raise ValueError(
                f"StyleGAN: mixing in [0, 1], w_avg_beta and ema_decay in [0, 1), got "
                f"{self.mixing}, {self.w_avg_beta}, {self.ema_decay}"
            )
        if self.d_hidden < 1 or self.mapping_lr <= 0 or self.r1_gamma < 0 or self.r1_every < 1:
            raise ValueError(
                f"StyleGAN: d_hidden >= 1, mapping_lr > 0, r1_gamma >= 0 and r1_every >= 1, "
                f"got {self.d_hidden}, {self.mapping_lr}, {self.r1_gamma}, {self.r1_every}"
            )
        if self.loss not in LOSSES:
            raise ValueError(f"StyleGAN: loss must be one of {LOSSES}, got {self.loss!r}")
        unknown = set(filter(None, self.augment.split(","))) - set(AUGMENTS)
        if unknown:
            raise ValueError(f"StyleGAN: unknown augment {sorted(unknown)}; use {AUGMENTS}")

    @property
    def resolution(self) -> int:
        return self.shape[1]

    @property
    def num_ws(self) -> int:
        """Layers that take a w: at 4×4 a conv and a toRGB; per doubling two convs, one
        toRGB, whose w the next block's first conv shares: 2·log2(R) - 2."""
        return 2 * int(math.log2(self.resolution)) - 2

    def channels(self, r: int) -> int:
        return max(1, min(self.hidden, self.channel_base // r))


# --------------------------------------------------------------------- the building blocks


class EqualLinear(nn.Module):
    """A linear layer with an equalised learning rate: weights drawn from N(0, 1/lr_mul²),
    scaled by lr_mul/sqrt(fan_in) at run time, so Adam moves every layer alike."""

    def __init__(self, d_in: int, d_out: int, *, bias: float = 0.0, lr_mul: float = 1.0):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(d_out, d_in) / lr_mul)
        self.bias = nn.Parameter(torch.full((d_out,), float(bias) / lr_mul))
        self.scale, self.lr_mul = lr_mul / math.sqrt(d_in), lr_mul

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight * self.scale, self.bias * self.lr_mul)


def lrelu(x: torch.Tensor) -> torch.Tensor:
    """LeakyReLU(0.2) times sqrt(2), which keeps unit-variance activations near unit variance."""
    return F.leaky_relu(x, 0.2) * math.sqrt(2)


def pixel_norm(z: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Each vector scaled to unit root-mean-square: z / sqrt(mean(z²) + eps), (N, D)."""
    return z * torch.rsqrt(z.pow(2).mean(1, keepdim=True) + eps)


def adain(x: torch.Tensor, scale: torch.Tensor, bias: torch.Tensor, eps: float = 1e-5):
    r"""StyleGAN1's AdaIN (eq. 1): $y_s \frac{x - \mu(x)}{\sigma(x)} + y_b$, per example
    and channel. x (N, C, H, W); scale, bias (N, C)."""
    mu = x.mean((2, 3), keepdim=True)
    sigma = (x.var((2, 3), keepdim=True, unbiased=False) + eps).sqrt()
    return scale[:, :, None, None] * (x - mu) / sigma + bias[:, :, None, None]


def modulated_conv2d(
    x: torch.Tensor, weight: torch.Tensor, styles: torch.Tensor, *, demodulate: bool = True
) -> torch.Tensor:
    r"""StyleGAN2's modulated convolution (eqs. 1-3), 'same' padding.

    x (N, I, H, W); weight (O, I, k, k); styles s (N, I) -> (N, O, H, W). Each example
    convolves with its own weights $w'_{oik} = s_i w_{oik}$, demodulated when asked by
    $d_o = (\sum_{i,k} w'^2_{oik} + 10^{-8})^{-1/2}$. Computed as scale, shared conv,
    rescale: $(x \cdot s) * w \cdot d$ is the same number with one ordinary convolution.
    """
    if x.dim() != 4 or styles.shape != (x.shape[0], x.shape[1]):
        raise ValueError(
            f"modulated_conv2d: x (N, I, H, W) and styles (N, I), got {tuple(x.shape)} "
            f"and {tuple(styles.shape)}"
        )
    out = F.conv2d(x * styles[:, :, None, None], weight, padding=weight.shape[-1] // 2)
    if demodulate:  # ||w'_o||² = sum_i s_i² sum_k w_oik²: (N, O)
        d = torch.rsqrt(styles.pow(2) @ weight.pow(2).sum((2, 3)).t() + 1e-8)
        out = out * d[:, :, None, None]
    return out


class StyleLayer(nn.Module):
    """One styled layer: an affine map w -> s, a modulated conv, then for a conv layer
    noise (learned per-layer strength, zero at the start), bias and LeakyReLU. A toRGB
    layer is a 1×1 modulated conv without demodulation, noise or activation."""

    def __init__(self, c_in, c_out, w_dim, resolution, w_index, *, up=False, rgb=False):
        super().__init__()
        k = 1 if rgb else 3
        self.w_index, self.up, self.rgb = w_index, up, rgb
        self.affine = EqualLinear(w_dim, c_in, bias=1.0)  # s starts near 1
        self.weight = nn.Parameter(torch.randn(c_out, c_in, k, k))
        self.bias = nn.Parameter(torch.zeros(c_out))
        self.scale = 1 / math.sqrt(c_in * k * k)
        if not rgb:
            self.noise_strength = nn.Parameter(torch.zeros(()))
            g = torch.Generator().manual_seed(w_index)  # the "fixed" noise map, kept in the
            self.register_buffer(
                "fixed_noise", torch.randn(1, 1, resolution, resolution, generator=g)
            )

    def forward(self, x, w, noise: str = "random", generator: torch.Generator | None = None):
        if self.up:  # bilinear ×2 (StyleGAN2 uses a transposed conv and a FIR filter)
            x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
        s = self.affine(w) * self.scale  # (N, c_in)
        x = modulated_conv2d(x, self.weight, s, demodulate=not self.rgb)
        if not self.rgb:
            if noise == "random":  # drawn where the generator lives (the CPU for a seeded one)
                n, _, h, wd = x.shape
                dev = generator.device if generator is not None else x.device
                fresh = torch.randn(n, 1, h, wd, generator=generator, device=dev).to(x.device)
                x = x + self.noise_strength * fresh
            elif noise == "fixed":
                x = x + self.noise_strength * self.fixed_noise
        x = x + self.bias[None, :, None, None]
        return x if self.rgb else lrelu(x)


class MappingNetwork(nn.Module):
    """z (N, latent_dim) -> w (N, w_dim): pixel norm, then an MLP with slow learning rate.
    Keeps a running average of w, the centre that truncation pulls towards."""

    def __init__(self, c: StyleGANConfig):
        super().__init__()
        dims = [c.latent_dim] + [c.w_dim] * c.mapping_layers
        self.layers = nn.ModuleList(
            EqualLinear(a, b, lr_mul=c.mapping_lr) for a, b in zip(dims[:-1], dims[1:], strict=True)
        )
        self.register_buffer("w_avg", torch.zeros(c.w_dim))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = pixel_norm(z)
        for layer in self.layers:
            x = lrelu(layer(x))
        return x


class StyleGenerator(nn.Module):
    """The mapping network and the synthesis network: z -> w -> image in [-1, 1].

    Called as G(z) by `genedu.gan.train_step`: in training mode it updates the running
    average of w and, with probability `config.mixing`, mixes the styles of a second z
    from a random crossover on (style-mixing regularisation).
    """

    def __init__(self, c: StyleGANConfig):
        super().__init__()
        self.config = c
        self.mapping = MappingNetwork(c)
        r, ch = 4, c.channels(4)
        self.const = nn.Parameter(torch.randn(1, ch, 4, 4))
        layers = [
            StyleLayer(ch, ch, c.w_dim, 4, 0),
            StyleLayer(ch, c.shape[0], c.w_dim, 4, 1, rgb=True),
        ]
        while r < c.resolution:
            r, c_in, ch, i = 2 * r, ch, c.channels(2 * r), layers[-1].w_index
            layers += [
                StyleLayer(c_in, ch, c.w_dim, r, i, up=True),
                StyleLayer(ch, ch, c.w_dim, r, i + 1),
                StyleLayer(ch, c.shape[0], c.w_dim, r, i + 2, rgb=True),
            ]
        self.layers = nn.ModuleList(layers)

    def synthesis(
        self, ws: torch.Tensor, noise: str = "random", generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """ws (N, num_ws, w_dim), one w per layer -> images (N, C, R, R) in about [-1, 1].
        Each toRGB output is added to the upsampled image so far (StyleGAN2's skips)."""
        if noise not in NOISE_MODES:
            raise ValueError(f"StyleGAN: noise must be one of {NOISE_MODES}, got {noise!r}")
        c = self.config
        if ws.dim() != 3 or ws.shape[1:] != (c.num_ws, c.w_dim):
            raise ValueError(
                f"StyleGAN: ws must have shape (N, {c.num_ws}, {c.w_dim}), got {tuple(ws.shape)}"
            )
        x, img = self.const.expand(len(ws), -1, -1, -1), None
        for layer in self.layers:
            out = layer(x, ws[:, layer.w_index], noise, generator)
            if not layer.rgb:
                x = out
                continue
            if img is not None:  # the coarser image, upsampled, plus this scale's detail
                img = F.interpolate(img, scale_factor=2, mode="bilinear", align_corners=False)
            img = out if img is None else img + out
        return img

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        c = self.config
        w = self.mapping(z)
        ws = w[:, None].expand(-1, c.num_ws, -1)
        if self.training:
            with torch.no_grad():  # the running average of w, for truncation
                self.mapping.w_avg.lerp_(w.mean(0), 1 - c.w_avg_beta)
            if c.mixing > 0 and torch.rand(()) < c.mixing:
                cut = int(torch.randint(1, c.num_ws, ()))
                w2 = self.mapping(torch.randn_like(z))
                ws = torch.cat([ws[:, :cut], w2[:, None].expand(-1, c.num_ws - cut, -1)], 1)
        return self.synthesis(ws)


# ------------------------------------------------------------------ the discriminator


def diff_augment(x: torch.Tensor, policy: str) -> torch.Tensor:
    """DiffAugment (Zhao et al. 2020) on images (N, C, H, W): the same random,
    differentiable changes for real and fake images, so G gets gradients through them.
    "color": brightness ±0.5, contrast ×[0.5, 1.5] (and saturation for colour images);
    "translation": a shift of up to 1/8 of the side, zero-filled; "cutout": a zeroed
    square of half the side. Applied to [0, 1] images, so twice the paper's brightness
    range in [-1, 1] units, and its zeros are black where the paper's are mid-grey."""
    n, c, h, w = x.shape
    dev = x.device
    for op in filter(None, policy.split(",")):
        if op == "color":
            x = x + (torch.rand(n, 1, 1, 1, device=dev) - 0.5)
            if c == 3:
                mean = x.mean(1, keepdim=True)
                x = (x - mean) * (torch.rand(n, 1, 1, 1, device=dev) * 2) + mean
            mean = x.mean((1, 2, 3), keepdim=True)
            x = (x - mean) * (torch.rand(n, 1, 1, 1, device=dev) + 0.5) + mean
        elif op == "translation":
            s = h // 8
            shift = torch.randint(-s, s + 1, (2, n, 1), device=dev)
            rows = torch.arange(h, device=dev) + shift[0] + s  # (N, H) into the padded image
            cols = torch.arange(w, device=dev) + shift[1] + s
            padded = F.pad(x, (s, s, s, s))
            x = padded[
                torch.arange(n, device=dev)[:, None, None], :, rows[:, :, None], cols[:, None, :]
            ]
            x = x.permute(0, 3, 1, 2)  # advanced indexing put the channels last
        elif op == "cutout":
            half = torch.tensor([h // 2, w // 2], device=dev)
            centre = (
                torch.rand(2, n, 1, device=dev) * torch.tensor([h, w], device=dev)[:, None, None]
            ).long()
            ys = torch.arange(h, device=dev)[None] - centre[0] + half[0] // 2  # (N, H)
            xs = torch.arange(w, device=dev)[None] - centre[1] + half[1] // 2
            inside = ((ys >= 0) & (ys < half[0]))[:, :, None] & ((xs >= 0) & (xs < half[1]))[
                :, None, :
            ]
            x = x * (~inside)[:, None].to(x.dtype)
        else:
            raise ValueError(f"diff_augment: unknown augmentation {op!r}; use {AUGMENTS}")
    return x


class AugmentedDiscriminator(nn.Module):
    """The GAN chapter's DCGAN discriminator, with the minibatch-std feature, behind
    DiffAugment: x (N, C, R, R) in [0, 1] -> one logit per image, (N,). In training mode
    every image it sees, real or fake, passes through `config.augment` first."""

    def __init__(self, c: StyleGANConfig):
        super().__init__()
        self.config = c
        self.net = Discriminator(GANConfig(shape=c.shape, hidden=c.d_hidden, minibatch_std=True))

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        if self.training and self.config.augment:
            x = diff_augment(x, self.config.augment)
        return self.net(x)


# ---------------------------------------------------------------------------- the model


class StyleGAN(GAN):
    """G (`StyleGenerator`) and D (`AugmentedDiscriminator`) in one module, trained by
    ``genedu.train.fit(model, images, step=genedu.gan.train_step)`` like any GAN (use lr
    2e-3 and betas (0, 0.99), StyleGAN2's Adam).

    D is the DCGAN's (see `AugmentedDiscriminator`): only G differs from the GAN chapter.
    `sample(n, psi=...)`, `mix(z1, z2, crossover)` and `generate(z, ...)` draw from the
    EMA generator when there is one; every one of them takes `noise`: "fixed" (the
    default, the noise maps drawn once and kept in the checkpoint, so one z gives one
    image), "random" (fresh maps from `generator` on every call, as in training) or
    "zero"; and a `generator` for the latents and the noise maps.
    """

    def players(self, config: StyleGANConfig) -> tuple[nn.Module, nn.Module]:
        return StyleGenerator(config), AugmentedDiscriminator(config)

    @property
    def g(self) -> StyleGenerator:
        """The generator that draws: the EMA copy when there is one."""
        return self.player(ema=True)

    def player(self, *, ema: bool = True) -> StyleGenerator:
        """G's EMA copy (when there is one, and `ema`), else the generator being trained."""
        return self.generator_ema if ema and self.generator_ema is not None else self.generator

    def w(self, z: torch.Tensor, psi: float = 1.0, *, ema: bool = True) -> torch.Tensor:
        r"""The truncated style $\bar w + \psi (f(z) - \bar w)$: (N, latent_dim) -> (N, w_dim).
        psi = 1 leaves w alone; psi = 0 gives the average w for every z."""
        psi = inputs.number(psi, "StyleGAN: psi", low=0, high=1)
        inputs.vectors(z, self.config.latent_dim, what="StyleGAN: z",
                       dtype=next(self.parameters()).dtype)  # fmt: skip
        g = self.player(ema=ema)
        w = g.mapping(z)
        return torch.lerp(g.mapping.w_avg, w, psi) if psi != 1.0 else w

    def synthesize(self, ws, *, noise: str = "fixed", generator=None, ema: bool = True):
        """ws (N, num_ws, w_dim) -> images in [0, 1]."""
        return ((self.player(ema=ema).synthesis(ws, noise, generator) + 1) / 2).clamp(0, 1)

    def generate(
        self, z, y=None, *, psi: float = 1.0, noise: str = "fixed", generator=None, ema=True
    ):
        """Images in [0, 1] for latents z (N, latent_dim), truncated by psi; from the EMA
        generator unless ema=False."""
        inputs.labels(y, len(z), 0, what="StyleGAN.generate")
        ws = self.w(z, psi, ema=ema)[:, None].expand(-1, self.config.num_ws, -1)
        return self.synthesize(ws, noise=noise, generator=generator, ema=ema)

    @torch.no_grad()
    def sample(self, n: int, *, generator=None, y=None, psi: float = 1.0, noise: str = "fixed"):
        """n images (n, C, R, R) in [0, 1]: z ~ N(0, I), truncated by psi, in eval mode."""
        n = inputs.count(n, "StyleGAN.sample: n")
        inputs.labels(y, n, 0, what="StyleGAN.sample")
        z = self.noise(n, generator)
        was_training = self.training
        self.eval()
        try:
            parts = [
                self.generate(z[i : i + 2000], psi=psi, noise=noise, generator=generator)
                for i in range(0, max(n, 1), 2000)
            ]
            return torch.cat(parts)
        finally:
            self.train(was_training)

    @torch.no_grad()
    def mix(
        self, z1, z2, crossover: int, *, psi: float = 1.0, noise: str = "fixed", generator=None
    ):
        """Images whose layers 0 .. crossover-1 (the coarse ones) take w1 = f(z1) and the
        rest take w2 = f(z2). crossover = 0 is z2's image, num_ws is z1's."""
        k = self.config.num_ws
        crossover = inputs.count(crossover, "StyleGAN.mix: crossover", minimum=0)
        if crossover > k:
            raise ValueError(f"StyleGAN: crossover must lie in 0..{k} (num_ws), got {crossover}")
        dtype = next(self.parameters()).dtype
        inputs.vectors(z1, self.config.latent_dim, what="StyleGAN.mix: z1", dtype=dtype)
        inputs.vectors(z2, self.config.latent_dim, what="StyleGAN.mix: z2", dtype=dtype)
        if z1.shape != z2.shape:
            raise ValueError(
                f"StyleGAN: z1 and z2 must match, got {tuple(z1.shape)}, {tuple(z2.shape)}"
            )
        w1, w2 = self.w(z1, psi), self.w(z2, psi)
        ws = torch.stack([w1] * crossover + [w2] * (k - crossover), 1)
        return self.synthesize(ws, noise=noise, generator=generator)
