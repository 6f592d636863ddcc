r"""Diffusion models and flow matching: learn to undo noise, one small step at a time.

References: Ho, Jain & Abbeel 2020 (DDPM: the linear schedule from 1e-4 to 0.02 over
T = 1000 steps, ε-prediction, the simple loss of eq. 14, ancestral sampling of
algorithm 2); Nichol & Dhariwal 2021 (the cosine schedule, eq. 17); Song, Meng & Ermon
2021 (DDIM, eq. 12); Song et al. 2021 (the score SDE and its probability-flow ODE);
Lipman et al. 2023 (flow matching) and Liu, Gong & Liu 2023 (rectified flow); Ho &
Salimans 2022 (classifier-free guidance); Chen et al. 2018 and Grathwohl et al. 2019
(the instantaneous change of variables behind the exact likelihood).

Both objectives corrupt a data point $x$ along a Gaussian path

$$x_t = a_t\,x + s_t\,\varepsilon, \qquad \varepsilon \sim \mathcal N(0, I),$$

and train one network (`genedu.unet`) to undo it:

* **DDPM** (`DDPM`): discrete steps $t = 1 \dots T$ with $a_t = \sqrt{\bar\alpha_t}$,
  $s_t = \sqrt{1 - \bar\alpha_t}$; the network predicts the noise $\varepsilon$.
* **Flow matching** (`FlowMatching`): continuous $t \in [0, 1]$ with $a_t = t$,
  $s_t = 1 - t$, a straight line from noise ($t = 0$) to data ($t = 1$); the network
  predicts the velocity $\dot x_t = x - \varepsilon$.

The three views of one model: a noise prediction $\hat\varepsilon$ is also a denoiser
$\hat x = (x_t - s_t \hat\varepsilon) / a_t$, a score $\nabla \log p_t(x_t) =
-\hat\varepsilon / s_t$, and a velocity $\hat v = \dot a_t \hat x + \dot s_t
\hat\varepsilon$ whose ODE $\mathrm dx/\mathrm dt = \hat v$ carries $p_0$ to $p_1$ (the
probability-flow ODE). The functions below convert between them both ways; DDIM with
η = 0 is a step of that ODE.

Images are floats in [0, 1] outside the model and $2x - 1$ inside; points (2-D toys,
a VAE's codes) are used as they are.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from . import inputs
from .odes import integrate, ode_log_prob
from .train import loss_step
from .unet import MLP, UNet

ARCHITECTURES = ("unet", "mlp")
SCHEDULES = ("linear", "cosine")
DDPM_SAMPLERS = ("ancestral", "ddim")
FLOW_SAMPLERS = ("euler", "heun")


def _fits_the_unet(shape) -> bool:
    return len(shape) == 3 and shape[0] in (1, 3) and shape[1] % 4 == 0 and shape[2] % 4 == 0


@dataclass(frozen=True)
class DiffusionConfig:
    """The data's shape, the network's size, the class conditioning and DDPM's schedule."""

    shape: tuple[int, ...] = (1, 28, 28)  # unet: (C, H, W), H and W divisible by 4; mlp: (d,)
    architecture: str = "unet"
    hidden: int = 32  # unet: channels at full resolution (2x below); mlp: units
    layers: int = 3  # mlp: residual layers (the U-Net's depth is fixed)
    num_classes: int = 0  # > 0: class-conditional, with a "no class" token for guidance
    p_uncond: float = 0.1  # the share of training examples whose class is dropped
    timesteps: int = 1000  # DDPM's T
    schedule: str = "linear"  # DDPM's betas: "linear" (Ho et al.) or "cosine" (Nichol & Dhariwal)
    # > 0: sample from an exponential moving average of the weights, its decay warmed up
    # as min(decay, (1 + n)/(10 + n)) after n updates, so that short runs average too
    ema_decay: float = 0.0

    def __post_init__(self):
        problems = []
        if self.architecture not in ARCHITECTURES:
            problems.append(
                f"architecture must be one of {ARCHITECTURES}, got {self.architecture!r}"
            )
        elif self.architecture == "unet" and not _fits_the_unet(self.shape):
            problems.append(
                f"unet: shape must be (C, H, W), C = 1 or 3, H and W divisible by 4; "
                f"got {self.shape}"
            )
        elif self.architecture == "mlp" and len(self.shape) != 1:
            problems.append(f"mlp: shape must be (d,), got {self.shape}")
        if not self.shape or min(*self.shape, self.hidden, self.layers, self.timesteps) < 1:
            problems.append("shape, hidden, layers and timesteps must be >= 1")
        if not 0 <= self.ema_decay < 1:
            problems.append(f"ema_decay must be in [0, 1), got {self.ema_decay}")
        if self.num_classes < 0 or not 0 <= self.p_uncond < 1:
            problems.append(
                f"num_classes >= 0 and p_uncond in [0, 1), got {self.num_classes}, {self.p_uncond}"
            )
        if self.schedule not in SCHEDULES:
            problems.append(f"schedule must be one of {SCHEDULES}, got {self.schedule!r}")
        if problems:
            raise ValueError("DiffusionConfig: " + "; ".join(problems))

    @property
    def images(self) -> bool:
        return self.architecture == "unet"


