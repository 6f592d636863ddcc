r"""Ordinary differential equations for generative models: solve dx/dt = v(x, t), and
the exact log-density of the flow that carries N(0, I) at t = 0 to a model at t = 1.

The log-density follows the instantaneous change of variables (Chen et al. 2018,
theorem 1; Grathwohl et al. 2019):
$\frac{d}{dt} \log p_t(x_t) = -\nabla \cdot v(x_t, t)$, so
$\log p_1(x_1) = \log \mathcal N(x_0; 0, I) - \int_0^1 \nabla \cdot v(x_t, t)\,dt$,
with the divergence computed exactly, one backward pass per dimension.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch


def integrate(velocity: Callable, x: torch.Tensor, *, steps: int, method: str = "heun",
              t0: float = 0.0, t1: float = 1.0, path: list | None = None,
              correct_last: bool = True):  # fmt: skip
    """Solve dx/dt = velocity(x, t) from t0 to t1 in `steps` equal steps: "euler" (one
    evaluation a step) or "heun" (two: the average of the slopes at both ends).
    path: a list that receives x at every step, the start and the end included.
    correct_last=False ends Heun with a plain Euler step, so that the velocity is never
    asked for at t1 itself: a flow that ends on the data is singular there (its velocity
    is (x̂ - x_t)/(1 - t), an error divided by a vanishing 1 - t, at a time its training
    never draws), and Karras et al. (2022) end their Heun sampler the same way."""
    dt = (t1 - t0) / steps
    if path is not None:
        path.append(x)
    for i in range(steps):
        t = torch.full((len(x),), t0 + i * dt, dtype=x.dtype, device=x.device)
        v = velocity(x, t)
        if method == "heun" and (correct_last or i < steps - 1):
            v = (v + velocity(x + dt * v, t + dt)) / 2
        x = x + dt * v
        if path is not None:
            path.append(x)
    return x


def divergence(f: Callable, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """f(x) and its exact divergence Σ_i ∂f_i/∂x_i per row, one backward pass per
    dimension (so for points, not images)."""
    with torch.enable_grad():
        x = x.detach().requires_grad_(True)
        out = f(x)
        div = sum(
            torch.autograd.grad(out[:, i].sum(), x, retain_graph=True)[0][:, i]
            for i in range(x.shape[1])
        )
    return out.detach(), div.detach()


def ode_log_prob(velocity: Callable, x: torch.Tensor, *, steps: int = 100) -> torch.Tensor:
    """log p_1(x) of the flow dx/dt = velocity(x, t) that carries N(0, I) at t = 0 to
    p_1 at t = 1, by the instantaneous change of variables
    log p_1(x_1) = log N(x_0; 0, I) - ∫_0^1 div v(x_t, t) dt,
    integrated backwards from x_1 = x with RK4 (x and the integral together)."""

    def field(state, t):  # d/dt of (x, -∫ div v) going forward in t
        v, div = divergence(lambda z: velocity(z, t), state[:, :-1])
        return torch.cat([v, div[:, None]], 1)

    state = torch.cat([x, torch.zeros(len(x), 1, dtype=x.dtype, device=x.device)], 1)
    dt = -1.0 / steps
    for i in range(steps):
        t = torch.full((len(x),), 1.0 + i * dt, dtype=x.dtype, device=x.device)
        k1 = field(state, t)
        k2 = field(state + dt / 2 * k1, t + dt / 2)
        k3 = field(state + dt / 2 * k2, t + dt / 2)
        k4 = field(state + dt * k3, t + dt)
        state = state + dt / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
    x0, integral = state[:, :-1], state[:, -1]  # integral = ∫_1^0 div v dt = -∫_0^1
    log_p0 = -0.5 * (x0**2).sum(1) - 0.5 * x0.shape[1] * math.log(2 * math.pi)
    return log_p0 + integral
