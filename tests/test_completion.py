"""Image completion (genedu.apps.completion): masks, the three methods, the scores."""

from __future__ import annotations

import pytest
import torch

from genedu import data
from genedu.apps import completion
from genedu.pixelcnn import GatedPixelCNN, PixelCNNConfig
from genedu.vae import VAE, VAEConfig

SHAPE = (1, 12, 12)


def _digits(n: int = 6, seed: int = 0) -> torch.Tensor:
    return (torch.rand(n, *SHAPE, generator=torch.Generator().manual_seed(seed)) < 0.3).float()


def _models() -> dict:
    torch.manual_seed(0)
    pixelcnn = GatedPixelCNN(PixelCNNConfig(shape=SHAPE, hidden=8, layers=2))
    vae = VAE(VAEConfig(shape=SHAPE, latent_dim=3, hidden=4))
    return {"pixelcnn": pixelcnn, "vae": vae}


def _run(method: str, x, known, models, train, **kw):
    if method == "neighbour":
        return completion.nearest_neighbour_complete(train, x, known, **kw)
    fill = completion.pixelcnn_complete if method == "pixelcnn" else completion.vae_complete
    extra = {"steps": 5} if method == "vae" else {}
    return fill(models[method], x, known, generator=torch.Generator().manual_seed(0), **kw, **extra)


# ------------------------------------------------------------------------------- masks
def test_masks_hide_the_stated_region():
    bottom, right, centre = (completion.mask(k, (28, 28)) for k in completion.MASKS)
    assert bottom.shape == (1, 1, 28, 28) and bottom.dtype == torch.bool
    assert bottom[..., :14, :].all() and not bottom[..., 14:, :].any()
    assert right[..., :, :14].all() and not right[..., :, 14:].any()
    assert (~centre).sum() == 14 * 14 and not centre[..., 7:21, 7:21].any()
    assert (~completion.mask("centre", (28, 28), size=6)).sum() == 36
    with pytest.raises(ValueError, match="kind must be one of"):
        completion.mask("top")


def test_masks_that_hide_nothing_or_everything_are_refused():
    x = _digits(2)
    everything = torch.zeros(1, 1, *SHAPE[1:], dtype=torch.bool)
    with pytest.raises(ValueError, match="hides everything"):
        completion.check_known(everything, x, "t")
    with pytest.raises(ValueError, match="hides nothing"):
        completion.check_known(~everything, x, "t")
    with pytest.raises(ValueError, match="does not fit"):
        completion.check_known(completion.mask("bottom", (28, 28)), x, "t")
    with pytest.raises(ValueError, match="bool mask"):
        completion.check_known(completion.mask("bottom", SHAPE[1:]).float(), x, "t")
    mixed = completion.mask("bottom", SHAPE[1:]).repeat(2, 1, 1, 1)
    mixed[1] = True  # the second image would have nothing to complete
    with pytest.raises(ValueError, match="hides nothing"):
        completion.check_known(mixed, x, "t")


# ----------------------------------------------------------------------------- methods
@pytest.mark.parametrize("method", completion.METHODS)
@pytest.mark.parametrize("kind", completion.MASKS)
def test_completion_never_changes_known_pixels_nor_reads_hidden_ones(method, kind):
    x, train, models = _digits(), _digits(40, seed=1), _models()
    known = completion.mask(kind, SHAPE[1:])
    out = _run(method, x, known, models, train, samples=3)
    assert out.shape == (6, 3, *SHAPE)
    assert torch.equal(out[known.expand(6, 3, 1, -1, -1)[:, :, :1].expand_as(out)],
                       x[:, None].expand_as(out)[known.expand(6, 3, 1, -1, -1)])  # fmt: skip
    assert set(out.unique().tolist()) <= {0.0, 1.0}
    # the hidden pixels' true values must not leak into the completion
    scrambled = torch.where(known, x, 1 - x)
    assert torch.equal(out, _run(method, scrambled, known, models, train, samples=3))