# ------------------------------------------------------------ DDPM's noise schedule


def betas(schedule: str, timesteps: int) -> torch.Tensor:
    """β_1 ... β_T (float64): "linear" from 1e-4 to 0.02 (times 1000/T), or "cosine",
    ᾱ_t = f(t)/f(0) with f(t) = cos²((t/T + 0.008)/1.008 · π/2), each β clipped at 0.999."""
    if schedule == "linear":
        scale = 1000 / timesteps
        beta = torch.linspace(scale * 1e-4, scale * 0.02, timesteps, dtype=torch.float64)
        return beta.clamp(max=0.999)
    if schedule == "cosine":
        steps = torch.arange(timesteps + 1, dtype=torch.float64) / timesteps
        f = torch.cos((steps + 0.008) / 1.008 * math.pi / 2) ** 2
        return (1 - f[1:] / f[:-1]).clamp(max=0.999)
    raise ValueError(f"schedule must be one of {SCHEDULES}, got {schedule!r}")


def alpha_bars(beta: torch.Tensor) -> torch.Tensor:
    """ᾱ_t = Π_{s<=t} (1 - β_s): the share of the signal's variance left at step t."""
    return torch.cumprod(1 - beta, 0)


# ---------------------------------------------------------- the three views, both ways


def noise_to_data(x_t, eps, a, s):
    """The denoiser's view: x̂ = (x_t - s ε̂) / a."""
    return (x_t - s * eps) / a


def noise_to_score(eps, s):
    """The score's view: ∇ log p_t(x_t) = -ε̂ / s."""
    return -eps / s


def score_to_noise(score, s):
    return -s * score


def noise_to_velocity(x_t, eps, a, s, da, ds):
    """The velocity's view: v = ȧ x̂ + ṡ ε̂ on the path x_t = a x + s ε."""
    return da * noise_to_data(x_t, eps, a, s) + ds * eps


def velocity_to_noise(x_t, v, a, s, da, ds):
    """ε̂ from v: solve v = ȧ x̂ + ṡ ε̂ and x_t = a x̂ + s ε̂ for ε̂."""
    return (a * v - da * x_t) / (a * ds - da * s)


def flow_path(t: torch.Tensor):
    """The straight path's coefficients (a, s, ȧ, ṡ) = (t, 1 - t, 1, -1)."""
    return t, 1 - t, torch.ones_like(t), -torch.ones_like(t)


def gaussian_noise(x_t, a, s, mean, std):
    """The perfect noise prediction E[ε | x_t] when the data is N(mean, std² I): the
    closed form that the tests and the chapter hold the samplers to."""
    return s * (x_t - a * mean) / (a**2 * std**2 + s**2)


