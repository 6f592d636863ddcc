"""The feature extractors style transfer compares images by: an image in, feature maps
at named layers out.

`RandomFeatures` is the offline default: a small multi-scale network with seeded random
weights (Ustyuzhaninov et al. 2017), nothing to download. `VGGFeatures` wraps a
torchvision VGG-19's convolutional part with Gatys's layer names (relu1_1 ... relu5_1),
for when pretrained weights can be had.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

IMAGENET_MEAN = (0.485, 0.456, 0.406)  # torchvision's VGG expects inputs normalised so
IMAGENET_STD = (0.229, 0.224, 0.225)


class RandomFeatures(nn.Module):
    r"""The offline default: a shallow multi-scale convolutional network with random,
    seeded weights (Ustyuzhaninov et al. 2017).

    At each scale s (a power of 2) the image, centred and shrunk s times by a Gaussian
    pyramid, passes through
    `depth` random convolutions (`width` filters of `kernel`×`kernel`, He-normal
    weights, ReLU). A filter at scale s sees a window about s·kernel pixels wide, so the
    scales together play the role of Ustyuzhaninov's filters of many sizes (3 to 55
    pixels) at a fraction of the cost. Layers are named ``scale1``, ``scale2``, ...;
    `style_layers` (default: all) feed the Gram matrices, `content_layers` the content
    loss. The same seed gives the same weights on every machine; no parameter trains.
    """

    def __init__(
        self,
        seed: int = 0,
        *,
        scales: Sequence[int] = (1, 2, 4, 8, 16),
        width: int = 64,
        kernel: int = 5,
        depth: int = 1,
        style_layers: Sequence[str] | None = None,
        content_layers: Sequence[str] = ("scale4",),
    ):
        super().__init__()
        if not scales or any(s < 1 or s & (s - 1) for s in scales):
            raise ValueError(f"RandomFeatures: scales must be powers of 2, got {scales}")
        if width < 1 or kernel < 1 or depth < 1:
            raise ValueError(f"RandomFeatures: width, kernel and depth must be positive, "
                             f"got {width}, {kernel}, {depth}")  # fmt: skip
        self.scales, self.kernel, self.seed = tuple(scales), kernel, seed
        names = [f"scale{s}" for s in self.scales]
        self.style_layers = tuple(names if style_layers is None else style_layers)
        self.content_layers = tuple(content_layers)
        _check_layers(self, names)
        g = torch.Generator().manual_seed(seed)
        for s in self.scales:
            for d in range(depth):
                fan_in = (3 if d == 0 else width) * kernel * kernel
                w = torch.randn(width, fan_in // kernel**2, kernel, kernel, generator=g)
                self.register_buffer(f"w{s}_{d}", w * math.sqrt(2.0 / fan_in))  # He init
        self.depth = depth

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Images (N, 3, H, W) in [0, 1] -> {name: features (N, width, H/s, W/s)}."""
        if min(x.shape[-2:]) < max(self.scales):
            raise ValueError(f"RandomFeatures: images must be at least {max(self.scales)} "
                             f"pixels a side for scale {max(self.scales)}, got "
                             f"{tuple(x.shape)}")  # fmt: skip
        x = (x - 0.5) / 0.25  # centred, roughly unit variance
        pyramid = [x]  # a Gaussian pyramid: scale 2**i at index i
        while 2 ** len(pyramid) <= max(self.scales):
            pyramid.append(_halve(pyramid[-1]))
        out, p = {}, self.kernel // 2
        for s in self.scales:
            h = pyramid[s.bit_length() - 1]
            for d in range(self.depth):
                h = F.relu(F.conv2d(F.pad(h, (p, p, p, p), mode="replicate"),
                                    getattr(self, f"w{s}_{d}")))  # fmt: skip
            out[f"scale{s}"] = h
        return out


def _halve(x: torch.Tensor) -> torch.Tensor:
    """Blur with the binomial filter [1, 3, 3, 1] / 8 (in x and y) and keep every other
    pixel: half the size without aliasing, and without the blocky gradients of a plain
    average pool."""
    k = torch.tensor([1.0, 3.0, 3.0, 1.0], dtype=x.dtype, device=x.device) / 8
    kernel = (k[:, None] * k[None, :]).expand(x.shape[1], 1, 4, 4)
    return F.conv2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), kernel, stride=2, groups=x.shape[1])


VGG19_BLOCKS = (2, 2, 4, 4, 4)  # convolutions per block, each followed by a ReLU, then a pool


def vgg_layer_names(features: nn.Sequential) -> list[str]:
    """The conventional names of a VGG ``features`` Sequential's modules, in order:
    conv1_1, relu1_1, conv1_2, relu1_2, pool1, conv2_1, ... (torchvision's
    ``vgg19().features`` has them at indices 0, 1, 2, ...; relu4_2 is index 22)."""
    names, block, conv = [], 1, 0
    for module in features:
        if isinstance(module, nn.Conv2d):
            conv += 1
            names.append(f"conv{block}_{conv}")
        elif isinstance(module, nn.ReLU):
            names.append(f"relu{block}_{conv}")
        elif isinstance(module, (nn.MaxPool2d, nn.AvgPool2d)):
            names.append(f"pool{block}")
            block, conv = block + 1, 0
        else:
            raise ValueError(f"vgg_layer_names: expected Conv2d, ReLU and pooling modules, "
                             f"got {type(module).__name__}")  # fmt: skip
    return names


class VGGFeatures(nn.Module):
    """Any module laid out like VGG's ``features`` (for example, with torchvision and
    its weights, ``torchvision.models.vgg19(weights="DEFAULT").features``), with its
    layers named as in Gatys et al. 2016. Inputs in [0, 1] are normalised by the ImageNet
    mean and std first; the network is frozen and runs only as far as the last layer
    asked for. `avg_pool` replaces max pooling by average pooling, as Gatys et al.
    recommend for smoother gradients."""

    def __init__(
        self,
        features: nn.Sequential,
        *,
        style_layers: Sequence[str] = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"),
        content_layers: Sequence[str] = ("relu4_2",),
        avg_pool: bool = False,
        mean: Sequence[float] = IMAGENET_MEAN,
        std: Sequence[float] = IMAGENET_STD,
    ):
        super().__init__()
        self.names = vgg_layer_names(features)
        self.style_layers, self.content_layers = tuple(style_layers), tuple(content_layers)
        _check_layers(self, self.names)
        last = max(self.names.index(k) for k in (*self.style_layers, *self.content_layers))
        layers = []
        for module in list(features)[: last + 1]:
            if avg_pool and isinstance(module, nn.MaxPool2d):
                module = nn.AvgPool2d(module.kernel_size, module.stride, module.padding)
            layers.append(module)
        self.layers = nn.ModuleList(layers).requires_grad_(False).eval()
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1))

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Images (N, 3, H, W) in [0, 1] -> {layer name: features} for the chosen layers."""
        wanted = set(self.style_layers) | set(self.content_layers)
        h, out = (x - self.mean) / self.std, {}
        for name, module in zip(self.names, self.layers, strict=False):
            # torchvision's ReLUs work in place, which would overwrite a kept feature map
            h = F.relu(h) if isinstance(module, nn.ReLU) else module(h)
            if name in wanted:
                out[name] = h
        return out


def _check_layers(extractor, names: Sequence[str]) -> None:
    unknown = [k for k in (*extractor.style_layers, *extractor.content_layers) if k not in names]
    if unknown or not extractor.style_layers:
        raise ValueError(f"{type(extractor).__name__}: unknown or no layers {unknown}; "
                         f"expected names among {', '.join(names)}")  # fmt: skip
