"""Pictures: image grids, loss curves, interpolation strips and 2-D densities.

Every function takes data, draws on a Matplotlib axis (a new figure when none is
given) and returns the figure. Plotting lives here, never inside a training loop.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import matplotlib.pyplot as plt
import torch


def _as_float_images(images: torch.Tensor, what: str) -> torch.Tensor:
    """Validate N×C×H×W images (uint8 0..255 or float in [0, 1]); return float in [0, 1]."""
    if not isinstance(images, torch.Tensor):
        raise ValueError(f"{what}: expected a torch.Tensor, got {type(images).__name__}")
    if images.dim() == 3:  # a single image C×H×W
        images = images[None]
    if images.dim() != 4 or images.shape[1] not in (1, 3):
        raise ValueError(
            f"{what}: expected images N×C×H×W with C = 1 or 3, got {tuple(images.shape)}"
        )
    if images.dtype == torch.uint8:
        return images.float() / 255.0
    if not images.is_floating_point():
        raise ValueError(f"{what}: expected uint8 or float images, got {images.dtype}")
    images = images.detach().float().cpu()
    lo, hi = images.min().item(), images.max().item()
    if lo < 0.0 or hi > 1.0 or math.isnan(lo) or math.isnan(hi):
        raise ValueError(
            f"{what}: float images must lie in [0, 1], got values in [{lo:.3g}, {hi:.3g}]"
        )
    return images


def make_grid(images: torch.Tensor, nrow: int = 8, pad: int = 1) -> torch.Tensor:
    """Tile N×C×H×W images into one C×H'×W' float image, `nrow` images per row."""
    x = _as_float_images(images, "make_grid")
    n, c, h, w = x.shape
    ncol = min(nrow, n)
    rows = math.ceil(n / ncol)
    grid = torch.ones(c, rows * (h + pad) + pad, ncol * (w + pad) + pad)
    for i in range(n):
        r, col = divmod(i, ncol)
        grid[
            :,
            pad + r * (h + pad) : pad + r * (h + pad) + h,
            pad + col * (w + pad) : pad + col * (w + pad) + w,
        ] = x[i]
    return grid


def _axis(ax, figsize):
    if ax is None:
        fig, ax = plt.subplots(figsize=figsize)
    return ax.figure, ax


def show_image(image: torch.Tensor, ax=None, title: str | None = None, figsize=(4, 4)):
    """Draw one C×H×W image (or a grid from `make_grid`) without axes."""
    x = _as_float_images(image, "show_image")[0]
    fig, ax = _axis(ax, figsize)
    if x.shape[0] == 1:
        ax.imshow(x[0].numpy(), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    else:
        ax.imshow(x.permute(1, 2, 0).numpy(), interpolation="nearest")
    ax.set_axis_off()
    if title:
        ax.set_title(title)
    return fig


def image_grid(
    images: torch.Tensor, nrow: int = 8, *, ax=None, title: str | None = None, figsize=None
):
    """Show N images (uint8, or float in [0, 1]) as a grid, `nrow` per row."""
    grid = make_grid(images, nrow)
    if figsize is None:
        h, w = grid.shape[1:]
        figsize = (min(10, 0.03 * w + 1), min(10, 0.03 * h + 1))
    return show_image(grid, ax=ax, title=title, figsize=figsize)


def loss_curves(
    history,
    keys: Sequence[str] | None = None,
    *,
    ax=None,
    smooth: int = 1,
    x: str = "steps",
    figsize=(6, 3.5),
):
    """Plot logged values from a `genedu.train.History` against steps or seconds.

    smooth: width of a trailing moving average, to see a trend through noisy batches.
    """
    if x not in ("steps", "seconds"):
        raise ValueError(f"x must be 'steps' or 'seconds', got {x!r}")
    keys = list(keys) if keys is not None else list(history.logs)
    missing = [k for k in keys if k not in history.logs]
    if missing:
        raise ValueError(f"no logged values named {missing}; the history has {list(history.logs)}")
    fig, ax = _axis(ax, figsize)
    xs = getattr(history, x)
    for k in keys:
        ys = torch.tensor(history.logs[k], dtype=torch.float64)
        if smooth > 1 and len(ys) >= smooth:
            ys = torch.cat(
                [
                    ys[: smooth - 1].cumsum(0) / torch.arange(1, smooth),
                    ys.unfold(0, smooth, 1).mean(1),
                ]
            )
        ax.plot(xs, ys.numpy(), label=k)
    ax.set_xlabel("step" if x == "steps" else "seconds")
    ax.legend()
    ax.grid(alpha=0.3)
    return fig


def lerp(z0: torch.Tensor, z1: torch.Tensor, steps: int) -> torch.Tensor:
    """Straight-line interpolation: (steps, *z0.shape), from z0 to z1 inclusive."""
    t = torch.linspace(0, 1, steps).view(-1, *([1] * z0.dim()))
    return (1 - t) * z0 + t * z1


def slerp(z0: torch.Tensor, z1: torch.Tensor, steps: int) -> torch.Tensor:
    """Spherical interpolation (Shoemake 1985), better for Gaussian latents (White 2016)."""
    a, b = z0.flatten(), z1.flatten()
    omega = torch.arccos((a @ b / (a.norm() * b.norm())).clamp(-1, 1))
    if omega.abs() < 1e-6:
        return lerp(z0, z1, steps)
    t = torch.linspace(0, 1, steps)[:, None]
    out = (torch.sin((1 - t) * omega) * a + torch.sin(t * omega) * b) / torch.sin(omega)
    return out.view(steps, *z0.shape)


def interpolation_strip(images: torch.Tensor, *, ax=None, title: str | None = None):
    """Show a path through image space as a strip: (steps, C, H, W), or
    (rows, steps, C, H, W) for several paths, one per row."""
    if not isinstance(images, torch.Tensor) or images.dim() not in (4, 5):
        raise ValueError(
            "interpolation_strip: expected (steps, C, H, W) or "
            f"(rows, steps, C, H, W), got {getattr(images, 'shape', type(images))}"
        )
    rows = images if images.dim() == 5 else images[None]
    return image_grid(rows.flatten(0, 1), nrow=rows.shape[1], ax=ax, title=title)


def density_2d(
    log_prob: Callable[[torch.Tensor], torch.Tensor],
    *,
    samples: torch.Tensor | None = None,
    lim: float = 3.0,
    resolution: int = 150,
    ax=None,
    title: str | None = None,
    figsize=(4.5, 4.5),
):
    """Heat map of exp(log_prob) on [-lim, lim]², with optional (n, 2) samples on top."""
    fig, ax = _axis(ax, figsize)
    g = torch.linspace(-lim, lim, resolution)
    xx, yy = torch.meshgrid(g, g, indexing="xy")
    with torch.no_grad():
        dens = (
            log_prob(torch.stack([xx.flatten(), yy.flatten()], 1))
            .exp()
            .view(resolution, resolution)
        )
    ax.imshow(dens.numpy(), origin="lower", extent=(-lim, lim, -lim, lim), cmap="viridis")
    if samples is not None:
        if samples.dim() != 2 or samples.shape[1] != 2:
            raise ValueError(f"density_2d: samples must be (n, 2), got {tuple(samples.shape)}")
        ax.scatter(samples[:, 0], samples[:, 1], s=2, c="white", alpha=0.5)
    ax.set_xlim(-lim, lim)
    ax.set_ylim(-lim, lim)
    ax.set_aspect("equal")
    if title:
        ax.set_title(title)
    return fig


def png_bytes(image: torch.Tensor, scale: int = 1) -> bytes:
    """One C×H×W image (uint8, or float in [0, 1]) as PNG bytes, each pixel `scale`×`scale`."""
    import io

    from PIL import Image

    if scale < 1:
        raise ValueError(f"png_bytes: scale must be a positive integer, got {scale}")
    x = _as_float_images(image, "png_bytes")[0]
    pixels = (x * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
    picture = Image.fromarray(pixels[..., 0] if pixels.shape[2] == 1 else pixels)
    picture = picture.resize((picture.width * scale, picture.height * scale), Image.NEAREST)
    buffer = io.BytesIO()
    picture.save(buffer, format="png")
    return buffer.getvalue()


def latent_explorer(
    decode: Callable[[torch.Tensor], torch.Tensor],
    latent_dim: int,
    *,
    start: torch.Tensor | None = None,
    lim: float = 3.0,
    step: float = 0.05,
    scale: int = 8,
    labels: Sequence[str] | None = None,
):
    """An ipywidgets explorer: one slider per latent dimension, and the decoded image.

    decode: maps codes (1, latent_dim) to images (1, C, H, W) in [0, 1], for example
        ``vae.decode``. Moving a slider decodes again and redraws the picture.
    start: the code the sliders start at (default: the origin, the prior's mean).
    The picture is a PNG held by an Image widget, so a built book shows the starting
    image even without a kernel; the sliders need a running one to move it.
    Returns the widget.
    """
    import ipywidgets as widgets

    if latent_dim < 1:
        raise ValueError(f"latent_explorer: latent_dim must be >= 1, got {latent_dim}")
    start = torch.zeros(latent_dim) if start is None else start.detach().flatten().cpu()
    if start.numel() != latent_dim:
        raise ValueError(
            f"latent_explorer: start must hold {latent_dim} numbers, got {start.numel()}"
        )
    labels = list(labels) if labels is not None else [f"z[{i}]" for i in range(latent_dim)]
    if len(labels) != latent_dim:
        raise ValueError(f"latent_explorer: {latent_dim} labels expected, got {len(labels)}")
    sliders = [
        widgets.FloatSlider(
            value=float(v), min=-lim, max=lim, step=step, description=label,
            continuous_update=True, readout_format=".2f",
        )
        for v, label in zip(start.tolist(), labels, strict=True)
    ]  # fmt: skip
    picture = widgets.Image(format="png")
    reset = widgets.Button(description="back to the start")

    def code() -> torch.Tensor:
        return torch.tensor([[s.value for s in sliders]], dtype=torch.float32)

    def redraw(_=None) -> None:
        with torch.no_grad():
            picture.value = png_bytes(decode(code())[0], scale)

    def back(_=None) -> None:
        for s, v in zip(sliders, start.tolist(), strict=True):
            s.value = float(v)

    for s in sliders:
        s.observe(redraw, names="value")
    reset.on_click(back)
    redraw()
    explorer = widgets.HBox([widgets.VBox([*sliders, reset]), picture])
    explorer.code = code  # the current code, for a cell that wants to reuse it
    return explorer


@torch.no_grad()
def mixing_grid(model, z_coarse: torch.Tensor, z_fine: torch.Tensor, crossover: int, *,
                psi: float = 1.0, ax=None, title: str | None = None):  # fmt: skip
    """A StyleGAN's style-mixing table: row i takes its coarse styles (layers before
    `crossover`) from z_coarse[i], column j its fine styles from z_fine[j]. The sources
    themselves head the rows (left) and the columns (top). Returns the figure."""
    r, c = len(z_coarse), len(z_fine)
    coarse = model.mix(z_coarse, z_coarse, model.config.num_ws, psi=psi)  # (r, C, H, W)
    fine = model.mix(z_fine, z_fine, 0, psi=psi)  # (c, C, H, W)
    mixed = model.mix(z_coarse.repeat_interleave(c, 0), z_fine.repeat(r, 1), crossover, psi=psi)
    blank = torch.ones_like(fine[:1])
    rows = [torch.cat([blank, fine])]
    rows += [torch.cat([coarse[i : i + 1], mixed[i * c : (i + 1) * c]]) for i in range(r)]
    grid = make_grid(torch.cat(rows).cpu(), nrow=c + 1, pad=1)
    title = title or f"rows: coarse styles; columns: fine styles (from layer {crossover})"
    return show_image(grid, ax=ax, title=title, figsize=(1.1 * (c + 1), 1.1 * (r + 1)))


def style_explorer(model, *, seeds: tuple[int, int] = (0, 1), scale: int = 8):
    """An ipywidgets explorer for a `genedu.stylegan.StyleGAN`: a psi slider, a crossover
    slider and two seeds. The picture is `model.mix(z1, z2, crossover, psi=psi)`: coarse
    styles from the first seed's z, fine styles from the second's, both truncated by psi,
    shown beside the two sources. Like `latent_explorer`, the first picture stays in a
    built book; moving the sliders needs a running kernel. Returns the widget."""
    import ipywidgets as widgets

    k = model.config.num_ws
    psi = widgets.FloatSlider(value=1.0, min=0.0, max=1.0, step=0.05, description="psi")
    crossover = widgets.IntSlider(value=k // 2, min=0, max=k, description="crossover")
    seed_a = widgets.IntText(value=seeds[0], description="coarse seed")
    seed_b = widgets.IntText(value=seeds[1], description="fine seed")
    picture = widgets.Image(format="png")

    def z(seed: int) -> torch.Tensor:
        return model.noise(1, torch.Generator().manual_seed(int(seed)))

    def redraw(_=None) -> None:
        z1, z2 = z(seed_a.value), z(seed_b.value)
        row = torch.cat([
            model.mix(z1, z2, k, psi=psi.value),  # the coarse source alone
            model.mix(z1, z2, crossover.value, psi=psi.value),
            model.mix(z1, z2, 0, psi=psi.value),  # the fine source alone
        ])  # fmt: skip
        picture.value = png_bytes(make_grid(row.cpu(), nrow=3, pad=2), scale)

    for w in (psi, crossover, seed_a, seed_b):
        w.observe(redraw, names="value")
    redraw()
    return widgets.HBox([widgets.VBox([psi, crossover, seed_a, seed_b]), picture])


def choice_slider(
    pictures: dict, *, description: str = "", start=None, nrow: int | None = None, scale: int = 3
):
    """A slider over precomputed pictures: one image grid per setting (a dict from the
    setting, shown as the slider's readout, to N×C×H×W images in [0, 1], tiled `nrow`
    to a row, all N by default), and the slider picks which one shows.

    Every picture is drawn once, here, and the slider is tied to the pictures by a
    link that runs in the browser (``widgets.jslink``), so the slider works in a built
    book with no kernel, as well as live. start: the setting shown first (default: the
    first). Returns the widget; ``.pictures`` holds the Image widgets in slider order
    and ``.link`` the link.
    """
    import ipywidgets as widgets

    if not pictures:
        raise ValueError("choice_slider: pictures must hold at least one setting")
    pictures = {k: _as_float_images(v, "choice_slider") for k, v in pictures.items()}
    labels = [str(k) for k in pictures]
    if len(set(labels)) != len(labels):
        raise ValueError(f"choice_slider: the settings must read differently, got {labels}")
    grids = [make_grid(v, nrow=nrow or len(v)) for v in pictures.values()]
    keys = list(pictures)
    if start is not None and start not in keys:
        raise ValueError(f"choice_slider: start {start!r} is not one of the settings {keys}")
    first = keys.index(start) if start is not None else 0
    images = [widgets.Image(value=png_bytes(grid, scale), format="png") for grid in grids]
    stack = widgets.Stack(images, selected_index=first)
    slider = widgets.SelectionSlider(
        options=labels, index=first, description=description, continuous_update=True,
        style={"description_width": "initial"}, layout=widgets.Layout(width="min(100%, 32em)"),
    )  # fmt: skip
    link = widgets.jslink((slider, "index"), (stack, "selected_index"))
    box = widgets.VBox([slider, stack])
    box.add_class("genedu-choice-slider")  # the browser check moves every such slider
    box.slider, box.pictures, box.link = slider, images, link
    return box


def decision_surface(
    discriminator: Callable[[torch.Tensor], torch.Tensor],
    *,
    real: torch.Tensor | None = None,
    fake: torch.Tensor | None = None,
    lim: float = 3.0,
    resolution: int = 120,
    ax=None,
    title: str | None = None,
    figsize=(4.5, 4.5),
):
    """A 2-D discriminator's belief that a point is real, sigmoid(logit), on [-lim, lim]²
    (red: real, blue: fake), with real points (black) and generated ones (yellow) on top."""
    fig, ax = _axis(ax, figsize)
    g = torch.linspace(-lim, lim, resolution)
    xx, yy = torch.meshgrid(g, g, indexing="xy")
    with torch.no_grad():
        logits = discriminator(torch.stack([xx.flatten(), yy.flatten()], 1))
        prob = torch.sigmoid(logits).view(resolution, resolution)
    image = ax.imshow(
        prob.numpy(), origin="lower", extent=(-lim, lim, -lim, lim), cmap="RdBu_r", vmin=0, vmax=1
    )
    for points, colour, label in ((real, "black", "real"), (fake, "gold", "generated")):
        if points is None:
            continue
        if points.dim() != 2 or points.shape[1] != 2:
            raise ValueError(f"decision_surface: points must be (n, 2), got {tuple(points.shape)}")
        ax.scatter(points[:, 0], points[:, 1], s=6, c=colour, alpha=0.7, label=label,
                   edgecolors="black" if colour == "gold" else "none", linewidths=0.2)  # fmt: skip
    ax.set_xlim(-lim, lim)
    ax.set_ylim(-lim, lim)
    ax.set_aspect("equal")
    if title:
        ax.set_title(title)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="D(x): P(real)")
    return fig


def score_histograms(
    scores: dict[str, torch.Tensor],
    *,
    ax=None,
    bins: int = 50,
    xlabel: str = "score",
    title: str | None = None,
    figsize=(6, 3.5),
):
    """Overlaid density histograms of named score sets, e.g. {"normal": s0, "anomaly": s1},
    each a 1-D tensor, on shared bins: how far apart two groups' scores lie."""
    if not scores or any(torch.as_tensor(s).dim() != 1 for s in scores.values()):
        raise ValueError("score_histograms: expected a dict of name -> 1-D score tensor")
    fig, ax = _axis(ax, figsize)
    every = torch.cat([torch.as_tensor(s).double() for s in scores.values()])
    edges = torch.linspace(every.min().item(), every.max().item(), bins + 1).numpy()
    for name, s in scores.items():
        ax.hist(torch.as_tensor(s).double().numpy(), bins=edges, density=True, alpha=0.5,
                label=name)  # fmt: skip
    ax.set_xlabel(xlabel)
    ax.set_ylabel("density")
    ax.legend()
    if title:
        ax.set_title(title)
    return fig


