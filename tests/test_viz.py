"""genedu.viz: grids, input checks, interpolation and plots (Agg backend, figures closed)."""

from __future__ import annotations

import math

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
from matplotlib.figure import Figure
from torch import distributions as D

from genedu import viz
from genedu.train import History


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def test_backend_is_agg():
    assert matplotlib.get_backend().lower() == "agg"


# ---------------------------------------------------------------------------------- grids


@pytest.mark.parametrize("dtype", [torch.uint8, torch.float32])
def test_image_grid_accepts_uint8_and_unit_floats(dtype):
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (6, 1, 8, 8), generator=g, dtype=torch.uint8)
    if dtype == torch.float32:
        images = images.float() / 255
    fig = viz.image_grid(images, nrow=3, title="six")
    assert isinstance(fig, Figure)
    (shown,) = fig.axes[0].images
    assert shown.get_array().shape == (2 * 9 + 1, 3 * 9 + 1)  # 2 rows, 3 columns, pad 1
    assert fig.axes[0].get_title() == "six"


def test_image_grid_draws_on_a_given_axis():
    fig, ax = plt.subplots()
    assert viz.image_grid(torch.zeros(2, 3, 4, 4), ax=ax) is fig
    assert ax.images[0].get_array().shape == (6, 11, 3)  # RGB: H×W×3


def test_make_grid_shape_and_placement():
    images = torch.stack([torch.full((1, 4, 6), i / 10) for i in range(5)])
    grid = viz.make_grid(images, nrow=3, pad=2)
    assert grid.shape == (1, 2 * (4 + 2) + 2, 3 * (6 + 2) + 2)
    # image i sits at row i // 3, column i % 3, after the padding
    for i in range(5):
        r, c = divmod(i, 3)
        top, left = 2 + r * 6, 2 + c * 8
        assert torch.equal(grid[:, top : top + 4, left : left + 6], images[i])
    assert (grid[:, :2] == 1).all() and (grid[:, :, :2] == 1).all()  # white padding
    assert (grid[:, 8:, 18:] == 1).all()  # the sixth cell is empty


def test_make_grid_uint8_is_scaled_and_single_row_when_few():
    grid = viz.make_grid(torch.full((2, 3, 2, 2), 255, dtype=torch.uint8), nrow=8, pad=1)
    assert grid.shape == (3, 4, 7) and grid.dtype == torch.float32
    assert grid.max() == 1.0


def test_wrong_dtype_is_refused():
    with pytest.raises(ValueError, match="expected uint8 or float images, got torch.int32"):
        viz.image_grid(torch.zeros(2, 1, 4, 4, dtype=torch.int32))


@pytest.mark.parametrize("shape", [(2, 5, 4, 4), (4, 4), (2, 2, 1, 4, 4)])
def test_wrong_shape_is_refused(shape):
    with pytest.raises(ValueError, match=r"expected images N×C×H×W with C = 1 or 3, got \(") as e:
        viz.make_grid(torch.zeros(shape))
    assert str(tuple(shape)) in str(e.value)


@pytest.mark.parametrize(("low", "high"), [(-0.5, 0.5), (0.0, 2.0), (float("nan"), 0.5)])
def test_floats_outside_unit_interval_are_refused(low, high):
    images = torch.tensor([low, high]).view(1, 1, 1, 2)
    with pytest.raises(ValueError, match=r"float images must lie in \[0, 1\], got values in"):
        viz.image_grid(images)


def test_not_a_tensor_is_refused():
    with pytest.raises(ValueError, match="expected a torch.Tensor, got list"):
        viz.make_grid([[0.0]])


# -------------------------------------------------------------------------- interpolation


def test_lerp_endpoints_and_midpoint():
    g = torch.Generator().manual_seed(0)
    z0, z1 = torch.randn(3, 4, generator=g), torch.randn(3, 4, generator=g)
    path = viz.lerp(z0, z1, 5)
    assert path.shape == (5, 3, 4)
    assert torch.equal(path[0], z0)
    torch.testing.assert_close(path[-1], z1)
    torch.testing.assert_close(path[2], (z0 + z1) / 2)


