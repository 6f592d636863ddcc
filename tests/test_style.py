"""Gram matrices, losses, feature extractors and the optimisation of genedu.apps.style."""

from __future__ import annotations

import re

import pytest
import torch
import torch.nn as nn
from PIL import Image

from genedu import cli
from genedu.apps import features, style


def _image(seed: int, size: int = 32) -> torch.Tensor:
    return torch.rand(1, 3, size, size, generator=torch.Generator().manual_seed(seed))


def _small_features(seed: int = 0) -> style.RandomFeatures:
    return style.RandomFeatures(seed, scales=(1, 2, 4), width=8, content_layers=("scale2",))


# ---------------------------------------------------------------------------- Gram matrix
def test_gram_matrix_matches_a_hand_computation():
    f = torch.tensor([[1.0, 2.0], [0.0, -1.0]])  # channel 0 over 4 positions: 1, 2, 0, -1
    g = torch.tensor([[3.0, 0.0], [1.0, 1.0]])  # channel 1: 3, 0, 1, 1
    features = torch.stack([f, g])[None]  # (1, 2, 2, 2)
    # <f, f> = 1 + 4 + 0 + 1 = 6; <f, g> = 3 + 0 + 0 - 1 = 2; <g, g> = 9 + 0 + 1 + 1 = 11
    expected = torch.tensor([[6.0, 2.0], [2.0, 11.0]]) / 4  # over H·W = 4 positions
    assert torch.equal(style.gram_matrix(features), expected[None])


def test_gram_matrix_is_symmetric_psd_and_blind_to_where_things_are():
    g = torch.Generator().manual_seed(0)
    features = torch.randn(2, 6, 5, 7, generator=g, dtype=torch.float64)
    gram = style.gram_matrix(features)
    assert gram.shape == (2, 6, 6)
    torch.testing.assert_close(gram, gram.transpose(1, 2), rtol=0, atol=1e-12)
    assert torch.linalg.eigvalsh(gram).min() >= -1e-6
    order = torch.randperm(35, generator=g)  # one random shuffle of the 5×7 positions
    shuffled = features.flatten(2)[:, :, order].reshape(features.shape)
    assert not torch.equal(shuffled, features)
    torch.testing.assert_close(style.gram_matrix(shuffled), gram)


def test_gram_matrix_rejects_bad_features():
    with pytest.raises(ValueError, match=r"expected features \(N, C, H, W\)"):
        style.gram_matrix(torch.zeros(3, 4, 4))
    with pytest.raises(ValueError, match="expected float features"):
        style.gram_matrix(torch.zeros(1, 3, 4, 4, dtype=torch.int64))


# ---------------------------------------------------------------------------- losses
def test_style_loss_is_zero_against_itself_and_positive_against_another():
    net = _small_features()
    x, y = _image(0), _image(1)
    fx = net(x)
    grams = {k: style.gram_matrix(fx[k]) for k in net.style_layers}
    assert style.style_loss(net(x.clone()), grams, net.style_layers).item() == 0.0
    assert style.style_loss(net(y), grams, net.style_layers).item() > 0.0
    assert style.content_loss(net(x.clone()), fx, net.content_layers).item() == 0.0
    assert style.content_loss(net(y), fx, net.content_layers).item() > 0.0
    with pytest.raises(ValueError, match="3 layers but 2 weights"):
        style.style_loss(fx, grams, net.style_layers, [1.0, 1.0])


def test_style_loss_ignores_a_flip_that_the_content_loss_sees():
    # Gram matrices forget positions; a flip keeps them (up to padding at the borders)
    net = style.RandomFeatures(0, scales=(1,), width=8, kernel=1, content_layers=("scale1",))
    x = _image(0)
    fx = net(x)
    grams = {k: style.gram_matrix(fx[k]) for k in net.style_layers}
    flipped = net(x.flip(-1))
    assert style.style_loss(flipped, grams, net.style_layers).item() < 1e-10
    assert style.content_loss(flipped, fx, net.content_layers).item() > 1e-3


