r"""PixelCNN: an image generated pixel by pixel, each pixel drawn given the ones before it.

References: van den Oord, Kalchbrenner & Kavukcuoglu 2016a ("Pixel Recurrent Neural
Networks": masks A and B, section 3.4 and figure 2); van den Oord et al. 2016b
("Conditional Image Generation with PixelCNN Decoders": gated activations, eq. 2, the
vertical and horizontal stacks of figure 2, conditioning, eq. 4); Salimans et al. 2017
(PixelCNN++: the discretised logistic mixture, eq. 2, and its channel coefficients,
eq. 3); Ramachandran et al. 2017 (fast generation by caching what earlier positions
computed).

In raster order $x_1, \dots, x_D$, the chain rule of probability is exact:

$$p(x) = \prod_{t=1}^{D} p(x_t \mid x_1, \dots, x_{t-1}),$$

so $\log p(x)$ is a sum of per-pixel terms that one masked network computes for every
pixel at once. Every number here is in nats per image unless it says bits/dim.

Outputs: ``"bernoulli"`` (binarised digits, one logit per pixel), ``"categorical"``
(256 logits per pixel and channel) and ``"logistic"`` (a mixture of discretised
logistics). The network sees whole pixels: inside a colour pixel, the mixture links
G to R and B to R and G through its coefficients, while the categorical output treats
the three channels as independent given the pixels before.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from . import inputs
from .logistic import channel_mean, logistic_mixture_log_prob, mixture_parts

LIKELIHOODS = ("bernoulli", "categorical", "logistic")
LEVELS = 256  # grey levels of an 8-bit channel


@dataclass(frozen=True)
class PixelCNNConfig:
    """The shape of the images, the network's size, and the output distribution."""

    shape: tuple[int, int, int] = (1, 28, 28)  # C×H×W
    hidden: int = 64  # width: every layer's feature maps
    layers: int = 8  # gated layers (GatedPixelCNN) or mask-B blocks after mask A (PixelCNN)
    kernel: int = 3  # odd; the size of every layer's kernel but PixelCNN's first
    first_kernel: int = 7  # PixelCNN's mask-A layer
    likelihood: str = "bernoulli"
    mixtures: int = 5  # components of the "logistic" output
    num_classes: int = 0  # > 0: class-conditional, p(x | y)

    def __post_init__(self):
        c, h, w = self.shape
        problems = []
        if c not in (1, 3) or h < 1 or w < 1:
            problems.append(f"shape must be (C, H, W) with C = 1 or 3, got {self.shape}")
        if self.likelihood not in LIKELIHOODS:
            problems.append(f"likelihood must be one of {LIKELIHOODS}, got {self.likelihood!r}")
        for name in ("kernel", "first_kernel"):
            k = getattr(self, name)
            if k < 3 or k % 2 == 0:
                problems.append(f"{name} must be odd and >= 3, got {k}")
        if self.hidden < 1 or self.layers < 1 or self.mixtures < 1 or self.num_classes < 0:
            problems.append(
                "hidden, layers and mixtures must be >= 1 and num_classes >= 0, got "
                f"{self.hidden}, {self.layers}, {self.mixtures} and {self.num_classes}"
            )
        if problems:
            raise ValueError("PixelCNNConfig: " + "; ".join(problems))

    @property
    def outputs(self) -> int:
        """Distribution parameters per pixel."""
        c = self.shape[0]
        if self.likelihood == "bernoulli":
            return c
        if self.likelihood == "categorical":
            return LEVELS * c
        return self.mixtures * (1 + 2 * c + c * (c - 1) // 2)  # weight, means, scales, coeffs


class MaskedConv2d(nn.Conv2d):
    """A k×k convolution that sees only earlier pixels in raster order.

    Mask A (the first layer) hides the centre pixel too; mask B (every later layer)
    lets a feature see its own position, which holds only earlier pixels' information.
    The mask multiplies the weight in `forward`, so the hidden weights stay untouched.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, mask_type: str):
        if mask_type not in ("A", "B"):
            raise ValueError(f"mask_type must be 'A' or 'B', got {mask_type!r}")
        if kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd, got {kernel_size}")
        super().__init__(in_channels, out_channels, kernel_size, padding=kernel_size // 2)
        mask = torch.ones(kernel_size, kernel_size)
        centre = kernel_size // 2
        mask[centre, centre + (mask_type == "B") :] = 0  # the centre row: only the left
        mask[centre + 1 :] = 0  # every row below
        self.mask_type = mask_type
        self.register_buffer("mask", mask[None, None].expand_as(self.weight).clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight * self.mask, self.bias, padding=self.padding)


def shift_down(x: torch.Tensor) -> torch.Tensor:
    """Move (B, C, H, W) maps one row down, zeros in the top row: row i now holds row i-1."""
    return F.pad(x, (0, 0, 1, 0))[:, :, :-1]


def shift_right(x: torch.Tensor) -> torch.Tensor:
    """Move (B, C, H, W) maps one column right, zeros in the first column."""
    return F.pad(x, (1, 0))[..., :-1]


def gate(x: torch.Tensor) -> torch.Tensor:
    """The gated activation tanh(a) ⊙ σ(b) of van den Oord et al. 2016b, eq. 2."""
    a, b = x.chunk(2, dim=1)
    return torch.tanh(a) * torch.sigmoid(b)


def _inverse_cdf(probs: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """Index k with CDF(k-1) < u <= CDF(k), for probs (B, K) and u (B,): a draw of k."""
    cdf = probs.cumsum(dim=1)
    return torch.searchsorted(cdf, u[:, None].contiguous()).squeeze(1).clamp(max=probs.shape[1] - 1)


class _PixelModel(nn.Module):
    """What both PixelCNNs share: the likelihood, sampling and completion."""

    def __init__(self, config: PixelCNNConfig):
        super().__init__()
        self.config = config
        f = config.hidden
        self.head = nn.Sequential(
            nn.ReLU(), nn.Conv2d(f, f, 1), nn.ReLU(), nn.Conv2d(f, config.outputs, 1)
        )

    # ------------------------------------------------------------ checks
    def _check(self, x: torch.Tensor, what: str) -> None:
        """A Bernoulli PixelCNN models binary images; the others 8-bit grey levels."""
        values = "binary" if self.config.likelihood == "bernoulli" else "levels"
        inputs.images(x, self.config.shape, what=f"PixelCNN.{what}", values=values,
                      dtype=self.head[1].weight.dtype)  # fmt: skip

    def _labels(self, y, n: int, what: str = "PixelCNN") -> torch.Tensor | None:
        y = inputs.labels(y, n, self.config.num_classes, what=what)
        return None if y is None else y.to(self.head[1].weight.device)

    # ------------------------------------------------------------ the distribution
    def _params(self, raw: torch.Tensor) -> torch.Tensor:
        """Raw head output (B, P, ...) in the layout the likelihood names."""
        if self.config.likelihood == "categorical":
            return raw.reshape(raw.shape[0], LEVELS, self.config.shape[0], *raw.shape[2:])
        return raw

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """Per-pixel distribution parameters in the image's layout: Bernoulli logits
        (B, C, H, W), categorical logits (B, 256, C, H, W), or the logistic mixture's
        (B, M·(1+2C+C(C-1)/2), H, W). Position (i, j) depends only on earlier pixels."""
        self._check(x, "forward")
        return self._params(self._network(x, self._labels(y, len(x))))

    def log_prob(self, x: torch.Tensor, *, y: torch.Tensor | None = None) -> torch.Tensor:
        """Exact log p(x | y), or log p(x), in nats per image, shape (B,).

        A class-conditional model given no labels returns the exact marginal
        log p(x) = log Σ_y p(y) p(x | y) under a uniform class prior p(y) = 1/K.
        """
        k = self.config.num_classes
        if k and y is None:
            self._check(x, "log_prob")
            per_class = [self.log_prob(x, y=torch.full((len(x),), c)) for c in range(k)]
            return torch.logsumexp(torch.stack(per_class), 0) - math.log(k)
        return self.log_prob_pixels(x, y).flatten(1).sum(1)

    def log_prob_pixels(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """The chain rule's terms: log p(x_t | x_<t) of every pixel, (B, H, W) in nats
        (the channels of a pixel summed). Their sum over the image is log p(x)."""
        params = self.forward(x, y)
        kind = self.config.likelihood
        if kind == "bernoulli":
            per_value = -F.binary_cross_entropy_with_logits(params, x, reduction="none")
        elif kind == "categorical":
            target = (x * (LEVELS - 1)).round().long()
            per_value = F.log_softmax(params, dim=1).gather(1, target[:, None]).squeeze(1)
        else:
            return logistic_mixture_log_prob(params, x, self.config.mixtures)
        return per_value.sum(1)

    def bits_per_dim(self, x: torch.Tensor, *, y: torch.Tensor | None = None) -> torch.Tensor:
        """-log2 p(x) / D per image: nats divided by D·ln 2."""
        return -self.log_prob(x, y=y) / (x[0].numel() * math.log(2))

    def loss(self, batch) -> dict[str, torch.Tensor]:
        """Mean negative log-likelihood in nats per image; batch is x or (x, labels)."""
        x, y = (batch, None) if isinstance(batch, torch.Tensor) else batch
        if self.config.num_classes == 0:
            y = None  # (images, labels) batches also train an unconditional model
        nll = -self.log_prob(x, y=y).mean()
        return {"loss": nll, "bits_per_dim": nll / (x[0].numel() * math.log(2))}

    # ------------------------------------------------------------ generation
    def _draw(self, raw: torch.Tensor, u: torch.Tensor, x: torch.Tensor, known: torch.Tensor):
        """New values (B, C) for one pixel from raw head output (B, P), uniforms (B, C+1),
        the pixel's current values x (B, C) and which of them are known (B, C)."""
        c, kind = self.config.shape[0], self.config.likelihood
        if kind == "bernoulli":
            new = (u[:, :c] < torch.sigmoid(raw)).to(x.dtype)
            return torch.where(known, x, new)
        if kind == "categorical":
            probs = F.softmax(raw.reshape(-1, LEVELS, c), dim=1)
            new = torch.stack([_inverse_cdf(probs[:, :, ch], u[:, ch]) for ch in range(c)], 1)
            return torch.where(known, x, new.to(x.dtype) / (LEVELS - 1))
        logit_w, means, log_s, coeffs = mixture_parts(raw, c, self.config.mixtures)
        k = _inverse_cdf(F.softmax(logit_w, dim=1), u[:, c])[:, None]  # the component
        pick = lambda t: t.gather(1, k[:, :, None].expand(-1, 1, t.shape[2]))[:, 0]  # noqa: E731
        means, log_s, coeffs = pick(means), pick(log_s), pick(coeffs)
        xs, new = 2 * x - 1, x.clone()  # xs: [-1, 1] units, what the means move with
        for ch in range(c):
            mean = channel_mean(means[:, None], coeffs[:, None], xs, ch)[:, 0]
            uu = u[:, ch].clamp(1e-5, 1 - 1e-5)
            value = mean + torch.exp(log_s[:, ch]) * (torch.log(uu) - torch.log1p(-uu))
            level = ((value.clamp(-1, 1) + 1) * (LEVELS - 1) / 2).round()
            new[:, ch] = torch.where(known[:, ch], x[:, ch], level / (LEVELS - 1))
            xs[:, ch] = 2 * new[:, ch] - 1
        return new

    @torch.no_grad()
    def _generate(self, x, known, y, generator, method: str) -> torch.Tensor:
        if method not in ("cached", "naive"):
            raise ValueError(f"method must be 'cached' or 'naive', got {method!r}")
        n, (c, h, w) = len(x), self.config.shape
        u = torch.rand(n, c + 1, h, w, generator=generator).to(x.device)  # drawn up front
        unknown = (~known).any(0).any(0).flatten().nonzero()
        first = unknown[0].item() if len(unknown) else h * w
        x = x.clone()
        for i in range(first // w, h):
            cache = self._row_cache(x, i, y) if method == "cached" else None
            for j in range(first - i * w if i == first // w else 0, w):
                if method == "cached":
                    raw = self._raw_at(x, i, j, y, cache)
                else:
                    raw = self._network(x, y)[:, :, i, j]
                x[:, :, i, j] = self._draw(raw, u[:, :, i, j], x[:, :, i, j], known[:, :, i, j])
        return x

    def sample(
        self,
        n: int,
        *,
        generator: torch.Generator | None = None,
        method: str = "cached",
        y: torch.Tensor | int | None = None,
    ) -> torch.Tensor:
        """n images (n, C, H, W) in [0, 1], drawn pixel by pixel in raster order.

        method="naive" reruns the whole network for every pixel; "cached" recomputes only
        what the pixel depends on. Both draw the same uniforms from `generator`, so they
        give the same images. y: class labels (n,) or one int; a conditional model given
        none draws each image's class from the uniform prior first.
        """
        n = inputs.count(n, "PixelCNN.sample: n")
        if self.config.num_classes and y is None:
            y = torch.randint(self.config.num_classes, (n,), generator=generator)
        y = self._labels(y, n, "PixelCNN.sample")
        x = torch.zeros(n, *self.config.shape, device=self.head[1].weight.device)
        return self._generate(x, torch.zeros_like(x, dtype=torch.bool), y, generator, method)

    def complete(
        self,
        x: torch.Tensor,
        known_mask: torch.Tensor,
        *,
        generator: torch.Generator | None = None,
        method: str = "cached",
        y: torch.Tensor | int | None = None,
    ) -> torch.Tensor:
        """Fill the unknown pixels of x from the first unknown one on, in raster order.

        known_mask: bool, broadcastable to x as (N or 1, C or 1, H, W); known pixels are
        returned unchanged. A PixelCNN conditions only on what comes before, so known
        pixels after the first unknown one are kept but not looked ahead to.
        y: class labels; a conditional model given none draws each image's class
        from its exact posterior given the known pixels before the first unknown one,
        p(y | x_<t) ∝ p(y) p(x_<t | y).
        """
        self._check(x, "complete")
        if (
            not isinstance(known_mask, torch.Tensor)
            or known_mask.dtype != torch.bool
            or known_mask.dim() != 4
            or known_mask.shape[0] not in (1, len(x))
            or known_mask.shape[1] not in (1, x.shape[1])
            or known_mask.shape[2:] != x.shape[2:]
        ):
            raise ValueError(
                f"known_mask: expected a bool tensor of shape (N or 1, C or 1, H, W) for x of "
                f"shape {tuple(x.shape)}, got {getattr(known_mask, 'dtype', type(known_mask))} "
                f"{tuple(getattr(known_mask, 'shape', ()))}"
            )
        x = x.to(self.head[1].weight.device)
        known = known_mask.to(x.device).expand_as(x)
        if self.config.likelihood == "logistic" and (known != known[:, :1]).any():
            raise ValueError(
                "known_mask: the logistic mixture draws a pixel's channels together, so "
                "each pixel must be known or unknown as a whole (pass shape (N, 1, H, W))"
            )
        if self.config.num_classes and y is None:
            posterior = self._class_posterior(x, known).cpu()  # the generator lives on the CPU
            y = posterior.multinomial(1, generator=generator)[:, 0]
        return self._generate(x, known, self._labels(y, len(x), "PixelCNN.complete"), generator,
                              method)  # fmt: skip

    @torch.no_grad()
    def _class_posterior(self, x: torch.Tensor, known: torch.Tensor) -> torch.Tensor:
        """p(y | the pixels before the first unknown one), (B, K), under a uniform p(y)."""
        n, k = len(x), self.config.num_classes
        prefix = known.all(1).flatten(1).cumprod(1).view(n, *x.shape[2:]).bool()
        x_filled = torch.where(known, x, torch.zeros_like(x))  # valid values; unread anyway
        log_lik = torch.stack(
            [(self.log_prob_pixels(x_filled, torch.full((n,), c)) * prefix).flatten(1).sum(1)
             for c in range(k)], 1
        )  # fmt: skip
        return F.softmax(log_lik, dim=1)


def receptive_field(model: _PixelModel, i: int, j: int, *, examples: int = 4) -> torch.Tensor:
    """Which inputs the output at pixel (i, j) depends on: an (H, W) bool map of the
    non-zero gradients of every parameter there, over a few random inputs."""
    c, h, w = model.config.shape
    x = torch.rand(examples, c, h, w, generator=torch.Generator().manual_seed(0))
    x = x.to(next(model.parameters()))  # the model's device and dtype
    x = (x > 0.5).to(x.dtype) if model.config.likelihood == "bernoulli" else (x * 255).round() / 255
    x.requires_grad_(True)
    k = model.config.num_classes
    y = model._labels(torch.arange(examples) % k if k else None, examples)
    with torch.enable_grad():
        raw = model._network(x, y)[:, :, i, j]
        (grad,) = torch.autograd.grad(raw.sum() + (raw**2).sum(), x)
    return grad.abs().sum((0, 1)) > 0


class PixelCNN(_PixelModel):
    """van den Oord et al. 2016a: a mask-A layer, then residual mask-B blocks.

    Stacked masked k×k kernels never see the pixels up and to the right beyond a
    diagonal: the blind spot (2016b, figure 1), which `receptive_field` shows.
    """

    def __init__(self, config: PixelCNNConfig = PixelCNNConfig()):
        super().__init__(config)
        c, f = config.shape[0], config.hidden
        self.first = MaskedConv2d(c, f, config.first_kernel, "A")
        self.blocks = nn.ModuleList(
            MaskedConv2d(f, f, config.kernel, "B") for _ in range(config.layers)
        )
        n = config.num_classes
        self.embed = nn.Embedding(n, f * (config.layers + 1)) if n else None
        # rows (and columns each side) a pixel's output can reach back
        self.reach = config.first_kernel // 2 + config.layers * (config.kernel // 2)

    def _network(self, x: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        bias = (
            self.embed(y)[..., None, None].chunk(len(self.blocks) + 1, 1) if y is not None else None
        )
        h = self.first(2 * x - 1)  # (B, F, H, W), inputs in [-1, 1]
        if bias is not None:
            h = h + bias[0]
        for k, block in enumerate(self.blocks):
            h = h + block(F.relu(h))
            if bias is not None:
                h = h + bias[k + 1]
        return self.head(h)

    def _row_cache(self, x, i, y):
        return None  # every pixel recomputes only its window

    def _raw_at(self, x, i, j, y, cache) -> torch.Tensor:
        """The output at (i, j) from the window of rows and columns it can reach."""
        r0, c0 = max(0, i - self.reach), max(0, j - self.reach)
        window = x[:, :, r0 : i + 1, c0 : j + self.reach + 1]
        return self._network(window, y)[:, :, i - r0, j - c0]


class GatedLayer(nn.Module):
    """One layer of the gated PixelCNN (van den Oord et al. 2016b, figure 2).

    The vertical stack sees the rows above, every column of its reach; it is computed
    on rows up to and including the current one and reaches the horizontal stack one
    row down, so nothing of the current row leaks. The horizontal stack sees the
    current row to the left. Together: no blind spot. The first layer shifts its
    horizontal stack one column right, hiding the pixel itself (what mask A does).
    """

    def __init__(self, in_channels: int, channels: int, kernel: int, first: bool, classes: int):
        super().__init__()
        self.p, self.first = kernel // 2, first
        self.vertical = nn.Conv2d(in_channels, 2 * channels, (self.p + 1, kernel))  # rows i-p..i
        self.horizontal = nn.Conv2d(in_channels, 2 * channels, (1, self.p + 1))  # cols j-p..j
        self.link = nn.Conv2d(2 * channels, 2 * channels, 1)  # vertical -> horizontal
        self.out = nn.Conv2d(channels, channels, 1)
        self.embed = nn.Embedding(classes, 4 * channels) if classes else None  # eq. 4's V·h

    def vertical_pre(self, v: torch.Tensor, bias) -> torch.Tensor:
        """The vertical stack's pre-activation (B, 2F, H, W): rows up to the current one."""
        pre = self.vertical(F.pad(v, (self.p, self.p, self.p, 0)))
        return pre if bias is None else pre + bias[0]

    def horizontal_out(self, h: torch.Tensor, v_pre_above: torch.Tensor, bias) -> torch.Tensor:
        """The horizontal stack's output (B, F, H, W), given the vertical pre-activation of
        the row above (already shifted down)."""
        pre = self.horizontal(F.pad(h, (self.p, 0)))
        if self.first:
            pre = shift_right(pre)
        pre = pre + self.link(v_pre_above)
        if bias is not None:
            pre = pre + bias[1]
        out = self.out(gate(pre))
        return out if self.first else h + out  # a residual connection after the first

    def bias(self, y: torch.Tensor | None):
        """The class's two biases, (B, 2F, 1, 1) each for the two stacks, or None."""
        return self.embed(y)[..., None, None].chunk(2, 1) if y is not None else None

    def forward(self, v: torch.Tensor, h: torch.Tensor, y: torch.Tensor | None):
        """One layer on both stacks: (v, h) in, (v, h) out, each (B, F, H, W)."""
        bias = self.bias(y)
        v_pre = self.vertical_pre(v, bias)
        return gate(v_pre), self.horizontal_out(h, shift_down(v_pre), bias)


class GatedPixelCNN(_PixelModel):
    """van den Oord et al. 2016b: gated vertical and horizontal stacks, no blind spot,
    optionally conditioned on a class (eq. 4).

    Cached sampling: the vertical stack of row i depends only on rows above, so it runs
    once per row; each pixel then reruns only the horizontal stack on the few columns to
    its left that it can reach (in the spirit of Ramachandran et al. 2017).
    """

    def __init__(self, config: PixelCNNConfig = PixelCNNConfig()):
        super().__init__(config)
        c, f, k = config.shape[0], config.hidden, config.kernel
        self.layers = nn.ModuleList(
            GatedLayer(c if n == 0 else f, f, k, n == 0, config.num_classes)
            for n in range(config.layers)
        )
        self.reach = config.layers * (k // 2) + 1  # columns (and rows) back a pixel can see

    def _network(self, x: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        v = h = 2 * x - 1  # inputs in [-1, 1]
        for layer in self.layers:
            v, h = layer(v, h, y)
        return self.head(h)

    def _row_cache(self, x, i, y) -> list[tuple[torch.Tensor, tuple | None]]:
        """Per layer: the vertical pre-activation of row i-1, (B, 2F, 1, W), which row i's
        horizontal stack links to (zeros above the top row), and the class's biases."""
        r0 = max(0, i - self.reach)
        v, cache = 2 * x[:, :, r0:i] - 1, []
        for layer in self.layers:
            bias = layer.bias(y)  # once per row, not once per pixel
            if i == 0:
                above = x.new_zeros(len(x), layer.link.in_channels, 1, x.shape[3])
            else:
                v_pre = layer.vertical_pre(v, bias)
                above, v = v_pre[:, :, -1:], gate(v_pre)
            cache.append((above, bias))
        return cache

    def _raw_at(self, x, i, j, y, cache) -> torch.Tensor:
        c0 = max(0, j - self.reach)
        h = 2 * x[:, :, i : i + 1, c0 : j + 1] - 1
        for layer, (above, bias) in zip(self.layers, cache, strict=True):
            h = layer.horizontal_out(h, above[..., c0 : j + 1], bias)
        return self.head(h[..., -1:])[:, :, 0, 0]
