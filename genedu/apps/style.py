r"""Style transfer and texture synthesis by matching Gram matrices of deep features.

References: Gatys, Ecker & Bethge 2016 ("Image style transfer using convolutional neural
networks", CVPR; the losses are their eqs. 1-5) and 2015 ("Texture synthesis using
convolutional neural networks"); Ustyuzhaninov, Brendel, Gatys & Bethge 2017 ("What
does it take to generate natural textures?", ICLR: shallow convolutional networks with
*random* weights at several scales already support texture synthesis).

A feature extractor maps an image to feature maps $F^l$ (C_l channels, M_l = H_l W_l
positions) at named layers. The style of an image at layer l is the Gram matrix of its
features, the channel correlations averaged over positions, which forgets *where*
things are:

$$G^l_{ij} = \frac{1}{M_l} \sum_k F^l_{ik} F^l_{jk}.$$

Style transfer starts from the content photo (or from noise) and optimises the pixels
of an image x to keep the content photo's features at a deep layer while taking on the
style photo's Gram matrices at several layers:

$$\mathcal{L}(x) = \alpha \, \mathcal{L}_{content}(x, c) + \beta \, \mathcal{L}_{style}(x, s).$$

Texture synthesis is the same with $\alpha = 0$, from noise.

The extractor is pluggable. The offline default, `RandomFeatures`, is a small
multi-scale network with seeded random weights: nothing to download. With torchvision
and pretrained VGG-19 weights (for example on Colab), `VGGFeatures` wraps
``torchvision.models.vgg19(weights="DEFAULT").features`` and the same `transfer` uses
Gatys's layers, relu1_1 ... relu5_1 for style and relu4_2 for content.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from tqdm.auto import tqdm

from .. import data
from .features import RandomFeatures, VGGFeatures, _check_layers, _halve, vgg_layer_names  # noqa: F401

# Photos that ship inside the scikit-image and scikit-learn wheels: they load offline.
PHOTOS = {
    "astronaut": ("skimage", "data/astronaut.png"),
    "chelsea": ("skimage", "data/chelsea.png"),
    "coffee": ("skimage", "data/coffee.png"),
    "rocket": ("skimage", "data/rocket.jpg"),
    "hubble": ("skimage", "data/hubble_deep_field.jpg"),
    "ihc": ("skimage", "data/ihc.png"),
    "retina": ("skimage", "data/retina.jpg"),
    "brick": ("skimage", "data/brick.png"),
    "grass": ("skimage", "data/grass.png"),
    "gravel": ("skimage", "data/gravel.png"),
    "china": ("sklearn", "datasets/images/china.jpg"),
    "flower": ("sklearn", "datasets/images/flower.jpg"),
}


# ------------------------------------------------------------------------------ images
def check_image(x: torch.Tensor, what: str) -> torch.Tensor:
    """An RGB image (1, 3, H, W), float in [0, 1]; anything else raises a ValueError."""
    if not isinstance(x, torch.Tensor):
        raise ValueError(f"{what}: expected a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise ValueError(f"{what}: expected a float tensor with values in [0, 1], got {x.dtype}")
    if x.dim() != 4 or x.shape[0] != 1 or x.shape[1] != 3:
        raise ValueError(f"{what}: expected one RGB image of shape (1, 3, H, W), "
                         f"got {tuple(x.shape)}")  # fmt: skip
    if min(x.shape[2:]) < 8:
        raise ValueError(f"{what}: expected an image at least 8×8 pixels, got {tuple(x.shape)}")
    lo, hi = x.min().item(), x.max().item()
    if not (0.0 <= lo and hi <= 1.0):  # also catches NaN
        raise ValueError(f"{what}: expected values in [0, 1], got [{lo:.3g}, {hi:.3g}]")
    return x


def resize(x: torch.Tensor, size: int) -> torch.Tensor:
    """Resize (1, C, H, W) so that its longer side is `size`, keeping the aspect ratio."""
    if not isinstance(size, int) or size < 8:
        raise ValueError(f"size must be an integer >= 8, got {size!r}")
    h, w = x.shape[-2:]
    scale = size / max(h, w)
    shape = (max(1, round(h * scale)), max(1, round(w * scale)))
    if shape == (h, w):
        return x
    out = F.interpolate(x, size=shape, mode="bilinear", antialias=True, align_corners=False)
    return out.clamp(0, 1)


def _square(pixels: np.ndarray, size: int | None) -> torch.Tensor:
    """uint8 (H, W, 3) -> float (1, 3, size, size): the central square, resized."""
    x = torch.from_numpy(pixels).permute(2, 0, 1)[None].float() / 255
    h, w = x.shape[-2:]
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    x = x[..., top : top + side, left : left + side]
    return x if size is None else resize(x, size)


def photo(name: str, size: int | None = 256) -> torch.Tensor:
    """A bundled photo (see PHOTOS): its central square resized to size × size, as float
    (1, 3, size, size) in [0, 1]. Grey photos come back as three equal channels. No network."""
    from PIL import Image

    if name not in PHOTOS:
        raise ValueError(f"unknown photo {name!r}: expected one of {', '.join(PHOTOS)}")
    package, rel = PHOTOS[name]
    with Image.open(data.package_dir(package) / rel) as im:
        return _square(np.array(im.convert("RGB")), size)


def load_image(source: str | os.PathLike, size: int | None = 256) -> torch.Tensor:
    """A bundled photo's name (PHOTOS) or an image file's path, as `photo` returns it."""
    from PIL import Image, UnidentifiedImageError

    if str(source) in PHOTOS:
        return photo(str(source), size)
    path = Path(source)
    if not path.is_file():
        raise ValueError(f"{source!s}: neither a bundled photo ({', '.join(PHOTOS)}) "
                         f"nor an image file")  # fmt: skip
    try:
        with Image.open(path) as im:
            return _square(np.array(im.convert("RGB")), size)
    except UnidentifiedImageError as err:
        raise ValueError(f"{path}: not an image file PIL can read") from err


def save_png(image: torch.Tensor, path: str | os.PathLike) -> Path:
    """Write an image (1, 3, H, W) in [0, 1] as a PNG, atomically (a .part file, then
    os.replace), so that a reader never sees half a file."""
    from ..viz import png_bytes

    image = check_image(image, "save_png")
    path = Path(path)
    tmp = path.with_name(f"{path.name}.part")
    tmp.write_bytes(png_bytes(image[0]))
    os.replace(tmp, path)
    return path


# ---------------------------------------------------------------------------- statistics
def gram_matrix(features: torch.Tensor) -> torch.Tensor:
    r"""Gram matrices (N, C, C) of feature maps (N, C, H, W), normalised by H·W:
    $G_{ij} = \frac{1}{HW} \sum_k F_{ik} F_{jk}$ (Gatys et al. 2016, eq. 3, divided by
    M = HW so that images of different sizes compare). Symmetric and positive
    semi-definite; a permutation of the positions leaves it unchanged."""
    if not isinstance(features, torch.Tensor) or features.dim() != 4:
        got = tuple(features.shape) if isinstance(features, torch.Tensor) else type(features)
        raise ValueError(f"gram_matrix: expected features (N, C, H, W), got {got}")
    if not features.is_floating_point():
        raise ValueError(f"gram_matrix: expected float features, got {features.dtype}")
    n, c, h, w = features.shape
    flat = features.reshape(n, c, h * w)  # (N, C, M)
    return flat @ flat.transpose(1, 2) / (h * w)  # (N, C, C)


def content_loss(
    features: dict[str, torch.Tensor], target: dict[str, torch.Tensor], layers: Sequence[str]
) -> torch.Tensor:
    r"""$\sum_l \mathrm{mean}\,(F^l - P^l)^2$ over the content layers (Gatys et al. 2016,
    eq. 1, averaged over positions and channels rather than halved and summed)."""
    return sum(F.mse_loss(features[k], target[k]) for k in layers)


def style_loss(
    features: dict[str, torch.Tensor],
    target_grams: dict[str, torch.Tensor],
    layers: Sequence[str],
    weights: Sequence[float] | None = None,
) -> torch.Tensor:
    r"""$\sum_l w_l \, \mathrm{mean}_{ij}\,(G^l_{ij} - A^l_{ij})^2$: the weighted squared
    Gram differences (Gatys et al. 2016, eqs. 4-5, with E_l averaged over the C_l²
    entries). `target_grams` holds the style image's Gram matrices; weights default to
    1 / len(layers). Exactly zero for an image against itself."""
    weights = [1.0 / len(layers)] * len(layers) if weights is None else list(weights)
    if len(weights) != len(layers):
        raise ValueError(f"style_loss: {len(layers)} layers but {len(weights)} weights")
    return sum(w * F.mse_loss(gram_matrix(features[k]), target_grams[k])
               for k, w in zip(layers, weights, strict=True))  # fmt: skip


# ---------------------------------------------------------------------------- optimisation
@dataclass
class StyleResult:
    """What `transfer` and `texture` return. Losses are the normalised ones that the
    optimiser sees (without their weights), at the start and after every step."""

    image: torch.Tensor  # (1, 3, H, W) in [0, 1]
    style: list[float] = field(default_factory=list)  # len steps + 1
    content: list[float] = field(default_factory=list)  # zeros for a texture
    content_bound: float = float("nan")  # content loss of the style image itself
    seconds: float = 0.0
    evaluations: int = 0  # forward-backward passes (L-BFGS line searches take several)

    @property
    def style_reduction(self) -> float:
        """How much of the initial style loss is gone, as a fraction (0.9: 90 %)."""
        return 1.0 - self.style[-1] / self.style[0]


def transfer(
    content: torch.Tensor,
    style: torch.Tensor,
    *,
    features: nn.Module | None = None,
    steps: int = 100,
    style_weight: float = 100.0,
    content_weight: float = 1.0,
    lr: float = 1.0,
    size: int | None = None,
    seed: int = 0,
    init: str = "content",
    optimizer: str = "lbfgs",
    progress: bool = True,
    callback: Callable[[int, torch.Tensor], None] | None = None,
) -> StyleResult:
    r"""Gatys et al. 2016: optimise the pixels of an image to keep `content`'s features at
    the extractor's content layers and take on `style`'s Gram matrices at its style layers.

    content, style: (1, 3, H, W) floats in [0, 1] (the style image may have another size:
    Gram matrices do not depend on it). `size` first resizes both so that the longer side
    is `size`. `features` defaults to `RandomFeatures(seed)`. Each layer's loss is divided
    by the mean square of its target (so both losses start near 1 whatever the
    extractor, and one `style_weight` suits random and VGG features alike). The loss is
    content_weight · content + style_weight · style, plus a penalty that keeps pixels in
    [0, 1]; the returned image is clamped to [0, 1].

    The optimiser is L-BFGS with a strong-Wolfe line search, as Gatys et al. used: the
    problem is deterministic and smooth with one image's worth of parameters, where a
    quasi-Newton method shines. Each feature evaluation (forward and backward) is the
    cost on a CPU, and for the same number of them L-BFGS ends lower than Adam at its
    best learning rate (64×64 chelsea/flower, 66 evaluations: total loss 2.4 against 2.8
    for Adam at lr 0.1, 4.1 at 0.03), with no learning rate to tune. `optimizer="adam"`
    runs Adam with `lr` (try 0.05) for comparison. With L-BFGS, `lr` is the initial step
    and one step is one iteration (about two evaluations, with the line search).
    `init` is "content" (start from the content photo) or "noise" (seeded).
    `callback(step, image)` is called after every step.

    The defaults (100 steps, style_weight 100) take about 30 s for 256×256 on 2 CPU
    threads and cut the style loss by over 99 %, the style loss levelling off after
    some 30 steps; `content_bound` in the result, the content loss of the style photo
    itself, is the yardstick for how much content survived (about 0.6 of it here).
    """
    content = check_image(content, "content")
    style = check_image(style, "style")
    return _optimise(content, style, features=features, steps=steps,
                     style_weight=style_weight, content_weight=content_weight, lr=lr,
                     size=size, seed=seed, init=init, optimizer=optimizer, progress=progress,
                     callback=callback)  # fmt: skip


def texture(
    style: torch.Tensor,
    *,
    size: int = 256,
    features: nn.Module | None = None,
    steps: int = 100,
    lr: float = 1.0,
    seed: int = 0,
    optimizer: str = "lbfgs",
    progress: bool = True,
    callback: Callable[[int, torch.Tensor], None] | None = None,
) -> StyleResult:
    """Texture synthesis (Gatys et al. 2015): a size × size image, from seeded noise, whose
    Gram matrices match `style`'s; `transfer` with no content. Same seed, same texture."""
    style = check_image(style, "style")
    return _optimise(None, style, features=features, steps=steps, style_weight=1.0,
                     content_weight=0.0, lr=lr, size=size, seed=seed, init="noise",
                     optimizer=optimizer, progress=progress, callback=callback)  # fmt: skip


