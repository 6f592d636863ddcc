"""genedu.diffusion: the forward process, the three views, the samplers against closed
forms, guidance, the exact likelihood, and training on one batch."""

from __future__ import annotations

import math

import pytest
import torch

from genedu import diffusion, hub, train
from genedu.diffusion import DDPM, DiffusionConfig, FlowMatching

POINTS = DiffusionConfig(shape=(2,), architecture="mlp", hidden=16, layers=2)
IMAGES = DiffusionConfig(shape=(1, 8, 8), hidden=8, timesteps=20)


def g(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# ----------------------------------------------------------------- the forward process


@pytest.mark.parametrize("schedule", diffusion.SCHEDULES)
def test_alpha_bar_falls_from_near_one_to_near_zero(schedule):
    ab = diffusion.alpha_bars(diffusion.betas(schedule, 1000))
    assert (ab[1:] < ab[:-1]).all()
    assert 1 > ab[0] > 0.999 and 0 < ab[-1] < 1e-4


@pytest.mark.parametrize("schedule", diffusion.SCHEDULES)
@pytest.mark.parametrize("steps", [5, 20, 100])
def test_short_schedules_stay_valid(schedule, steps):
    beta = diffusion.betas(schedule, steps)
    ab = diffusion.alpha_bars(beta)
    assert ((0 < beta) & (beta < 1)).all() and (ab[1:] < ab[:-1]).all() and ab[-1] > 0


def test_the_linear_schedule_is_ho_et_als():
    beta = diffusion.betas("linear", 1000)
    assert beta[0].item() == pytest.approx(1e-4) and beta[-1].item() == pytest.approx(0.02)


def test_the_forward_marginal_has_the_schedules_mean_and_variance():
    model = DDPM(DiffusionConfig(shape=(2,), architecture="mlp", timesteps=100))
    x0 = torch.tensor([[1.5, -0.5]]).expand(200_000, 2)
    for t in (0, 30, 99):
        ts = torch.full((len(x0),), t)
        xt = model.noised(x0, ts, torch.randn(x0.shape, generator=g(t)))
        ab = model.alpha_bar[t]
        assert torch.allclose(xt.mean(0), ab.sqrt() * x0[0], atol=0.01)
        assert torch.allclose(xt.var(0), (1 - ab).expand(2), atol=0.01)


# ------------------------------------------------------------ the three views, both ways


def test_noise_score_and_velocity_convert_both_ways():
    x_t, eps = torch.randn(50, 3, generator=g(1)), torch.randn(50, 3, generator=g(2))
    a, s, da, ds = torch.rand(50, 1, generator=g(3)) + 0.1, torch.rand(50, 1) + 0.1, 0.7, -1.3
    score = diffusion.noise_to_score(eps, s)
    assert torch.allclose(diffusion.score_to_noise(score, s), eps, atol=1e-6)
    v = diffusion.noise_to_velocity(x_t, eps, a, s, da, ds)
    assert torch.allclose(diffusion.velocity_to_noise(x_t, v, a, s, da, ds), eps, atol=1e-4)
    # and on the straight path, ε = x_t - t v, the form flow matching's tests use
    t = torch.rand(50, 1, generator=g(4))
    v = diffusion.noise_to_velocity(x_t, eps, *diffusion.flow_path(t))
    assert torch.allclose(x_t - t * v, eps, atol=1e-5)


def test_the_closed_form_score_is_the_gaussian_marginals():
    """For data N(m, c²), p_t = N(a m, a²c² + s²): its score -(x - a m)/(a²c² + s²) is
    what the perfect noise prediction says through noise_to_score."""
    m, c, a, s = 0.8, 0.3, 0.6, 0.8
    x = torch.linspace(-3, 3, 7).double().requires_grad_(True)
    log_p = torch.distributions.Normal(a * m, math.sqrt(a**2 * c**2 + s**2)).log_prob(x).sum()
    (score,) = torch.autograd.grad(log_p, x)
    eps = diffusion.gaussian_noise(x.detach(), a, s, m, c)
    assert torch.allclose(diffusion.noise_to_score(eps, s), score)
    # and the perfect denoiser is the same prediction seen as data
    x_hat = diffusion.noise_to_data(x.detach(), eps, a, s)
    assert torch.allclose(diffusion.gaussian_denoiser(x.detach(), a, s, m, c), x_hat)


# ----------------------------------------------- the samplers with a perfect denoiser


def perfect_eps(alpha_bar, mean, std):
    def predict(x, t):
        ab = alpha_bar[t].view(-1, 1)
        return diffusion.gaussian_noise(x, ab.sqrt(), (1 - ab).sqrt(), mean, std)

    return predict


def perfect_velocity(mean, std):
    def velocity(x, t):
        a, s, da, ds = diffusion.flow_path(t.view(-1, 1))
        eps = diffusion.gaussian_noise(x, a, s, mean, std)
        return da * diffusion.gaussian_denoiser(x, a, s, mean, std) + ds * eps

    return velocity


def test_ddim_lands_exactly_on_a_single_point():
    ab = diffusion.alpha_bars(diffusion.betas("linear", 1000)).float()
    x = torch.randn(100, 2, generator=g())
    out = diffusion.ddim(perfect_eps(ab, 0.7, 0.0), ab, x, steps=10)
    assert torch.allclose(out, torch.full_like(out, 0.7), atol=1e-4)


@pytest.mark.parametrize("sampler", ["ddim-50", "ancestral", "euler-100", "heun-20"])
def test_each_sampler_with_the_perfect_denoiser_lands_on_the_data_distribution(sampler):
    mean, std, n = 2.0, 0.5, 20_000
    beta = diffusion.betas("cosine", 200)
    ab = diffusion.alpha_bars(beta)
    x = torch.randn(n, 2, generator=g(), dtype=torch.float64)
    name, _, steps = sampler.partition("-")
    if name == "ddim":
        out = diffusion.ddim(perfect_eps(ab, mean, std), ab, x, steps=int(steps))
    elif name == "ancestral":
        out = diffusion.ancestral(perfect_eps(ab, mean, std), beta, x, generator=g(1))
    else:
        out = diffusion.integrate(perfect_velocity(mean, std), x, steps=int(steps), method=name)
    assert torch.allclose(out.mean(0), torch.full((2,), mean, dtype=out.dtype), atol=0.02)
    assert torch.allclose(out.std(0), torch.full((2,), std, dtype=out.dtype), atol=0.02)


def test_the_paths_to_a_single_point_are_straight_for_the_flow_and_kept_step_by_step():
    """Rectified flow's perfect velocity to one point moves each x along the line to it;
    `path` keeps the start, every step and the end."""
    x = torch.randn(5, 2, generator=g(), dtype=torch.float64)
    path = []
    end = diffusion.integrate(perfect_velocity(1.0, 0.0), x, steps=8, method="euler", path=path)
    assert len(path) == 9 and torch.equal(path[0], x) and torch.equal(path[-1], end)
    assert torch.allclose(end, torch.ones_like(end), atol=1e-6)
    for p in path[1:-1]:  # each point on the segment from the start to the end
        a, b = p - x, end - x
        cross = a[:, 0] * b[:, 1] - a[:, 1] * b[:, 0]
        assert torch.allclose(cross, torch.zeros_like(cross), atol=1e-9)
    ab = diffusion.alpha_bars(diffusion.betas("linear", 100))
    ddim_path = []
    diffusion.ddim(perfect_eps(ab, 1.0, 0.0), ab, x, steps=10, path=ddim_path)
    assert len(ddim_path) == 11 and torch.equal(ddim_path[0], x)


def test_heun_is_closer_than_euler_at_the_same_steps():
    x = torch.randn(2000, 2, generator=g(), dtype=torch.float64)
    exact = diffusion.integrate(perfect_velocity(2.0, 0.5), x, steps=2000, method="euler")
    err = {m: (diffusion.integrate(perfect_velocity(2.0, 0.5), x, steps=5, method=m) - exact)
           .abs().max().item() for m in diffusion.FLOW_SAMPLERS}  # fmt: skip
    assert err["heun"] < err["euler"] / 5


@pytest.mark.parametrize("correct_last", [True, False])
def test_heun_ending_with_an_euler_step_is_still_second_order(correct_last):
    """The Euler last step costs one step's local error, O(dt^2), as Heun's global error
    is: halving dt still cuts the error about four times, where Euler's halves."""
    x = torch.randn(2000, 2, generator=g(), dtype=torch.float64)
    field = perfect_velocity(2.0, 0.5)
    exact = diffusion.integrate(field, x, steps=4000, method="heun")

    def err(steps, method):
        out = diffusion.integrate(field, x, steps=steps, method=method, correct_last=correct_last)
        return (out - exact).abs().max().item()

    assert err(20, "heun") / err(40, "heun") > 3.5
    assert err(20, "euler") / err(40, "euler") < 2.5
    assert err(10, "heun") < err(10, "euler") / 5


@pytest.mark.parametrize("sampler", diffusion.FLOW_SAMPLERS)
def test_a_flow_never_asks_its_network_for_the_velocity_at_t_one(sampler):
    """At t = 1 a flow's velocity divides the denoiser's error by 1 - t = 0, and training
    never draws t = 1: Heun's last step must not take its second slope there."""
    model = FlowMatching(POINTS)
    seen = []
    model.net.register_forward_pre_hook(lambda net, args: seen.append(args[1].max().item()))
    model.sample(4, steps=5, sampler=sampler, generator=g())
    assert len(seen) == (5 if sampler == "euler" else 9)
    assert max(seen) == pytest.approx(0.8)


@pytest.mark.parametrize("clip", [False, True])
def test_ddim_with_eta_one_on_all_steps_is_ancestral_sampling_draw_for_draw(clip):
    beta = diffusion.betas("linear", 50)
    ab = diffusion.alpha_bars(beta)
    predict = perfect_eps(ab, 0.3, 0.4)
    x = torch.randn(500, 2, generator=g(), dtype=torch.float64)
    a = diffusion.ancestral(predict, beta, x, clip=clip, generator=g(5))
    d = diffusion.ddim(predict, ab, x, steps=50, eta=1.0, clip=clip, generator=g(5))
    assert torch.allclose(a, d, atol=1e-8)
    # and with eta = 0 the same start gives another, deterministic, answer
    assert not torch.allclose(diffusion.ddim(predict, ab, x, steps=50), a, atol=1e-3)


# --------------------------------------------------------------------- the likelihood


def test_the_ode_likelihood_of_an_affine_flow_is_the_gaussians_density():
    """The perfect velocity for data N(m, c² I) carries N(0, I) affinely onto it: the
    ODE's log p must be that Gaussian's log-density."""
    m, c = torch.tensor([1.0, -2.0], dtype=torch.float64), 0.5
    x = m + c * torch.randn(64, 2, generator=g(), dtype=torch.float64)
    got = diffusion.ode_log_prob(perfect_velocity(m, c), x, steps=200)
    want = torch.distributions.Normal(m, c).log_prob(x).sum(1)
    assert torch.allclose(got, want, atol=1e-4)


def test_a_flow_models_density_integrates_to_one():
    torch.manual_seed(0)
    model = FlowMatching(POINTS).double()
    with torch.no_grad():  # an untrained but not trivial field
        model.net.out.weight.normal_(0, 0.3)
    side = torch.linspace(-7, 7, 71, dtype=torch.float64)
    grid = torch.cartesian_prod(side, side)
    density = model.log_prob(grid, steps=20).exp()
    assert (density * (side[1] - side[0]) ** 2).sum().item() == pytest.approx(1.0, abs=0.01)


# ---------------------------------------------------------------------- the models


def conditional(cls, **kw):
    torch.manual_seed(0)
    model = cls(DiffusionConfig(shape=(1, 8, 8), hidden=8, timesteps=20, num_classes=3, **kw))
    model.net_ema = None  # these tests look at the network itself
    with torch.no_grad():
        model.net.out.weight.normal_(0, 0.1)  # so that the class changes the output
    return model.eval()


@pytest.mark.parametrize("cls", [DDPM, FlowMatching])
def test_guidance_zero_is_the_unconditional_model_and_one_the_conditional(cls):
    model = conditional(cls)
    x, t, y = torch.randn(4, 1, 8, 8, generator=g()), torch.rand(4), torch.tensor([0, 1, 2, 1])
    null = torch.full_like(y, 3)
    with torch.no_grad():
        cond, uncond = model.net(x, t, y), model.net(x, t, null)
        assert not torch.allclose(cond, uncond)
        assert torch.allclose(model.predict(x, t, y, guidance=0.0), uncond)
        assert torch.allclose(model.predict(x, t, y, guidance=1.0), cond)
        w3 = model.predict(x, t, y, guidance=3.0)
        assert torch.allclose(w3, uncond + 3 * (cond - uncond), atol=1e-5)


def test_training_drops_the_class_at_the_rate_p_uncond():
    model = conditional(FlowMatching, p_uncond=0.25)
    seen = []
    original = model.net.forward
    model.net.forward = lambda x, t, y=None: seen.append(y) or original(x, t, y)
    model.loss((torch.rand(4000, 1, 8, 8), torch.zeros(4000, dtype=torch.long)))
    assert (seen[0] == 3).float().mean().item() == pytest.approx(0.25, abs=0.03)
    assert set(seen[0].tolist()) == {0, 3}


@pytest.mark.parametrize("cls", [DDPM, FlowMatching])
def test_seeded_sampling_repeats_and_gives_images_in_the_unit_range(cls):
    model = conditional(cls)
    kw = {"steps": 4, "sampler": "ddim"} if cls is DDPM else {"steps": 4}
    a = model.sample(6, generator=g(3), guidance=2.0, **kw)
    b = model.sample(6, generator=g(3), guidance=2.0, **kw)
    assert a.shape == (6, 1, 8, 8) and torch.equal(a, b)
    assert a.min() >= 0 and a.max() <= 1
    assert not torch.equal(a, model.sample(6, generator=g(4), guidance=2.0, **kw))


def test_a_flows_samples_do_not_depend_on_the_chunks_they_are_drawn_in():
    model = conditional(FlowMatching)
    whole = model.sample(5, steps=3, guidance=2.0, generator=g(1))
    chunked = model._chunks
    model._chunks = lambda noise, y: chunked(noise, y, size=2)
    assert torch.allclose(model.sample(5, steps=3, guidance=2.0, generator=g(1)), whole,
                          atol=1e-6)  # fmt: skip


@pytest.mark.parametrize("cls", [DDPM, FlowMatching])
def test_a_tiny_model_overfits_one_image(cls):
    torch.manual_seed(0)
    model = cls(IMAGES)
    x = (torch.rand(1, 1, 8, 8, generator=g()) > 0.5).float()
    batch = x.expand(64, -1, -1, -1).contiguous()
    before = model.loss(batch, generator=g(9))["loss"].item()
    train.fit(model, batch, steps=300, lr=3e-3, batch_size=64, progress=False)
    after = model.loss(batch, generator=g(9))["loss"].item()
    assert after < 0.15 * before, (before, after)
    kw = {"sampler": "ddim", "steps": 20} if cls is DDPM else {"steps": 20}
    out = model.sample(8, generator=g(1), **kw)
    assert ((out > 0.5).float() == x).float().mean() > 0.9


def test_the_moving_average_follows_the_weights_with_its_warmed_up_decay():
    torch.manual_seed(0)
    model = FlowMatching(DiffusionConfig(shape=(2,), architecture="mlp", hidden=8, ema_decay=0.9))
    start = [p.clone() for p in model.net_ema.parameters()]
    with torch.no_grad():
        for p in model.net.parameters():
            p.add_(1.0)
    model.update_ema(step=0)  # warmed up: d = min(0.9, 1/10)
    for s, p_ema, p in zip(start, model.net_ema.parameters(), model.net.parameters(), strict=True):
        assert torch.allclose(p_ema, 0.1 * s + 0.9 * p)
    model.update_ema(step=1000)  # d = 0.9
    for s, p_ema, p in zip(start, model.net_ema.parameters(), model.net.parameters(), strict=True):
        assert torch.allclose(p_ema, 0.9 * (0.1 * s + 0.9 * p) + 0.1 * p)
    x, t = torch.randn(3, 2), torch.rand(3)
    assert torch.equal(model.predict(x, t), model.net_ema(x, t))
    assert torch.equal(model.predict(x, t, ema=False), model.net(x, t))


def test_training_with_the_diffusion_step_moves_the_average():
    torch.manual_seed(0)
    model = FlowMatching(DiffusionConfig(shape=(2,), architecture="mlp", hidden=8, ema_decay=0.99))
    before = [p.clone() for p in model.net_ema.parameters()]
    train.fit(model, torch.randn(256, 2), steps=20, step=diffusion.train_step, batch_size=64,
              progress=False)  # fmt: skip
    moved = [not torch.equal(a, b) for a, b in zip(before, model.net_ema.parameters(), strict=True)]
    assert all(moved)
    differs = [
        not torch.equal(a, b)
        for a, b in zip(model.net.parameters(), model.net_ema.parameters(), strict=True)
    ]
    assert any(differs)


@pytest.mark.parametrize("cls", [DDPM, FlowMatching])
def test_a_checkpoint_round_trips_through_the_hub(cls, tmp_path):
    model = conditional(cls)
    back = hub.load(hub.save(model, tmp_path / "m"))
    assert type(back) is cls and back.config == model.config
    kw = {"steps": 3, "sampler": "ddim"} if cls is DDPM else {"steps": 3}
    assert torch.equal(back.sample(2, generator=g(), **kw), model.sample(2, generator=g(), **kw))


# --------------------------------------------------------------------- bad inputs


@pytest.mark.parametrize(
    "call, error, message",
    [
        (lambda m: m.sample(2, steps=0), ValueError, "steps: expected a whole number >= 1"),
        (lambda m: m.sample(2, guidance=float("nan")), ValueError, "guidance: expected a finite"),
        (lambda m: m.sample(2, y=3), ValueError, r"labels in 0\.\.2"),
        (lambda m: m.sample(2, sampler="rk4"), ValueError, "sampler must be one of"),
        (lambda m: m.loss(torch.rand(2, 8, 8)), ValueError, r"N×1×8×8"),
        (
            lambda m: m.loss((torch.rand(2, 1, 8, 8) * 2, torch.zeros(2).long())),
            ValueError,
            r"values in \[0, 1\]",
        ),
        (lambda m: m.loss(torch.rand(2, 1, 8, 8)), ValueError, "class-conditional"),
    ],
    ids=["steps", "guidance", "label", "sampler", "layout", "range", "no-label"],
)
@pytest.mark.parametrize("cls", [DDPM, FlowMatching])
def test_bad_inputs_are_named(cls, call, error, message):
    with pytest.raises(error, match=message):
        call(conditional(cls))


def test_ddpm_refuses_what_its_samplers_cannot_do():
    model = conditional(DDPM)
    with pytest.raises(ValueError, match="ancestral sampling takes all T = 20"):
        model.sample(2, steps=5)
    with pytest.raises(ValueError, match="steps must be <= T = 20"):
        model.sample(2, steps=50, sampler="ddim")
    with pytest.raises(ValueError, match="guidance needs a class-conditional"):
        DDPM(IMAGES).sample(2, guidance=2.0)


def test_configs_refuse_what_the_network_cannot_take():
    with pytest.raises(ValueError, match="divisible by 4"):
        DiffusionConfig(shape=(1, 10, 10))
    with pytest.raises(ValueError, match=r"mlp: shape must be \(d,\)"):
        DiffusionConfig(shape=(1, 8, 8), architecture="mlp")
    with pytest.raises(ValueError, match="schedule must be one of"):
        DiffusionConfig(schedule="quadratic")
