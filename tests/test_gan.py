"""genedu.gan: the losses by hand, one explicit round of the game, the loop, checkpoints."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from genedu import data, gan, hub
from genedu.gan import GAN, GANConfig
from genedu.train import TrainingDiverged, fit

REAL = torch.tensor([2.0, -1.0])
FAKE = torch.tensor([0.5, -3.0])


def softplus(v: float) -> float:
    return math.log1p(math.exp(v))


# ------------------------------------------------------------------------------ losses


def test_discriminator_losses_by_hand():
    # -log sigmoid(l_r) - log(1 - sigmoid(l_f)), averaged over each batch
    cross_entropy = (softplus(-2.0) + softplus(1.0)) / 2 + (softplus(0.5) + softplus(-3.0)) / 2
    for kind in ("minimax", "nonsaturating"):
        assert gan.discriminator_loss(REAL, FAKE, kind).item() == pytest.approx(cross_entropy)
    # hinge: mean(relu(1 - l_r)) + mean(relu(1 + l_f)) = (0 + 2)/2 + (1.5 + 0)/2
    assert gan.discriminator_loss(REAL, FAKE, "hinge").item() == pytest.approx(1.75)


def test_generator_losses_by_hand():
    # minimax: mean log(1 - sigmoid(l_f)); nonsaturating: mean -log sigmoid(l_f)
    minimax = (math.log(1 - 1 / (1 + math.exp(-0.5))) + math.log(1 - 1 / (1 + math.exp(3.0)))) / 2
    assert gan.generator_loss(FAKE, "minimax").item() == pytest.approx(minimax)
    nonsat = (-math.log(1 / (1 + math.exp(-0.5))) - math.log(1 / (1 + math.exp(3.0)))) / 2
    assert gan.generator_loss(FAKE, "nonsaturating").item() == pytest.approx(nonsat)
    assert gan.generator_loss(FAKE, "hinge").item() == pytest.approx(1.25)


def test_minimax_generator_gradient_vanishes_where_nonsaturating_does_not():
    # D rejects the fake confidently (logit -8): eq. 1's gradient is ~sigmoid(-8)
    logit = torch.tensor([-8.0], requires_grad=True)
    (g_minimax,) = torch.autograd.grad(gan.generator_loss(logit, "minimax"), logit)
    (g_nonsat,) = torch.autograd.grad(gan.generator_loss(logit, "nonsaturating"), logit)
    assert abs(g_minimax.item()) < 1e-3 < 0.99 < abs(g_nonsat.item())


def test_unknown_loss_is_named():
    with pytest.raises(ValueError, match="unknown GAN loss 'wasserstein'"):
        gan.discriminator_loss(REAL, FAKE, "wasserstein")
    with pytest.raises(ValueError, match="loss must be one of"):
        GANConfig(loss="wgan")


def test_r1_penalty_of_a_linear_critic_is_half_the_squared_weight_norm():
    class Linear(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(torch.tensor([3.0, -4.0]))

        def forward(self, x, y=None):
            return x @ self.w

    penalty = gan.r1_penalty(
        Linear(), torch.randn(7, 2, generator=torch.Generator().manual_seed(0))
    )
    assert penalty.item() == pytest.approx(0.5 * 25.0)


# ------------------------------------------------------------------------ the game


def small(**kw) -> GAN:
    torch.manual_seed(0)
    return GAN(GANConfig(hidden=8, latent_dim=8, **kw))


def real_batch(n=16, size=28) -> torch.Tensor:
    return torch.rand(n, 1, size, size, generator=torch.Generator().manual_seed(1))


def params(module: nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in module.parameters()]


def changed(before, module) -> bool:
    return any(not torch.equal(b, p) for b, p in zip(before, module.parameters(), strict=True))


def test_train_step_moves_each_player_only_through_its_own_optimiser():
    model = small()
    opts = model.optimizers()
    assert {id(p) for g in opts["d"].param_groups for p in g["params"]} == {
        id(p) for p in model.discriminator.parameters()
    }
    d0, g0 = params(model.discriminator), params(model.generator)
    logs = gan.train_step(model, real_batch(), opts)
    assert changed(d0, model.discriminator) and changed(g0, model.generator)
    assert set(logs) >= {"d", "g", "d_real", "d_fake"}
    assert all(math.isfinite(v) for v in logs.values())

    # freeze one optimiser (lr 0): its player must not move, whatever the other does
    for frozen in ("d", "g"):
        model = small()
        opts = model.optimizers()
        opts[frozen].param_groups[0]["lr"] = 0.0
        d0, g0 = params(model.discriminator), params(model.generator)
        gan.train_step(model, real_batch(), opts)
        assert changed(d0, model.discriminator) == (frozen == "g")
        assert changed(g0, model.generator) == (frozen == "d")
        assert all(p.requires_grad for p in model.discriminator.parameters())


def test_ema_follows_the_generator_by_its_decay():
    model = small(ema_decay=0.9)
    opts = model.optimizers()
    ema0 = params(model.generator_ema)
    gan.train_step(model, real_batch(), opts)
    for e0, e, p in zip(
        ema0, model.generator_ema.parameters(), model.generator.parameters(), strict=True
    ):
        torch.testing.assert_close(e, 0.9 * e0 + 0.1 * p)
    assert not any(p.requires_grad for p in model.generator_ema.parameters())


@pytest.mark.parametrize("size", [28, 32])
@pytest.mark.parametrize("conditioning", ["input", "projection"])
def test_seeded_sampling_repeats_and_gives_images(size, conditioning):
    model = small(shape=(1, size, size), num_classes=10, conditioning=conditioning)
    a = model.sample(12, generator=torch.Generator().manual_seed(5))
    b = model.sample(12, generator=torch.Generator().manual_seed(5))
    c = model.sample(12, generator=torch.Generator().manual_seed(6))
    assert a.shape == (12, 1, size, size) and 0 <= a.min() and a.max() <= 1
    assert torch.equal(a, b) and not torch.equal(a, c)
    # the class changes the picture for the same z (in eval mode: in train mode, batch
    # norm would subtract a class shared by the whole batch as part of the batch mean)
    model.eval()
    z = model.noise(4, torch.Generator().manual_seed(0))
    y0, y1 = torch.zeros(4, dtype=torch.long), torch.ones(4, dtype=torch.long)
    with torch.no_grad():
        assert not torch.allclose(model.generate(z, y0), model.generate(z, y1))
    assert model.sample(3, y=7).shape == (3, 1, size, size)


def test_conditional_discriminator_depends_on_the_label():
    for conditioning in ("input", "projection"):
        model = small(num_classes=10, conditioning=conditioning)
        nn.init.normal_(model.discriminator.embed.weight) if model.discriminator.embed else None
        x = real_batch(4)
        a = model.discriminator(x, torch.zeros(4, dtype=torch.long))
        b = model.discriminator(x, torch.full((4,), 3, dtype=torch.long))
        assert not torch.allclose(a, b)


def test_minibatch_std_sees_a_collapsed_batch():
    phi = torch.randn(8, 5)
    assert gan.minibatch_stddev(phi).shape == (8, 1)
    assert gan.minibatch_stddev(phi).min() > 0.1
    copies = phi[:1].expand(8, 5)
    assert gan.minibatch_stddev(copies).max() < 1e-3  # only the 1e-8 guard is left
    model = small(minibatch_std=True)
    assert model.discriminator(real_batch(8)).shape == (8,)


def test_bad_inputs_raise_clear_errors():
    model = small()
    with pytest.raises(ValueError, match=r"expected values in \[0, 1\], got values in"):
        fit(model, real_batch() * 2, step=gan.train_step, steps=1, progress=False)
    with pytest.raises(ValueError, match=r"tensor N×1×28×28 .* of shape \(4, 1, 20, 20\)"):
        fit(model, torch.rand(4, 1, 20, 20), step=gan.train_step, steps=1, progress=False)
    with pytest.raises(ValueError, match="unconditional"):
        model.check_data(real_batch(4), torch.zeros(4, dtype=torch.long))
    with pytest.raises(ValueError, match="unconditional"):
        model.sample(3, y=3)
    with pytest.raises(ValueError, match=r"z: expected a float32 tensor \(N, 8\)"):
        model.generate(torch.randn(3, 5))
    cond = small(num_classes=10)
    with pytest.raises(ValueError, match="class-conditional; expected y"):
        cond.check_data(real_batch(4))
    with pytest.raises(ValueError, match=r"in 0\.\.9"):
        cond.check_data(real_batch(4), torch.full((4,), 10, dtype=torch.long))
    with pytest.raises(ValueError, match=r"\(C, S, S\) with C = 1 or 3 and S a multiple of 4"):
        GANConfig(shape=(1, 30, 30))


# ---------------------------------------------------------------------------- the loop


def test_fit_learns_the_ring_of_gaussians():
    ring = data.toy_2d("ring", 2000, generator=torch.Generator().manual_seed(0))
    torch.manual_seed(0)
    model = GAN(GANConfig(architecture="mlp", shape=(2,), latent_dim=4, hidden=64))

    def radius_error(m) -> float:  # the ring has radius 2
        x = m.sample(500, generator=torch.Generator().manual_seed(1))
        return (x.norm(dim=1) - 2).abs().mean().item()

    before = radius_error(model)
    history = fit(
        model, ring, step=gan.train_step, steps=600, lr=1e-3, batch_size=128, progress=False,
        eval_fn=lambda m: {"radius_error": radius_error(m)}, eval_every=300,
    )  # fmt: skip
    assert [e["step"] for e in history.evals] == [300, 600]
    assert history.evals[-1]["radius_error"] < 0.3 < before


def test_fit_is_deterministic_and_resumes_exactly_after_an_interrupt(tmp_path):
    x = (data.load("mnist5k", "train").images[:256].float() / 255).clone()

    def run(steps, **kw):
        model = small()
        history = fit(model, x, step=gan.train_step, steps=steps, batch_size=32,
                      lr=2e-4, progress=False, **kw)  # fmt: skip
        return model, history

    a, ha = run(6)
    b, hb = run(6)
    assert ha.logs["d"] == hb.logs["d"]
    for p, q in zip(a.parameters(), b.parameters(), strict=True):
        assert torch.equal(p, q)

    # Ctrl-C at step 3: the history so far comes back and a checkpoint is left behind
    calls = {"n": 0}

    def interrupt(model):
        calls["n"] += 1
        raise KeyboardInterrupt

    ckpt = tmp_path / "state"
    m, h = run(6, eval_fn=interrupt, eval_every=3, checkpoint=ckpt)
    assert h.interrupted and len(h.steps) == 3 and hub.exists(ckpt)
    m2, h2 = run(6, checkpoint=ckpt, resume=True)
    assert h2.steps == list(range(6)) and not h2.interrupted
    # both players' weights and both optimisers' moments came back: the resumed game
    # ends exactly where the uninterrupted one did
    assert h2.logs == ha.logs
    for (name, p), q in zip(a.state_dict().items(), m2.state_dict().values(), strict=True):
        assert torch.equal(p, q), name


def test_conditional_fit_with_minibatch_std_and_lazy_r1():
    train = data.load("mnist5k", "train")
    model = small(num_classes=10, minibatch_std=True, r1_gamma=1.0, r1_every=2)
    history = fit(model, (train.images[:128], train.labels[:128]), step=gan.train_step,
                  steps=4, batch_size=32, progress=False)  # fmt: skip
    assert [v > 0 for v in history.logs["r1"]] == [True, False, True, False]  # lazy: every 2nd
    with pytest.raises(
        ValueError, match=r"32 integer class labels in 0\.\.9, got values in 1\.\.10"
    ):
        fit(model, (train.images[:128], train.labels[:128] + 1), step=gan.train_step,
            steps=1, batch_size=32, progress=False)  # fmt: skip


def test_fit_names_the_step_where_the_game_diverged(monkeypatch):
    model = small()

    def diverging(*args, **kwargs):
        return {"d": float("nan"), "g": 0.0}

    with pytest.raises(TrainingDiverged, match="at step 0"):
        fit(model, real_batch(), step=diverging, steps=3, progress=False)


def test_max_seconds_stops_the_loop():
    model = small()
    history = fit(model, real_batch(), step=gan.train_step, steps=10_000, max_seconds=0.0,
                  progress=False)  # fmt: skip
    assert len(history.steps) == 1


def test_checkpoint_round_trips(tmp_path):
    model = small(num_classes=10, ema_decay=0.99)
    hub.save(model, tmp_path / "g", metrics={"fid": 1.0})
    loaded = hub.load(tmp_path / "g")
    g = lambda: torch.Generator().manual_seed(3)
    assert torch.equal(model.sample(8, generator=g()), loaded.sample(8, generator=g()))


def test_a_conditional_d_judges_each_fake_with_the_label_g_drew_it_for():
    model = small(num_classes=10)
    x, y = real_batch(8), torch.arange(8) % 10
    seen = {"g": [], "d": []}
    g_forward, d_forward = model.generator.forward, model.discriminator.forward

    def spy_g(z, labels):
        seen["g"].append(labels.clone())
        return g_forward(z, labels)

    def spy_d(images, labels):
        seen["d"].append((images is x, labels.clone()))
        return d_forward(images, labels)

    model.generator.forward, model.discriminator.forward = spy_g, spy_d
    gan.train_step(model, (x, y), model.optimizers(), generator=torch.Generator().manual_seed(3))
    (drawn,) = seen["g"]
    real = [labels for is_real, labels in seen["d"] if is_real]
    fake = [labels for is_real, labels in seen["d"] if not is_real]
    assert len(real) == 1 and torch.equal(real[0], y)
    assert len(fake) == 2 and all(torch.equal(labels, drawn) for labels in fake)
    assert not torch.equal(drawn, y)  # the fake labels are drawn, not the batch's