def _optimise(content, style, *, features, steps, style_weight, content_weight, lr, size,
              seed, init, optimizer, progress, callback) -> StyleResult:  # fmt: skip
    """`transfer` and `texture` (content None): the checks, the targets, the loop."""
    start = time.perf_counter()
    if not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be a positive integer, got {steps!r}")
    if size is not None and (not isinstance(size, int) or size < 8):
        raise ValueError(f"size must be an integer >= 8 (or None), got {size!r}")
    if init not in ("content", "noise"):
        raise ValueError(f"init must be 'content' or 'noise', got {init!r}")
    if optimizer not in ("lbfgs", "adam"):
        raise ValueError(f"optimizer must be 'lbfgs' or 'adam', got {optimizer!r}")
    if not (style_weight >= 0 and content_weight >= 0 and lr > 0):
        raise ValueError(f"weights must be >= 0 and lr > 0, got style_weight {style_weight}, "
                         f"content_weight {content_weight}, lr {lr}")  # fmt: skip
    features = RandomFeatures(seed) if features is None else features
    if size is not None:
        style = resize(style, size)
        content = None if content is None else resize(content, size)
    g = torch.Generator().manual_seed(seed)
    shape = (1, 3, size, size) if content is None else content.shape
    with torch.no_grad():
        s_feats = features(style)
        grams = {k: gram_matrix(s_feats[k]) for k in features.style_layers}
        s_weights = [1.0 / (len(grams) * grams[k].square().mean().item() + 1e-12)
                     for k in features.style_layers]  # fmt: skip
        if content is not None:
            targets = features(content)
            c_layers = features.content_layers
            c_scale = 1.0 / sum(targets[k].square().mean().item() + 1e-12 for k in c_layers)
            stand_in = features(F.interpolate(style, size=shape[-2:], mode="bilinear",
                                              antialias=True, align_corners=False))  # fmt: skip
            bound = c_scale * content_loss(stand_in, targets, c_layers).item()
    noise = torch.rand(shape, generator=g).to(style.device)
    x = content.clone() if init == "content" and content is not None else noise
    x.requires_grad_(True)

    # A soft box: stiff enough to keep pixels near [0, 1] (the result is clamped, and its
    # losses measured after clamping), soft enough not to stall L-BFGS.
    bounds_weight = 10.0 * (style_weight + content_weight)
    calls = []

    def closure():
        opt.zero_grad()
        f = features(x)
        s = style_loss(f, grams, features.style_layers, s_weights)
        c = (c_scale * content_loss(f, targets, c_layers) if content is not None
             else torch.zeros(()))  # fmt: skip
        outside = (x - x.clamp(0, 1)).square().mean()  # pulls pixels back into [0, 1]
        loss = style_weight * s + content_weight * c + bounds_weight * outside
        loss.backward()
        calls.append((s.item(), c.item()))
        return loss

    opt = (torch.optim.LBFGS([x], lr=lr, max_iter=1, max_eval=20, history_size=50,
                             tolerance_grad=0.0, tolerance_change=0.0,
                             line_search_fn="strong_wolfe") if optimizer == "lbfgs"
           else torch.optim.Adam([x], lr=lr))  # fmt: skip
    history = []
    bar = tqdm(range(steps), disable=not progress, leave=False, desc="style")
    for step in bar:
        mark = len(calls)
        opt.step(closure)  # the first evaluation of a step is at the current image
        history.append(calls[mark])
        if not math.isfinite(sum(calls[-1])):
            raise FloatingPointError(f"the loss became {calls[-1]} at step {step}")
        bar.set_postfix(style=f"{calls[mark][0]:.3g}", content=f"{calls[mark][1]:.3g}")
        if callback is not None:
            callback(step, x.detach().clamp(0, 1))
    with torch.no_grad():
        f = features(x.clamp(0, 1))
        s = style_loss(f, grams, features.style_layers, s_weights).item()
        c = c_scale * content_loss(f, targets, c_layers).item() if content is not None else 0.0
    history.append((s, c))
    return StyleResult(
        image=x.detach().clamp(0, 1), style=[h[0] for h in history],
        content=[h[1] for h in history], content_bound=bound if content is not None else 0.0,
        seconds=time.perf_counter() - start, evaluations=len(calls),
    )  # fmt: skip


def benchmark(
    content: str = "chelsea",
    style: str = "flower",
    *,
    size: int = 256,
    steps: int = 100,
    seed: int = 0,
    progress: bool = False,
) -> dict:
    """One timed style transfer with the defaults, for `benchmarks/`: two bundled photos
    at size × size, the time it took, the style loss reduction (a fraction) and the final
    content loss next to its bound (the content loss of the style photo itself), and the
    image under "image" (take it out before writing the record as JSON)."""
    torch.manual_seed(seed)
    c, s = photo(content, size), photo(style, size)
    r = transfer(c, s, steps=steps, seed=seed, progress=progress)
    return {"content": content, "style": style, "size": size, "steps": steps, "seed": seed,
            "seconds": r.seconds, "evaluations": r.evaluations,
            "style_initial": r.style[0], "style_final": r.style[-1],
            "style_reduction": r.style_reduction, "content_final": r.content[-1],
            "content_bound": r.content_bound, "threads": torch.get_num_threads(),
            "image": r.image}  # fmt: skip
