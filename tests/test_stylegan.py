"""StyleGAN: demodulation, truncation, mixing, noise, seeded sampling, bad input."""

import pytest
import torch
import torch.nn.functional as F

from genedu import gan, hub, stylegan, train
from genedu.stylegan import StyleGAN, StyleGANConfig

TINY = StyleGANConfig(shape=(1, 16, 16), latent_dim=8, w_dim=8, mapping_layers=2,
                      channel_base=64, hidden=8, d_hidden=8)  # fmt: skip


def tiny(**kw) -> StyleGAN:
    torch.manual_seed(0)
    config = StyleGANConfig(**{**TINY.__dict__, **kw})
    return StyleGAN(config).eval()


def perturb_noise_strengths(model: StyleGAN, value: float = 0.5) -> None:
    """Noise strengths start at zero; give them a value so that noise shows."""
    with torch.no_grad():
        for g in (model.generator, model.generator_ema):
            for layer in g.layers:
                if not layer.rgb:
                    layer.noise_strength.fill_(value)


# ------------------------------------------------------------------ modulation


def test_demodulation_keeps_unit_variance_for_unit_variance_input():
    torch.manual_seed(0)
    x = torch.randn(16, 64, 24, 24)
    weight = torch.randn(32, 64, 3, 3)
    styles = torch.rand(16, 64) * 3 + 0.1  # wildly different per-channel scales
    out = stylegan.modulated_conv2d(x, weight, styles)[:, :, 1:-1, 1:-1]  # off the padding
    var = out.var((0, 2, 3))  # per output channel, over examples and pixels
    assert var.mean().item() == pytest.approx(1.0, abs=0.03)
    assert (var - 1).abs().max().item() < 0.15
    plain = stylegan.modulated_conv2d(x, weight, styles, demodulate=False)
    assert plain[:, :, 1:-1, 1:-1].var((0, 2, 3)).mean() > 50  # without it the scale runs off


def test_modulated_conv_equals_a_convolution_with_per_example_weights():
    torch.manual_seed(1)
    x, weight, styles = torch.randn(3, 4, 6, 6), torch.randn(5, 4, 3, 3), torch.randn(3, 4)
    out = stylegan.modulated_conv2d(x, weight, styles)
    for n in range(3):  # eqs. 1-3 written out, one example at a time
        w = weight * styles[n][None, :, None, None]
        w = w / (w.pow(2).sum((1, 2, 3), keepdim=True) + 1e-8).sqrt()
        expected = F.conv2d(x[n : n + 1], w, padding=1)
        assert torch.allclose(out[n : n + 1], expected, atol=1e-5)


def test_adain_sets_each_channels_mean_and_std():
    torch.manual_seed(2)
    x = torch.randn(2, 3, 8, 8) * 5 + 2
    scale, bias = torch.tensor([[1.0, 2.0, 0.5], [3.0, 1.0, 1.0]]), torch.randn(2, 3)
    y = stylegan.adain(x, scale, bias)
    assert torch.allclose(y.mean((2, 3)), bias, atol=1e-5)
    assert torch.allclose(y.std((2, 3), unbiased=False), scale, atol=1e-3)


def test_mapping_network_starts_with_pixel_norm():
    model = tiny()
    z = torch.randn(4, 8)
    assert torch.allclose(model.generator.mapping(z), model.generator.mapping(3 * z), atol=1e-5)


# ------------------------------------------------------------------ truncation


def test_psi_zero_gives_the_average_w_and_one_image_for_every_z():
    model = tiny()
    with torch.no_grad():
        model.generator_ema.mapping.w_avg.copy_(torch.randn(8))
    perturb_noise_strengths(model)
    z = torch.randn(6, 8)
    w = model.w(z, psi=0.0)
    assert torch.equal(w, model.generator_ema.mapping.w_avg.expand(6, -1))
    x = model.sample(6, psi=0.0, generator=torch.Generator().manual_seed(3))
    assert torch.equal(x, x[:1].expand_as(x))
    assert not torch.equal(
        model.sample(6, psi=1.0), model.sample(6, psi=1.0)[:1].expand(6, -1, -1, -1)
    )


def test_psi_one_changes_nothing_and_psi_between_interpolates():
    model = tiny()
    with torch.no_grad():
        model.generator_ema.mapping.w_avg.copy_(torch.randn(8))
    z = torch.randn(4, 8)
    w = model.generator_ema.mapping(z)
    assert torch.equal(model.w(z, psi=1.0), w)
    avg = model.generator_ema.mapping.w_avg
    assert torch.allclose(model.w(z, psi=0.5), avg + 0.5 * (w - avg), atol=1e-6)
    ws = w[:, None].expand(-1, model.config.num_ws, -1)
    assert torch.equal(model.generate(z, psi=1.0), model.synthesize(ws))