# ---------------------------------------------------------------------------- extractors
def test_random_features_are_deterministic_for_a_seed_and_differ_across_seeds():
    x = _image(3)
    a, b, c = style.RandomFeatures(7)(x), style.RandomFeatures(7)(x), style.RandomFeatures(8)(x)
    assert list(a) == ["scale1", "scale2", "scale4", "scale8", "scale16"]
    assert a["scale4"].shape == (1, 64, 8, 8)
    for k in a:
        assert torch.equal(a[k], b[k])
        assert not torch.allclose(a[k], c[k])
    assert not any(p.requires_grad for p in style.RandomFeatures(7).parameters())


def test_random_features_reject_bad_layers_and_small_images():
    with pytest.raises(ValueError, match="expected names among scale1, scale2"):
        style.RandomFeatures(0, scales=(1, 2), content_layers=("relu4_2",))
    with pytest.raises(ValueError, match="at least 16 pixels"):
        style.RandomFeatures(0)(torch.rand(1, 3, 8, 8))


def _tiny_vgg19() -> nn.Sequential:
    """VGG-19's `features` layout (16 convolutions, 5 max-pools), with tiny widths."""
    layers, c_in = [], 3
    for block, convs in enumerate(features.VGG19_BLOCKS):
        for _ in range(convs):
            layers += [nn.Conv2d(c_in, 2 + block, 3, padding=1), nn.ReLU(inplace=True)]
            c_in = 2 + block
        layers.append(nn.MaxPool2d(2, 2))
    torch.manual_seed(0)
    return nn.Sequential(*layers)


def test_vgg_names_follow_torchvisions_indices():
    net = _tiny_vgg19()
    names = style.vgg_layer_names(net)
    assert len(names) == len(net) == 37
    assert names[:5] == ["conv1_1", "relu1_1", "conv1_2", "relu1_2", "pool1"]
    assert (names[22], names[29], names[36]) == ("relu4_2", "relu5_1", "pool5")