def test_slerp_endpoints_and_norm():
    g = torch.Generator().manual_seed(0)
    z0, z1 = torch.randn(2, 8, generator=g), torch.randn(2, 8, generator=g)
    z1 = z1 * z0.norm() / z1.norm()  # equal norms
    path = viz.slerp(z0, z1, 7)
    assert path.shape == (7, 2, 8)
    torch.testing.assert_close(path[0], z0, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(path[-1], z1, atol=1e-5, rtol=1e-5)
    norms = path.flatten(1).norm(dim=1)
    torch.testing.assert_close(norms, torch.full((7,), z0.norm().item()), atol=1e-4, rtol=1e-5)
    # lerp would cut the corner: its midpoint is shorter
    assert viz.lerp(z0, z1, 3)[1].norm() < norms[3] - 1e-3


def test_slerp_of_parallel_vectors_falls_back_to_lerp():
    z = torch.tensor([1.0, 2.0])
    torch.testing.assert_close(viz.slerp(z, 2 * z, 3), viz.lerp(z, 2 * z, 3))


def test_slerp_angles_are_even():
    z0, z1 = torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0])
    angles = torch.atan2(*viz.slerp(z0, z1, 4).flip(1).T)
    torch.testing.assert_close(angles, torch.tensor([0, 1, 2, 3]) * (math.pi / 6))


def test_interpolation_strip_rows():
    strip = torch.rand(2, 5, 1, 6, 6)
    fig = viz.interpolation_strip(strip)
    assert fig.axes[0].images[0].get_array().shape == (2 * 7 + 1, 5 * 7 + 1)
    with pytest.raises(ValueError, match="interpolation_strip: expected"):
        viz.interpolation_strip(torch.rand(5, 6, 6))


# ---------------------------------------------------------------------------------- plots


def history_with(values: dict[str, list[float]]) -> History:
    n = len(next(iter(values.values())))
    return History(steps=list(range(n)), seconds=[0.1 * i for i in range(n)], logs=values)


def test_loss_curves_plots_each_key():
    history = history_with({"loss": [3.0, 2.0, 1.0, 0.5], "nll": [3.0, 2.5, 2.0, 1.5]})
    fig = viz.loss_curves(history, smooth=2, x="seconds")
    lines = fig.axes[0].get_lines()
    assert [line.get_label() for line in lines] == ["loss", "nll"]
    assert list(lines[0].get_ydata()) == [3.0, 2.5, 1.5, 0.75]  # trailing mean of 2
    assert list(lines[0].get_xdata()) == history.seconds


def test_loss_curves_unknown_key():
    with pytest.raises(ValueError, match=r"no logged values named \['kl'\]"):
        viz.loss_curves(history_with({"loss": [1.0]}), keys=["kl"])
    with pytest.raises(ValueError, match="x must be"):
        viz.loss_curves(history_with({"loss": [1.0]}), x="epochs")


def test_density_2d_with_a_torch_distribution():
    centre = torch.tensor([1.0, -0.5])
    gaussian = D.MultivariateNormal(centre, 0.1 * torch.eye(2))
    fig = viz.density_2d(
        gaussian.log_prob, samples=gaussian.sample((20,)), lim=2.0, resolution=41, title="gauss"
    )
    heat = torch.as_tensor(fig.axes[0].images[0].get_array())
    assert heat.shape == (41, 41)
    row, col = divmod(int(heat.argmax()), 41)
    grid = torch.linspace(-2, 2, 41)
    assert (grid[col].item(), grid[row].item()) == pytest.approx((1.0, -0.5), abs=0.11)
    with pytest.raises(ValueError, match=r"samples must be \(n, 2\)"):
        viz.density_2d(gaussian.log_prob, samples=torch.zeros(5, 3), resolution=5)


# --------------------------------------------------------------------------- explorer