def gaussian_denoiser(x_t, a, s, mean, std):
    """The perfect denoiser E[x | x_t] for data N(mean, std² I). With `gaussian_noise`
    it gives the perfect velocity ȧ E[x | x_t] + ṡ E[ε | x_t], finite at a = 0 too."""
    return mean + a * std**2 * (x_t - a * mean) / (a**2 * std**2 + s**2)


# ------------------------------------------------------------------------ the samplers


def ddim(predict: Callable, alpha_bar: torch.Tensor, x: torch.Tensor, *, steps: int,
         eta: float = 0.0, clip: bool = False, generator: torch.Generator | None = None,
         path: list | None = None) -> torch.Tensor:  # fmt: skip
    """Song et al.'s update on `steps` evenly spaced steps from T to 1:

    x_{t'} = √ᾱ_{t'} x̂ + √(1 - ᾱ_{t'} - σ²) ε̂ + σ z,
    σ = η √((1 - ᾱ_{t'}) / (1 - ᾱ_t)) √(1 - ᾱ_t / ᾱ_{t'}).

    η = 0 is deterministic (the probability-flow ODE); η = 1 on all T steps is DDPM's
    ancestral sampler, draw for draw. predict(x, t) returns ε̂ for step indices t
    (0-based, so t = T - 1 is the noisiest). clip: keep x̂ in [-1, 1] (images).
    path: a list that receives x at every step, the start and the end included.
    The first step divides by √ᾱ_T: with the cosine schedule, whose last β is clipped at
    0.999, that is nearly 0 and magnifies the network's error; images survive it by
    `clip`, but for points the linear schedule is the safer one.
    """
    T = len(alpha_bar)
    ts = torch.linspace(T - 1, 0, steps).round().long().unique_consecutive().tolist()
    if path is not None:
        path.append(x)
    for i, t in enumerate(ts):
        prev = ts[i + 1] if i + 1 < len(ts) else -1
        ab = alpha_bar[t].item()
        ab_prev = alpha_bar[prev].item() if prev >= 0 else 1.0
        eps = predict(x, torch.full((len(x),), t, device=x.device))
        x0 = noise_to_data(x, eps, math.sqrt(ab), math.sqrt(1 - ab))
        if clip:
            x0 = x0.clamp(-1, 1)
            eps = (x - math.sqrt(ab) * x0) / math.sqrt(1 - ab)
        sigma = eta * math.sqrt((1 - ab_prev) / (1 - ab) * (1 - ab / ab_prev))
        x = math.sqrt(ab_prev) * x0 + math.sqrt(max(1 - ab_prev - sigma**2, 0.0)) * eps
        if sigma > 0:
            x = x + sigma * torch.randn(x.shape, generator=generator).to(x)
        if path is not None:
            path.append(x)
    return x


def ancestral(predict: Callable, beta: torch.Tensor, x: torch.Tensor, *, clip: bool = False,
              generator: torch.Generator | None = None) -> torch.Tensor:  # fmt: skip
    """DDPM's algorithm 2, through the posterior q(x_{t-1} | x_t, x̂): mean
    √ᾱ_{t-1} β_t/(1 - ᾱ_t) x̂ + √α_t (1 - ᾱ_{t-1})/(1 - ᾱ_t) x_t, variance
    β̃_t = β_t (1 - ᾱ_{t-1})/(1 - ᾱ_t), for t = T ... 1 (no noise on the last step)."""
    alpha_bar = alpha_bars(beta)
    for t in range(len(beta) - 1, -1, -1):
        ab, b = alpha_bar[t].item(), beta[t].item()
        ab_prev = alpha_bar[t - 1].item() if t > 0 else 1.0
        eps = predict(x, torch.full((len(x),), t, device=x.device))
        x0 = noise_to_data(x, eps, math.sqrt(ab), math.sqrt(1 - ab))
        if clip:
            x0 = x0.clamp(-1, 1)
        mean = (math.sqrt(ab_prev) * b * x0 + math.sqrt(1 - b) * (1 - ab_prev) * x) / (1 - ab)
        x = mean
        if t > 0:
            var = b * (1 - ab_prev) / (1 - ab)
            x = x + math.sqrt(var) * torch.randn(x.shape, generator=generator).to(x)
    return x


