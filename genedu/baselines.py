r"""The simplest generative models of binary images: chapter 1's baselines.

* `IndependentBernoulli`: every pixel is its own coin,
  $p(x) = \prod_d \mu_d^{x_d} (1 - \mu_d)^{1 - x_d}$. Its maximum-likelihood fit is
  the mean image; its samples are speckled noise, because pixels ignore each other.
* `BernoulliMixture`: $K$ such models and a categorical choice between them,
  $p(x) = \sum_k \pi_k \prod_d \mu_{kd}^{x_d} (1 - \mu_{kd})^{1 - x_d}$. The hidden
  choice $k$ is a first latent variable; it is fitted by EM (Dempster, Laird & Rubin
  1977; Bishop 2006, section 9.3.3) or by gradient descent through `loss`.

Both follow the genedu contract: a frozen config, `loss(batch)`, `log_prob(x)` in nats
per example, and `sample(n, generator=)`. Inputs are float tensors of 0s and 1s,
shaped like the data (N×C×H×W).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from . import inputs


class Density(nn.Module):
    """A baseline's shared half: trained, like every likelihood model, on its mean
    negative log-likelihood in nats."""

    def loss(self, batch: torch.Tensor) -> dict[str, torch.Tensor]:
        nll = -self.log_prob(batch).mean()
        return {"loss": nll, "nll": nll}


@dataclass(frozen=True)
class BernoulliConfig:
    shape: tuple[int, int, int] = (1, 28, 28)  # (C, H, W)


class IndependentBernoulli(Density):
    """A product of independent Bernoulli pixels, parameterised by logits."""

    def __init__(self, config: BernoulliConfig = BernoulliConfig()):
        super().__init__()
        self.config = config
        self.logits = nn.Parameter(torch.zeros(config.shape))

    @torch.no_grad()
    def fit_closed_form(self, x: torch.Tensor, pseudo_count: float = 1.0) -> IndependentBernoulli:
        """Set mu to the smoothed pixel means, the maximum-likelihood (MAP) solution."""
        inputs.images(x, self.config.shape, what="IndependentBernoulli.fit_closed_form",
                      values="binary", dtype=self.logits.dtype)  # fmt: skip
        mu = (x.sum(0) + pseudo_count) / (len(x) + 2 * pseudo_count)
        self.logits.copy_(torch.logit(mu))
        return self

    def log_prob(self, x: torch.Tensor, *, y: None = None) -> torch.Tensor:
        """log p(x) in nats, one value per example: shape (N,)."""
        inputs.images(x, self.config.shape, what="IndependentBernoulli.log_prob",
                      values="binary", dtype=self.logits.dtype)  # fmt: skip
        logits = self.logits.expand_as(x)
        return -F.binary_cross_entropy_with_logits(logits, x, reduction="none").flatten(1).sum(1)

    @torch.no_grad()
    def sample(
        self, n: int, *, y: None = None, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """n binary images (n×C×H×W, float in {0, 1})."""
        n = inputs.count(n, "IndependentBernoulli.sample: n")
        inputs.labels(y, n, 0, what="IndependentBernoulli.sample")
        probs = torch.sigmoid(self.logits).expand(n, *self.config.shape)
        return torch.bernoulli(probs, generator=generator)


@dataclass(frozen=True)
class MixtureConfig:
    components: int = 20
    shape: tuple[int, int, int] = (1, 28, 28)


class BernoulliMixture(Density):
    """A mixture of K independent-Bernoulli images."""

    def __init__(self, config: MixtureConfig = MixtureConfig()):
        super().__init__()
        if config.components < 1:
            raise ValueError(f"components must be >= 1, got {config.components}")
        self.config = config
        self.weight_logits = nn.Parameter(torch.zeros(config.components))
        # small random logits break the symmetry between components
        self.logits = nn.Parameter(0.1 * torch.randn(config.components, *config.shape))

    def component_log_probs(self, x: torch.Tensor) -> torch.Tensor:
        """log pi_k + log p(x | k) for every example and component: shape (N, K)."""
        inputs.images(x, self.config.shape, what="BernoulliMixture", values="binary",
                      dtype=self.logits.dtype)  # fmt: skip
        x = x.flatten(1)  # (N, D)
        logits = self.logits.flatten(1)  # (K, D)
        # log p(x|k) = sum_d x_d log mu_kd + (1 - x_d) log(1 - mu_kd), as two matmuls
        log_px_k = x @ F.logsigmoid(logits).T + (1 - x) @ F.logsigmoid(-logits).T  # (N, K)
        return F.log_softmax(self.weight_logits, 0) + log_px_k

    def log_prob(self, x: torch.Tensor, *, y: None = None) -> torch.Tensor:
        """log p(x) = logsumexp_k [log pi_k + log p(x | k)] in nats: shape (N,)."""
        return torch.logsumexp(self.component_log_probs(x), dim=1)

    def responsibilities(self, x: torch.Tensor) -> torch.Tensor:
        """The posterior p(k | x) over components: shape (N, K), rows sum to 1."""
        return torch.softmax(self.component_log_probs(x), dim=1)

    @torch.no_grad()
    def em_step(self, x: torch.Tensor, pseudo_count: float = 1.0) -> float:
        """One EM iteration on the whole of `x`; returns the mean log-likelihood before it.

        E step: r_nk = p(k | x_n). M step: pi_k = (sum_n r_nk + 1e-3) / (N + 1e-3 K), the
        mean responsibility kept off 0 (an empty component's log-weight stays finite), and
        mu_kd = (sum_n r_nk x_nd + a) / (sum_n r_nk + 2a), a Beta(a+1, a+1) prior that
        keeps every mu away from 0 and 1 (so no test pixel gets probability zero).
        """
        log_joint = self.component_log_probs(x)
        ll = torch.logsumexp(log_joint, 1)
        r = torch.exp(log_joint - ll[:, None])  # (N, K)
        nk = r.sum(0)  # (K,)
        mu = (r.T @ x.flatten(1) + pseudo_count) / (nk[:, None] + 2 * pseudo_count)
        self.logits.copy_(torch.logit(mu).view_as(self.logits))
        self.weight_logits.copy_(torch.log((nk + 1e-3) / (nk.sum() + 1e-3 * len(nk))))
        return ll.mean().item()

    def fit_em(self, x: torch.Tensor, iterations: int = 20, *, generator=None) -> list[float]:
        """Initialise components on random data points and run EM; returns the LL curve."""
        idx = torch.randperm(len(x), generator=generator)[: self.config.components]
        with torch.no_grad():
            start = 0.25 + 0.5 * x[idx]  # soft copies of K examples
            self.logits.copy_(torch.logit(start))
            self.weight_logits.zero_()
        return [self.em_step(x) for _ in range(iterations)]

    @torch.no_grad()
    def sample(
        self,
        n: int,
        *,
        y: None = None,
        generator: torch.Generator | None = None,
        component: int | None = None,
    ) -> torch.Tensor:
        """n binary images: pick k ~ pi (or the given `component`), then every pixel."""
        n = inputs.count(n, "BernoulliMixture.sample: n")
        inputs.labels(y, n, 0, what="BernoulliMixture.sample")
        if component is None:
            k = torch.multinomial(
                torch.softmax(self.weight_logits, 0), n, True, generator=generator
            )
        else:
            component = inputs.count(component, "BernoulliMixture.sample: component", minimum=0)
            if component >= self.config.components:
                raise ValueError(
                    f"component must be in [0, {self.config.components}), got {component}"
                )
            k = torch.full((n,), component)
        return torch.bernoulli(torch.sigmoid(self.logits[k]), generator=generator)


@dataclass(frozen=True)
class HistogramConfig:
    shape: tuple[int, int, int] = (3, 32, 32)  # (C, H, W)


class IndependentHistogram(Density):
    """Every channel of every pixel its own 256-level histogram, ignoring all the others:
    the floor that a PixelCNN on 8-bit images must beat, in bits/dim.

    Inputs are float images on the 256-level grid k/255 (genedu.data.to_unit).
    """

    def __init__(self, config: HistogramConfig = HistogramConfig()):
        super().__init__()
        self.config = config
        self.logits = nn.Parameter(torch.zeros(256, *config.shape))  # uniform before fitting

    def _levels(self, x: torch.Tensor, what: str) -> torch.Tensor:
        inputs.images(x, self.config.shape, what=what, values="levels", dtype=self.logits.dtype)
        return (x * 255).round().long()

    @torch.no_grad()
    def fit_closed_form(self, x: torch.Tensor, pseudo_count: float = 1.0) -> IndependentHistogram:
        """Smoothed counts: p(level) = (count + a) / (N + 256 a), the MAP histogram."""
        levels = self._levels(x, "IndependentHistogram.fit_closed_form")
        counts = torch.zeros(256, *self.config.shape).scatter_add_(
            0, levels, torch.ones_like(levels, dtype=torch.float)
        )
        self.logits.copy_(torch.log(counts + pseudo_count))
        return self

    def log_prob(self, x: torch.Tensor, *, y: None = None) -> torch.Tensor:
        """log p(x) in nats, one value per image: shape (N,)."""
        levels = self._levels(x, "IndependentHistogram.log_prob")
        log_p = F.log_softmax(self.logits, dim=0).flatten(1)  # (256, C·H·W)
        return log_p.gather(0, levels.flatten(1)).sum(1)  # log p of each value, summed

    @torch.no_grad()
    def sample(
        self, n: int, *, y: None = None, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """n images (n×C×H×W) in [0, 1], every value drawn on its own."""
        n = inputs.count(n, "IndependentHistogram.sample: n")
        inputs.labels(y, n, 0, what="IndependentHistogram.sample")
        probs = F.softmax(self.logits, dim=0).flatten(1).T.cpu()  # (C·H·W, 256)
        levels = torch.multinomial(probs, n, replacement=True, generator=generator)
        return levels.T.reshape(n, *self.config.shape).float().to(self.logits.device) / 255