def test_png_bytes_round_trips_pixels_and_scales():
    import io

    from PIL import Image

    image = torch.tensor([[[0.0, 1.0, 0.5], [1.0, 0.0, 0.25]]])  # 1×2×3
    png = viz.png_bytes(image, scale=4)
    picture = np.array(Image.open(io.BytesIO(png)))
    assert picture.shape == (8, 12)
    assert picture[0, 0] == 0 and picture[0, 4] == 255 and picture[4, 0] == 255
    assert picture[7, 11] == round(0.25 * 255)
    with pytest.raises(ValueError, match="scale"):
        viz.png_bytes(image, scale=0)


def test_latent_explorer_redraws_when_a_slider_moves():
    decoder = torch.nn.Linear(3, 12)
    decode = lambda z: torch.sigmoid(decoder(z)).view(-1, 1, 3, 4)  # noqa: E731
    explorer = viz.latent_explorer(decode, 3, start=torch.tensor([0.5, 0.0, -1.0]), scale=2)
    sliders = [w for w in explorer.children[0].children if hasattr(w, "min")]
    picture = explorer.children[1]
    assert [s.value for s in sliders] == [0.5, 0.0, -1.0]
    assert torch.equal(explorer.code(), torch.tensor([[0.5, 0.0, -1.0]]))
    first = picture.value
    assert first == viz.png_bytes(decode(explorer.code())[0].detach(), 2)
    sliders[1].value = 2.0
    assert picture.value != first
    assert picture.value == viz.png_bytes(decode(explorer.code())[0].detach(), 2)
    explorer.children[0].children[-1].click()  # back to the start
    assert picture.value == first


def test_latent_explorer_refuses_a_start_of_the_wrong_size():
    with pytest.raises(ValueError, match="start must hold 4 numbers, got 3"):
        viz.latent_explorer(lambda z: z, 4, start=torch.zeros(3))
    with pytest.raises(ValueError, match="latent_dim must be >= 1"):
        viz.latent_explorer(lambda z: z, 0)


def test_choice_slider_links_each_setting_to_its_own_picture_in_the_browser():
    pictures = {w: torch.full((3, 1, 2, 2), v) for w, v in [(0, 0.0), (1.5, 0.5), (4, 1.0)]}
    box = viz.choice_slider(pictures, description="w", start=1.5, scale=1)
    slider, stack = box.children
    assert list(slider.options) == ["0", "1.5", "4"] and slider.index == 1
    assert stack.selected_index == 1
    for image, v in zip(box.pictures, pictures.values(), strict=True):
        assert image.value == viz.png_bytes(viz.make_grid(v, nrow=3), 1)
    assert len({image.value for image in box.pictures}) == 3
    # The link is a front-end one (jslink), so it works in a built book with no kernel.
    assert type(box.link).__name__ == "Link"  # ipywidgets.jslink's, not a Python dlink
    assert box.link.source == (slider, "index") and box.link.target == (stack, "selected_index")
    assert "genedu-choice-slider" in box._dom_classes


def test_choice_slider_refuses_what_it_cannot_show():
    with pytest.raises(ValueError, match="at least one setting"):
        viz.choice_slider({})
    with pytest.raises(ValueError, match="start 7 is not one of the settings"):
        viz.choice_slider({0: torch.zeros(1, 1, 2, 2)}, start=7)
    with pytest.raises(ValueError, match="must read differently"):
        viz.choice_slider({1: torch.zeros(1, 1, 2, 2), "1": torch.zeros(1, 1, 2, 2)})
    with pytest.raises(ValueError, match=r"must lie in \[0, 1\]"):
        viz.choice_slider({0: torch.full((1, 1, 2, 2), 2.0)})


def test_glue_returns_its_value_with_and_without_myst_nb(monkeypatch):
    import sys

    assert viz.glue("test_glue_value", 0.5) == 0.5
    monkeypatch.setitem(sys.modules, "myst_nb", None)  # as on Colab: import fails
    assert viz.glue("test_glue_value", "text") == "text"