# ------------------------------------------------------------------------- the models


def train_step(model, batch, optimizers, *, step: int, generator, grad_clip=None) -> dict:
    """`train.fit`'s step for a diffusion model: loss, backward, Adam (`loss_step`), then
    the weights' moving average."""
    out = loss_step(model, batch, optimizers, step=step, generator=generator, grad_clip=grad_clip)
    model.update_ema(step)
    return out


train_step.replicate = True  # under torchrun its loss runs through DDP, as loss_step's


class _Denoiser(nn.Module):
    """What DDPM and flow matching share: the network, the data's scaling, the class
    dropout of classifier-free guidance, and the guided prediction."""

    def __init__(self, config: DiffusionConfig = DiffusionConfig()):
        super().__init__()
        self.config = c = config
        if c.images:
            self.net = UNet(c.shape[0], c.hidden, c.num_classes)
        else:
            self.net = MLP(c.shape[0], c.hidden, c.layers, c.num_classes)
        self.net_ema = None
        if c.ema_decay > 0:
            self.net_ema = copy.deepcopy(self.net).requires_grad_(False)

    @torch.no_grad()
    def update_ema(self, step: int) -> None:
        """net_ema <- d · net_ema + (1 - d) · net, d = min(ema_decay, (1 + step)/(10 + step))."""
        if self.net_ema is None:
            return
        decay = min(self.config.ema_decay, (1 + step) / (10 + step))
        for p_ema, p in zip(self.net_ema.parameters(), self.net.parameters(), strict=True):
            p_ema.lerp_(p, 1 - decay)

    @property
    def name(self) -> str:
        return type(self).__name__

    def to_model(self, x: torch.Tensor) -> torch.Tensor:
        return 2 * x - 1 if self.config.images else x

    def to_data(self, x: torch.Tensor) -> torch.Tensor:
        return ((x + 1) / 2).clamp(0, 1) if self.config.images else x

    def check_data(self, x, y, what: str):
        values = "unit" if self.config.images else "any"
        inputs.images(x, self.config.shape, what=what, values=values,
                      dtype=next(self.parameters()).dtype)  # fmt: skip
        return inputs.labels(y, len(x), self.config.num_classes, what=what)

    def _batch(self, batch, what: str, generator=None):
        x, y = batch if isinstance(batch, tuple | list) else (batch, None)
        y = self.check_data(x, y, what)
        x = self.to_model(x)
        if y is not None:  # classifier-free guidance: sometimes train without the class
            drop = (torch.rand(len(y), generator=generator) < self.config.p_uncond).to(x.device)
            y = torch.where(drop, self.config.num_classes, y.to(x.device))
        return x, y

    def predict(self, x_t, t, y=None, guidance: float = 1.0, *, ema: bool = True):
        """The network's output at (x_t, t), guided: out(∅) + w (out(y) - out(∅)).
        w = 0 is the unconditional model, w = 1 the conditional one, w > 1 pushes
        further towards the class (Ho & Salimans 2022). The EMA network when there is one."""
        net = self.net_ema if ema and self.net_ema is not None else self.net
        if y is None or guidance == 1.0:
            return net(x_t, t, y)
        null = torch.full_like(y, self.config.num_classes)
        if guidance == 0.0:
            return net(x_t, t, null)
        both = net(torch.cat([x_t, x_t]), torch.cat([t, t]), torch.cat([y, null]))
        cond, uncond = both.chunk(2)
        return uncond + guidance * (cond - uncond)

    def _sampling(self, n, y, guidance, steps, what: str):
        n = inputs.count(n, f"{what}: n")
        guidance = inputs.number(guidance, f"{what}: guidance")
        if steps is not None:
            steps = inputs.count(steps, f"{what}: steps")
        k = self.config.num_classes
        if k == 0 and guidance != 1.0:
            raise ValueError(f"{what}: guidance needs a class-conditional model (num_classes > 0)")
        if k and y is None:
            y = torch.arange(n) % k
        y = inputs.labels(y, n, k, what=what)
        dev = next(self.parameters()).device
        return n, (None if y is None else y.to(dev)), guidance, steps, dev

    def _chunks(self, noise: torch.Tensor, y, size: int = 1000):
        """The starting noise and its labels in chunks, so that 10,000 samples need no
        more memory than 1,000 (all the noise is drawn first: a flow's samples do not
        depend on the chunking)."""
        for i in range(0, len(noise), size):
            yield noise[i : i + size], None if y is None else y[i : i + size]

    def _noise(self, n: int, generator, dev) -> torch.Tensor:
        dtype = next(self.parameters()).dtype
        return torch.randn(n, *self.config.shape, generator=generator, dtype=dtype).to(dev)