def roc_curves(
    curves: dict[str, tuple[torch.Tensor, torch.Tensor]],
    *,
    ax=None,
    title: str | None = None,
    figsize=(4, 4),
):
    """ROC curves from {name: (scores, is_positive)}, each labelled with its AUROC
    (`genedu.metrics.roc_curve` and `auroc`), with the chance diagonal."""
    from .metrics import auroc, roc_curve

    fig, ax = _axis(ax, figsize)
    for name, (scores, is_positive) in curves.items():
        fpr, tpr = roc_curve(scores, is_positive)
        ax.plot(fpr.numpy(), tpr.numpy(), label=f"{name} ({auroc(scores, is_positive):.3f})")
    ax.plot([0, 1], [0, 1], ":", color="grey", label="chance (0.5)")
    ax.set_xlabel("false-positive rate")
    ax.set_ylabel("true-positive rate")
    ax.set_aspect("equal")
    ax.legend(fontsize="small", loc="lower right")
    if title:
        ax.set_title(title)
    return fig


def interval_bars(
    groups: dict[str, dict[str, tuple[float, float]]],
    *,
    ax=None,
    ylabel: str = "accuracy",
    title: str | None = None,
    figsize=(7, 3.5),
):
    """Grouped bars of means with interval whiskers: {group: {bar: (mean, half_width)}},
    e.g. {"clean test": {"real": (0.71, 0.02), ...}, "corrupted": {...}}. Every group
    shows the same bars, in the order of the first."""
    if not groups or any(not bars for bars in groups.values()):
        raise ValueError("interval_bars: expected {group: {bar: (mean, half_width)}}")
    names = list(next(iter(groups.values())))
    fig, ax = _axis(ax, figsize)
    width = 0.8 / len(names)
    for i, name in enumerate(names):
        means = [groups[g][name][0] for g in groups]
        halves = [groups[g][name][1] for g in groups]
        xs = [j + (i - (len(names) - 1) / 2) * width for j in range(len(groups))]
        ax.bar(xs, means, width, yerr=halves, capsize=3, label=name)
    ax.set_xticks(range(len(groups)), list(groups))
    ax.set_ylabel(ylabel)
    low = min(m - h for bars in groups.values() for m, h in bars.values())
    ax.set_ylim(max(0.0, low - 0.05), None)
    ax.legend(fontsize="small", ncol=min(len(names), 3))
    if title:
        ax.set_title(title)
    return fig


def glue(name: str, value, *, display: bool = False):
    """Hand `value` to the book's prose as ``{glue:text}`name``` (myst-nb's glue), and return it.

    A number in a chapter's prose is glued from the cell that computed it, so the text
    can never disagree with the output beside it. Where myst-nb is not installed (Colab,
    a bare Jupyter) the value is only returned: the notebook still runs.
    """
    try:
        from myst_nb import glue as _glue
    except ImportError:
        return value
    _glue(name, value, display=display)
    return value