@pytest.mark.parametrize("method", ["pixelcnn", "vae"])
def test_sampled_completions_are_seeded_and_diverse(method):
    x, models = _digits(4), _models()
    known = completion.mask("bottom", SHAPE[1:])
    grey = {"binary": False} if method == "vae" else {}  # an untrained decoder's means
    a = _run(method, x, known, models, None, samples=4, **grey)
    b = _run(method, x, known, models, None, samples=4, **grey)
    assert torch.equal(a, b)
    assert not torch.equal(a[:, 0], a[:, 1])  # different draws, different completions


def test_nearest_neighbour_retrieves_the_image_itself_first():
    train = _digits(50, seed=2)
    x = train[[3, 17, 41]]
    out = completion.nearest_neighbour_complete(train, x, completion.mask("right", SHAPE[1:]),
                                                samples=2)  # fmt: skip
    assert torch.equal(out[:, 0], x)  # distance 0 on the known half: itself
    assert not torch.equal(out[:, 1], x)


def test_vae_search_fits_the_known_pixels_better_than_its_start():
    model = _models()["vae"]
    x = _digits(8, seed=3)
    known = completion.mask("bottom", SHAPE[1:])
    xs, ks = x.repeat_interleave(2, 0), known.float()
    fit = {}
    for steps in (0, 40):
        z = completion.vae_search(model, x, known, samples=2, steps=steps,
                                  generator=torch.Generator().manual_seed(0))  # fmt: skip
        with torch.no_grad():
            fit[steps] = completion.known_fit(model, z, xs, ks)
    assert (fit[40] < fit[0]).all()
    # the objective reads the known pixels only
    z = torch.randn(16, 3)
    flipped = torch.where(known, xs, 1 - xs)
    with torch.no_grad():
        assert torch.equal(completion.known_fit(model, z, xs, ks),
                           completion.known_fit(model, z, flipped, ks))  # fmt: skip


def test_methods_reject_bad_input():
    x, models = _digits(2), _models()
    known = completion.mask("bottom", SHAPE[1:])
    with pytest.raises(TypeError, match="expected a float32 tensor .* got a uint8 tensor"):
        completion.pixelcnn_complete(models["pixelcnn"], (x * 255).to(torch.uint8), known)
    with pytest.raises(ValueError, match=r"tensor N×1×12×12 .* of shape \(2, 3, 12, 12\)"):
        completion.vae_complete(models["vae"], torch.zeros(2, 3, 12, 12), known)
    with pytest.raises(ValueError, match=r"values in \[0, 1\]"):
        completion.vae_complete(models["vae"], x * 2, known)
    with pytest.raises(ValueError, match="samples"):
        completion.nearest_neighbour_complete(x, x, known, samples=0)
    with pytest.raises(ValueError, match="training images must be"):
        completion.nearest_neighbour_complete(torch.zeros(5, 1, 8, 8), x, known)
    with pytest.raises(ValueError, match="method must be one of"):
        completion.complete("gan", x, known)


# ------------------------------------------------------------------------------ scores
class _Reader:
    """A stand-in classifier: reads the digit as the number of lit pixels mod 10."""

    def predict(self, x):
        return x.flatten(1).sum(1).long() % 10


def test_evaluate_closed_forms():
    truth = _digits(5, seed=4)
    known = completion.mask("bottom", SHAPE[1:])
    labels = _Reader().predict(truth)
    same = truth[:, None].repeat(1, 3, 1, 1, 1)
    s = completion.evaluate(same, truth, known, labels, _Reader())
    assert (s.accuracy, s.agreement, s.diversity, s.completions) == (1.0, 1.0, 0.0, 15)
    inverted = torch.where(known, truth, 1 - truth)[:, None].repeat(1, 2, 1, 1, 1)
    assert completion.evaluate(inverted, truth, known, labels, _Reader()).agreement == 0.0
    # two completions: the truth and its hidden-inverse differ on every hidden pixel
    pair = torch.stack([truth, inverted[:, 0]], 1)
    s = completion.evaluate(pair, truth, known, labels, _Reader())
    assert s.diversity == 1.0 and s.agreement == 0.5
    with pytest.raises(ValueError, match="expected completions"):
        completion.evaluate(truth, truth, known, labels, _Reader())