def test_vgg_features_pick_the_layers_by_name_with_imagenet_normalisation():
    net = _tiny_vgg19()
    vgg = style.VGGFeatures(net)
    x = _image(0)
    out = vgg(x)
    assert set(out) == {"relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1", "relu4_2"}
    assert len(vgg.layers) == 30  # stops after relu5_1, index 29
    mean = torch.tensor(features.IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(features.IMAGENET_STD).view(1, 3, 1, 1)
    normalised = (x - mean) / std
    with torch.no_grad():
        torch.testing.assert_close(out["relu2_1"], net[:7](normalised))  # relu2_1: index 6
        torch.testing.assert_close(out["relu4_2"], net[:23](normalised))
    pools = [type(m).__name__ for m in style.VGGFeatures(net, avg_pool=True).layers[4::5][:2]]
    assert pools == ["AvgPool2d", "AvgPool2d"]  # Gatys's smoother gradients, on request
    with pytest.raises(ValueError, match="unknown or no layers"):
        style.VGGFeatures(net, content_layers=("relu6_1",))


def test_transfer_runs_on_a_vgg_stand_in():
    result = style.transfer(_image(0), _image(1), features=style.VGGFeatures(_tiny_vgg19()),
                            steps=3, progress=False)  # fmt: skip
    assert result.image.shape == (1, 3, 32, 32) and len(result.style) == 4
    assert result.style[-1] < result.style[0]


# ---------------------------------------------------------------------------- optimisation
def test_a_short_transfer_lowers_the_style_loss_and_keeps_pixels_in_range():
    content, look = style.photo("chelsea", 32), style.photo("coffee", 32)
    seen = []
    result = style.transfer(content, look, features=_small_features(), steps=5, progress=False,
                            callback=lambda step, image: seen.append(step))  # fmt: skip
    assert seen == [0, 1, 2, 3, 4]
    assert len(result.style) == len(result.content) == 6
    assert result.content[0] == 0.0  # it starts from the content photo
    assert result.style[-1] < 0.5 * result.style[0]
    assert 0.0 <= result.image.min() and result.image.max() <= 1.0
    assert result.content[-1] < result.content_bound  # nearer the content than the style is


def test_transfer_and_texture_repeat_exactly_for_a_seed():
    look = style.photo("coffee", 32)
    a = style.texture(look, size=32, features=_small_features(), steps=3, progress=False)
    b = style.texture(look, size=32, features=_small_features(), steps=3, progress=False)
    c = style.texture(look, size=32, features=_small_features(), steps=3, seed=1, progress=False)
    assert torch.equal(a.image, b.image) and a.style == b.style
    assert not torch.equal(a.image, c.image)
    assert a.style[-1] < a.style[0] and a.content == [0.0] * 4


@pytest.mark.parametrize(
    ("content", "look", "kwargs", "message"),
    [
        (torch.rand(1, 1, 32, 32), None, {}, r"expected one RGB image of shape \(1, 3, H, W\)"),
        (torch.rand(3, 32, 32), None, {}, r"got \(3, 32, 32\)"),
        (torch.rand(1, 3, 32, 32) * 2, None, {}, r"expected values in \[0, 1\]"),
        (torch.full((1, 3, 32, 32), 200, dtype=torch.uint8), None, {}, "got torch.uint8"),
        (None, torch.rand(1, 4, 32, 32), {}, r"style: expected one RGB image"),
        (None, None, {"steps": 0}, "steps must be a positive integer, got 0"),
        (None, None, {"size": -5}, "size must be an integer >= 8"),
        (None, None, {"init": "grey"}, "init must be 'content' or 'noise'"),
    ],
)
def test_bad_input_says_what_was_expected(content, look, kwargs, message):
    content = _image(0) if content is None else content
    look = _image(1) if look is None else look
    with pytest.raises(ValueError, match=message):
        style.transfer(content, look, steps=kwargs.pop("steps", 1), progress=False, **kwargs)


# ---------------------------------------------------------------------------- images
def test_bundled_photos_load_offline_as_rgb_squares_in_range():
    for name in ("astronaut", "chelsea", "china", "flower", "gravel"):
        x = style.photo(name, 48)
        assert x.shape == (1, 3, 48, 48) and x.dtype == torch.float32
        assert 0.0 <= x.min() and x.max() <= 1.0 and x.std() > 0.05  # a photo, not a blank
    with pytest.raises(ValueError, match="unknown photo 'mona-lisa': expected one of astronaut"):
        style.photo("mona-lisa")


def test_load_image_reads_a_file_and_save_png_writes_one(tmp_path):
    path = tmp_path / "wide.png"
    Image.new("RGB", (60, 30), (255, 0, 0)).save(path)
    x = style.load_image(path, 16)
    assert x.shape == (1, 3, 16, 16)
    torch.testing.assert_close(x[0, :, 0, 0], torch.tensor([1.0, 0.0, 0.0]))
    out = style.save_png(x, tmp_path / "copy.png")
    torch.testing.assert_close(style.load_image(out, None), x, rtol=0, atol=0.5 / 255 + 1e-6)
    assert not list(tmp_path.glob("*.part"))
    with pytest.raises(ValueError, match="neither a bundled photo"):
        style.load_image(tmp_path / "absent.png")


def test_cli_style_and_texture_write_pngs(tmp_path, capsys):
    out = tmp_path / "cat.png"
    args = ["style", "--content", "chelsea", "--style", "coffee", "--out", str(out),
            "--size", "32", "--steps", "2"]  # fmt: skip
    assert cli.main(args) == 0
    assert re.search(r"wrote .*cat\.png: style loss .* less\)", capsys.readouterr().out)
    assert Image.open(out).size == (32, 32)
    tex = tmp_path / "tex.png"
    assert cli.main(["style", "--style", "gravel", "--texture", "--out", str(tex),
                     "--size", "32", "--steps", "2"]) == 0  # fmt: skip
    assert Image.open(tex).size == (32, 32)
    assert cli.main(["style", "--style", "nowhere.jpg", "--out", str(tex)]) == 2
    assert "neither a bundled photo" in capsys.readouterr().err