def test_training_forward_tracks_the_average_w():
    model = tiny(mixing=0.0, w_avg_beta=0.5).train()
    z = torch.randn(32, 8)
    model.generator(z)
    w = model.generator.mapping(z).mean(0)
    assert torch.allclose(model.generator.mapping.w_avg, 0.5 * w, atol=1e-5)


# ------------------------------------------------------------------ mixing


def hooked_styles(model: StyleGAN, run, generator=None) -> dict[tuple[int, bool], torch.Tensor]:
    """The w each styled layer's affine map received while `run()` ran, keyed by
    (w_index, is_rgb). A forward hook that returns None leaves the output alone."""
    seen, handles = {}, []
    for layer in (generator or model.g).layers:

        def hook(module, inputs, output, key=(layer.w_index, layer.rgb)):
            seen[key] = inputs[0]

        handles.append(layer.affine.register_forward_hook(hook))
    try:
        run()
    finally:
        for h in handles:
            h.remove()
    return seen


@pytest.mark.parametrize("crossover", [0, 1, 3, 6])
def test_mix_gives_coarse_layers_w1_and_fine_layers_w2(crossover):
    model = tiny()
    assert model.config.num_ws == 6  # 16×16: 4×4 (conv, rgb) + 2 blocks of 3, sharing
    z1, z2 = torch.randn(2, 8), torch.randn(2, 8)
    w1, w2 = model.w(z1), model.w(z2)
    seen = hooked_styles(model, lambda: model.mix(z1, z2, crossover))
    assert len(seen) == len(model.g.layers)
    for (i, _), w in seen.items():
        assert torch.equal(w, w1 if i < crossover else w2), (i, crossover)


def test_mix_at_the_ends_is_one_sources_image():
    model = tiny()
    perturb_noise_strengths(model)
    z1, z2 = torch.randn(3, 8), torch.randn(3, 8)
    assert torch.equal(model.mix(z1, z2, 0), model.generate(z2))
    assert torch.equal(model.mix(z1, z2, model.config.num_ws), model.generate(z1))


def test_style_mixing_regularisation_feeds_two_ws_while_training():
    model = tiny(mixing=1.0).train()
    torch.manual_seed(4)
    seen = hooked_styles(model, lambda: model.generator(torch.randn(4, 8)), model.generator)
    firsts, lasts = seen[(0, False)], seen[(model.config.num_ws - 1, True)]
    assert not torch.equal(firsts, lasts)
    model = tiny(mixing=0.0).train()
    seen = hooked_styles(model, lambda: model.generator(torch.randn(4, 8)), model.generator)
    assert all(torch.equal(w, seen[(0, False)]) for w in seen.values())


# ------------------------------------------------------------------ noise


def test_noise_strengths_start_at_zero_so_every_mode_agrees_at_init():
    model = tiny()
    strengths = [layer.noise_strength for layer in model.g.layers if not layer.rgb]
    assert strengths and all(s.item() == 0 for s in strengths)
    z = torch.randn(3, 8)
    assert torch.equal(model.generate(z, noise="zero"), model.generate(z, noise="random"))


def test_fixed_noise_is_deterministic_and_random_noise_is_not():
    model = tiny()
    perturb_noise_strengths(model)
    z = torch.randn(3, 8)
    assert torch.equal(model.generate(z, noise="fixed"), model.generate(z, noise="fixed"))
    a, b = model.generate(z, noise="random"), model.generate(z, noise="random")
    assert not torch.equal(a, b)
    assert not torch.equal(model.generate(z, noise="zero"), model.generate(z, noise="fixed"))
    # noise changes details, not the picture: far less than another z does
    other = model.generate(torch.randn(3, 8), noise="fixed")
    assert (a - b).abs().mean() < (a - other).abs().mean()


def test_seeded_sampling_repeats_exactly():
    model = tiny()
    perturb_noise_strengths(model)
    for noise in stylegan.NOISE_MODES:
        a = model.sample(5, generator=torch.Generator().manual_seed(7), noise=noise, psi=0.7)
        b = model.sample(5, generator=torch.Generator().manual_seed(7), noise=noise, psi=0.7)
        assert torch.equal(a, b)
        assert a.shape == (5, 1, 16, 16) and a.min() >= 0 and a.max() <= 1
    c = model.sample(5, generator=torch.Generator().manual_seed(8))
    assert not torch.equal(c, model.sample(5, generator=torch.Generator().manual_seed(7)))


# ------------------------------------------------------------------ bad input


@pytest.mark.parametrize("shape", [(1, 24, 24), (1, 4, 4), (1, 16, 32), (2, 16, 16), (1, 16)])
def test_bad_shapes_are_refused(shape):
    with pytest.raises(ValueError, match="power of two"):
        StyleGANConfig(shape=shape)