class DDPM(_Denoiser):
    """Ho et al.'s denoising diffusion: predict the noise that was added at a random step."""

    def __init__(self, config: DiffusionConfig = DiffusionConfig()):
        super().__init__(config)
        beta = betas(config.schedule, config.timesteps)
        self.register_buffer("beta", beta.float(), persistent=False)
        self.register_buffer("alpha_bar", alpha_bars(beta).float(), persistent=False)

    def noised(self, x, t, eps):
        """q(x_t | x) as a draw: √ᾱ_t x + √(1 - ᾱ_t) ε, for step indices t (N,)."""
        ab = self.alpha_bar[t].view(-1, *[1] * (x.dim() - 1))
        return ab.sqrt() * x + (1 - ab).sqrt() * eps

    def eps(self, x_t, t, y=None, guidance: float = 1.0):
        """ε̂ at step indices t (0 ... T-1); the network sees t/T."""
        return self.predict(x_t, t.float() / self.config.timesteps, y, guidance)

    def loss(self, batch, *, generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """The simple loss: E_{t, ε} ‖ε - ε̂(√ᾱ_t x + √(1 - ᾱ_t) ε, t)‖², per dimension."""
        x, y = self._batch(batch, "DDPM.loss", generator)
        t = torch.randint(0, self.config.timesteps, (len(x),), generator=generator).to(x.device)
        eps = torch.randn(x.shape, generator=generator).to(x)
        loss = F.mse_loss(
            self.net(self.noised(x, t, eps), t.float() / self.config.timesteps, y), eps
        )
        return {"loss": loss}

    @torch.no_grad()
    def sample(self, n: int, *, y=None, steps: int | None = None, sampler: str = "ancestral",
               guidance: float = 1.0, eta: float = 0.0,
               generator: torch.Generator | None = None) -> torch.Tensor:  # fmt: skip
        """n draws in the data's layout (images in [0, 1]).

        sampler: "ancestral" (all T steps; steps must be None or T) or "ddim" (`steps`
        steps, 50 by default; eta = 0 deterministic, 1 as noisy as ancestral). y: an int,
        n labels, or None for the classes in turn; guidance: see `predict`.
        """
        n, y, guidance, steps, dev = self._sampling(n, y, guidance, steps, "DDPM.sample")
        if sampler not in DDPM_SAMPLERS:
            raise ValueError(
                f"DDPM.sample: sampler must be one of {DDPM_SAMPLERS}, got {sampler!r}"
            )
        T = self.config.timesteps
        eta = inputs.number(eta, "DDPM.sample: eta", low=0, high=1)
        if sampler == "ancestral" and steps not in (None, T):
            raise ValueError(f"DDPM.sample: ancestral sampling takes all T = {T} steps; "
                             f"for {steps} use sampler='ddim'")  # fmt: skip
        if steps is not None and steps > T:
            raise ValueError(f"DDPM.sample: steps must be <= T = {T}, got {steps}")
        was_training = self.training
        self.eval()
        try:
            noise, out = self._noise(n, generator, dev), []
            for x, y_part in self._chunks(noise, y):
                predict = lambda x_t, t, y_part=y_part: self.eps(x_t, t, y_part, guidance)  # noqa: E731
                clip = self.config.images
                if sampler == "ancestral":
                    x = ancestral(predict, self.beta, x, clip=clip, generator=generator)
                else:
                    x = ddim(predict, self.alpha_bar, x, steps=steps or 50, eta=eta, clip=clip,
                             generator=generator)  # fmt: skip
                out.append(self.to_data(x))
            return torch.cat(out)
        finally:
            self.train(was_training)


class FlowMatching(_Denoiser):
    """Lipman et al.'s flow matching on Liu et al.'s straight paths: predict the velocity
    x - ε of the line from the noise ε (t = 0) to the data x (t = 1)."""

    def velocity(self, x_t, t, y=None, guidance: float = 1.0):
        return self.predict(x_t, t, y, guidance)

    def loss(self, batch, *, generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """E_{t ~ U(0, 1), ε} ‖(x - ε) - v̂(t x + (1 - t) ε, t)‖², per dimension."""
        x, y = self._batch(batch, "FlowMatching.loss", generator)
        t = torch.rand(len(x), generator=generator).to(x)
        eps = torch.randn(x.shape, generator=generator).to(x)
        tt = t.view(-1, *[1] * (x.dim() - 1))
        loss = F.mse_loss(self.net(tt * x + (1 - tt) * eps, t, y), x - eps)
        return {"loss": loss}

    @torch.no_grad()
    def sample(self, n: int, *, y=None, steps: int | None = None, sampler: str = "heun",
               guidance: float = 1.0,
               generator: torch.Generator | None = None) -> torch.Tensor:  # fmt: skip
        """n draws in the data's layout: the ODE from noise, `steps` (default 50) steps of
        "euler" or "heun" (whose last step is Euler's, so the network is never asked for
        the velocity at t = 1: see `integrate`'s correct_last). y: an int, n labels, or
        None for the classes in turn."""
        n, y, guidance, steps, dev = self._sampling(n, y, guidance, steps, "FlowMatching.sample")
        if sampler not in FLOW_SAMPLERS:
            raise ValueError(
                f"FlowMatching.sample: sampler must be one of {FLOW_SAMPLERS}, got {sampler!r}"
            )
        was_training = self.training
        self.eval()
        try:
            out = []
            for x, y_part in self._chunks(self._noise(n, generator, dev), y):
                x = integrate(lambda x_t, t, y_part=y_part: self.velocity(x_t, t, y_part, guidance),
                              x, steps=steps or 50, method=sampler, correct_last=False)  # fmt: skip
                out.append(self.to_data(x))
            return torch.cat(out)
        finally:
            self.train(was_training)

    @torch.no_grad()
    def log_prob(self, x: torch.Tensor, *, y=None, steps: int = 100) -> torch.Tensor:
        """Exact log-density in nats per example (N,), of the flow the network defines,
        by `ode_log_prob`: for points (one backward pass per dimension a step). An image's
        density on [0, 1] is its density on the model's [-1, 1] scale times 2^D."""
        y = self.check_data(x, y, "FlowMatching.log_prob")
        steps = inputs.count(steps, "FlowMatching.log_prob: steps")
        x = self.to_model(x)
        flat = x.flatten(1)
        shape = x.shape[1:]

        def velocity(z, t):
            return self.velocity(z.view(-1, *shape), t, y).flatten(1)

        was_training = self.training
        self.eval()
        try:
            out = ode_log_prob(velocity, flat, steps=steps)
        finally:
            self.train(was_training)
        return out + (flat.shape[1] * math.log(2) if self.config.images else 0.0)