def test_the_shipped_models_complete_real_digits(tmp_path):
    digits = data.load("mnist5k", "test")
    x = data.binarize(digits.images[:12], generator=torch.Generator().manual_seed(0))
    known = completion.mask("bottom")
    out, seconds = completion.complete("vae", x, known, samples=2, steps=30)
    assert out.shape == (12, 2, 1, 28, 28) and seconds > 0
    nn_out, _ = completion.complete("neighbour", x, known, samples=2,
                                    train_images=data.binarize(digits.images[100:]))  # fmt: skip
    # a real digit's bottom half is mostly dark, and both methods should know it
    for filled in (out, nn_out):
        hidden = filled[..., 14:, :]
        assert 0.02 < hidden.mean() < 0.3


def test_cli_complete_writes_a_grid_and_prints_the_scores(tmp_path, capsys):
    from PIL import Image

    from genedu import cli

    out = tmp_path / "c.png"
    args = ["complete", "--n", "2", "--samples", "2", "--no-progress", "--out", str(out)]
    assert cli.main(args) == 0
    printed = capsys.readouterr().out
    for method in completion.METHODS:
        assert f"{method:<10} read as the true digit" in printed
    # 2 rows: input, 3 methods × 2 completions, truth = 8 columns of 28 + 1 px padding
    assert Image.open(out).size == (8 * 29 + 1, 2 * 29 + 1)
    assert not list(tmp_path.glob("*.part"))
    assert cli.main(["complete", "--n", "0", "--out", str(out)]) == 2


def test_a_class_conditional_pixelcnn_draws_each_completions_class_from_the_posterior():
    torch.manual_seed(0)
    model = GatedPixelCNN(PixelCNNConfig(shape=SHAPE, hidden=8, layers=2, num_classes=3))
    x, known = _digits(3), completion.mask("bottom", SHAPE[1:])
    g = lambda: torch.Generator().manual_seed(5)  # noqa: E731
    out = completion.pixelcnn_complete(model, x, known, samples=4, generator=g())
    assert torch.equal(out, completion.pixelcnn_complete(model, x, known, samples=4,
                                                         generator=g()))  # fmt: skip
    assert torch.equal(out[:, :, :, :6], x[:, None, :, :6].expand(-1, 4, -1, -1, -1))
    # the classes come from p(y | top half), drawn with the same generator first
    posterior = model._class_posterior(x, known.expand_as(x))
    classes = posterior.multinomial(4, replacement=True, generator=g()).flatten()
    after = _after_multinomial(posterior)
    expected = model.complete(x.repeat_interleave(4, 0), known.expand(12, -1, -1, -1),
                              generator=after, y=classes)  # fmt: skip
    assert torch.equal(out.flatten(0, 1), expected)


def _after_multinomial(posterior):
    gen = torch.Generator().manual_seed(5)
    posterior.multinomial(4, replacement=True, generator=gen)
    return gen


def test_the_latent_search_never_reads_the_hidden_pixels():
    """The codes found, not the thresholded picture: whatever the hidden pixels hold,
    the search starts from the same encoding and takes the same steps."""
    model = _models()["vae"]
    x = _digits(4, seed=5)
    known = completion.mask("bottom", SHAPE[1:])
    flipped = torch.where(known, x, 1 - x)
    z = {}
    for name, images in (("x", x), ("flipped", flipped)):
        z[name] = completion.vae_search(model, images, known, samples=2, steps=5,
                                        generator=torch.Generator().manual_seed(0))  # fmt: skip
    assert torch.equal(z["x"], z["flipped"])
    # and the check can fail: the encoder itself does see the flipped pixels
    with torch.no_grad():
        assert not torch.equal(model.encode(x)[0], model.encode(flipped)[0])