@pytest.mark.parametrize("psi", [-0.1, 1.5])
def test_psi_outside_the_unit_interval_is_refused(psi):
    with pytest.raises(ValueError, match=r"psi: expected a finite number in \[0, 1\]"):
        tiny().sample(2, psi=psi)


@pytest.mark.parametrize("crossover", [-1, 7])
def test_crossover_out_of_range_is_refused(crossover):
    with pytest.raises(
        ValueError, match=r"crossover(: expected a whole number >= 0| must lie in 0\.\.6)"
    ):
        tiny().mix(torch.randn(2, 8), torch.randn(2, 8), crossover)


def test_generate_draws_from_the_ema_generator_unless_told_not_to():
    model = tiny()
    with torch.no_grad():
        for p in model.generator.parameters():
            p.add_(0.1)  # the trained generator moves; its EMA copy has not followed yet
    z = torch.randn(2, 8)
    ema, raw = model.generate(z), model.generate(z, ema=False)
    assert not torch.equal(ema, raw)
    assert torch.equal(raw, model.to_data(model.generator.synthesis(
        model.generator.mapping(z)[:, None].expand(-1, 6, -1), "fixed")).clamp(0, 1))  # fmt: skip


@pytest.mark.parametrize(
    "field, value", [("r1_every", 0), ("mapping_lr", 0.0), ("d_hidden", 0), ("loss", "wasserstein")]
)
def test_bad_recipes_are_refused(field, value):
    with pytest.raises(ValueError, match=field if field != "loss" else "loss must be one of"):
        StyleGANConfig(**{field: value})


def test_other_bad_input_is_refused():
    model = tiny()
    with pytest.raises(ValueError, match="noise must be one of"):
        model.sample(2, noise="loud")
    with pytest.raises(ValueError, match=r"z: expected a float32 tensor \(N, 8\)"):
        model.generate(torch.randn(2, 5))
    with pytest.raises(ValueError, match=r"ws must have shape \(N, 6, 8\)"):
        model.synthesize(torch.randn(2, 5, 8))
    with pytest.raises(ValueError, match="unknown augment"):
        StyleGANConfig(augment="colour")
    with pytest.raises(ValueError, match="unconditional"):
        model.sample(2, y=1)


# ------------------------------------------------------------------ augmentation, training


def test_diff_augment_is_differentiable_and_translation_only_shifts():
    torch.manual_seed(5)
    x = torch.zeros(8, 1, 16, 16)
    x[:, :, 8, 8] = 1.0
    moved = stylegan.diff_augment(x, "translation")
    assert torch.equal(moved.flatten(1).sum(1), torch.ones(8))  # one bright pixel each
    where = moved[:, 0].flatten(1).argmax(1)
    rows, cols = where // 16, where % 16
    assert ((rows - 8).abs() <= 2).all() and ((cols - 8).abs() <= 2).all()
    assert len(set(where.tolist())) > 1  # each image its own shift
    ones = torch.ones(8, 1, 16, 16)
    cut = stylegan.diff_augment(ones, "cutout")
    zeros = (cut == 0).flatten(1).sum(1)
    assert (zeros > 0).all() and (zeros <= 64).all()
    y = torch.rand(4, 1, 16, 16, requires_grad=True)
    stylegan.diff_augment(y, "color,translation,cutout").sum().backward()
    assert y.grad is not None and y.grad.abs().sum() > 0


def test_diff_augment_colour_is_brightness_then_saturation_then_contrast():
    """On colour images: a shift b, then each pixel's channels spread about their mean by
    s, then the image spread about its mean by c: the three draws, in that order."""
    x = torch.rand(4, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    torch.manual_seed(1)
    got = stylegan.diff_augment(x, "color")
    torch.manual_seed(1)
    b, s, c = torch.rand(4, 1, 1, 1) - 0.5, torch.rand(4, 1, 1, 1) * 2, torch.rand(4, 1, 1, 1) + 0.5
    y = x + b
    grey = y.mean(1, keepdim=True)  # saturation keeps each pixel's channel mean
    y = (y - grey) * s + grey
    y = (y - y.mean((1, 2, 3), keepdim=True)) * c + y.mean((1, 2, 3), keepdim=True)
    torch.testing.assert_close(got, y)
    torch.testing.assert_close(
        got.mean(1) - got.mean((1, 2, 3))[:, None, None],
        c[:, 0] * (grey[:, 0] - grey.mean((1, 2, 3))[:, None, None]),
    )


def test_fit_trains_a_tiny_stylegan_and_a_checkpoint_round_trips(tmp_path):
    model = tiny(augment="color,translation", r1_every=2).train()
    images = (torch.rand(64, 1, 16, 16) * 255).to(torch.uint8)
    before = [p.detach().clone() for p in model.generator.parameters()]
    history = train.fit(model, images, step=gan.train_step, steps=4, lr=2e-3,
                        betas=(0.0, 0.99), batch_size=16, progress=False)  # fmt: skip
    assert len(history.steps) == 4 and all(torch.isfinite(torch.tensor(history["d"])))
    assert any(r > 0 for r in history["r1"])  # lazy R1 ran
    after = list(model.generator.parameters())
    assert any(not torch.equal(a, b) for a, b in zip(before, after, strict=True))
    hub.save(model, tmp_path / "sg")
    loaded = hub.load(tmp_path / "sg")
    g = lambda: torch.Generator().manual_seed(0)  # noqa: E731
    assert torch.equal(loaded.sample(3, generator=g()), model.sample(3, generator=g()))


def test_shipped_stylegan_mnist_gives_one_image_at_psi_zero():
    model = hub.load("stylegan-mnist")
    assert model.config.shape == (1, 32, 32)
    x = model.sample(8, psi=0.0, generator=torch.Generator().manual_seed(0))
    assert torch.equal(x, x[:1].expand_as(x))
    y = model.sample(8, psi=1.0, generator=torch.Generator().manual_seed(0))
    assert (y - y[:1]).abs().flatten(1).mean(1)[1:].min() > 0.01  # distinct digits


# ------------------------------------------------------------------ chapter tools


def modconv_grouped(x, weight, styles):  # the official code's grouped form, written apart
    n, i, h, w = x.shape
    wts = weight[None] * styles[:, None, :, None, None]  # (N, O, I, k, k)
    wts = wts * torch.rsqrt(wts.pow(2).sum((2, 3, 4), keepdim=True) + 1e-8)
    out = F.conv2d(x.reshape(1, n * i, h, w), wts.flatten(0, 1), padding=1, groups=n)
    return out.view(n, -1, h, w)


def test_modulated_conv2d_checker():
    from genedu import checks

    assert checks.modulated_conv2d(modconv_grouped)
    assert not checks.modulated_conv2d(
        lambda x, w, s: F.conv2d(x * s[:, :, None, None], w, padding=1)
    )
    assert not checks.modulated_conv2d(lambda x, w, s: None)


def test_truncate_and_mixed_styles_checkers():
    from genedu import checks

    assert checks.truncate(lambda w, avg, psi: torch.lerp(avg, w, psi))
    assert not checks.truncate(lambda w, avg, psi: psi * w)  # forgets the centre
    right = lambda w1, w2, c, k: torch.stack([w1] * c + [w2] * (k - c), 1)  # noqa: E731
    assert checks.mixed_styles(right)
    off_by_one = lambda w1, w2, c, k: torch.stack(
        [w1] * min(c + 1, k) + [w2] * (k - min(c + 1, k)), 1
    )  # noqa: E731
    assert not checks.mixed_styles(off_by_one)


def test_mixing_grid_puts_the_sources_at_the_heads():
    import matplotlib

    matplotlib.use("Agg")
    from genedu import viz

    model = tiny()
    z_rows, z_cols = torch.randn(2, 8), torch.randn(3, 8)
    fig = viz.mixing_grid(model, z_rows, z_cols, 2)
    grid = torch.tensor(fig.axes[0].images[0].get_array()).float()  # (H, W) of the grid
    cell = lambda r, c: grid[1 + r * 17 : 1 + r * 17 + 16, 1 + c * 17 : 1 + c * 17 + 16]  # noqa: E731
    assert torch.allclose(cell(1, 0), model.generate(z_rows[:1])[0, 0], atol=1e-5)  # coarse
    assert torch.allclose(cell(0, 2), model.generate(z_cols[1:2])[0, 0], atol=1e-5)  # fine
    assert torch.allclose(cell(2, 3), model.mix(z_rows[1:], z_cols[2:], 2)[0, 0], atol=1e-5)


def test_style_explorer_redraws_when_a_slider_moves():
    from genedu import viz

    model = tiny()
    perturb_noise_strengths(model)  # the explorer draws with the fixed noise maps
    explorer = viz.style_explorer(model, seeds=(1, 2), scale=1)
    psi, crossover, seed_a, _ = explorer.children[0].children
    picture = explorer.children[1]
    first = picture.value
    z1, z2 = (model.noise(1, torch.Generator().manual_seed(s)) for s in (1, 2))
    row = torch.cat([model.mix(z1, z2, 6), model.mix(z1, z2, 3), model.mix(z1, z2, 0)])
    assert first == viz.png_bytes(viz.make_grid(row, nrow=3, pad=2), 1)
    crossover.value = 5
    assert picture.value != first
    psi.value, crossover.value = 0.0, 3  # psi 0: every image is the average one
    row = model.mix(z1, z2, 3, psi=0.0).expand(3, -1, -1, -1)
    assert picture.value == viz.png_bytes(viz.make_grid(row, nrow=3, pad=2), 1)
