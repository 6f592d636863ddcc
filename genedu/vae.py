r"""Variational autoencoders: a latent code $z$, a decoder $p_\theta(x \mid z)$ and an
encoder $q_\phi(z \mid x)$ trained together on the evidence lower bound.

References: Kingma & Welling 2014 (the VAE, the reparameterisation trick, appendix B
for the Gaussian KL); Rezende, Mohamed & Wierstra 2014; Burda, Grosse & Salakhutdinov
2016 (the importance-weighted bound, eq. 8); Higgins et al. 2017 (the β weight);
Sohn, Lee & Yan 2015 (the class-conditional VAE).

With a standard normal prior $p(z) = \mathcal{N}(0, I)$ and a diagonal Gaussian encoder
$q_\phi(z \mid x) = \mathcal{N}(\mu_\phi(x), \operatorname{diag} \sigma^2_\phi(x))$,

$$\log p_\theta(x) \ge \mathbb{E}_{q_\phi(z \mid x)}[\log p_\theta(x \mid z)]
  - \mathrm{KL}(q_\phi(z \mid x) \,\|\, p(z)) = \mathrm{ELBO}(x),$$

and with $k$ samples $z_1..z_k \sim q_\phi(z \mid x)$ the tighter bound

$$\mathcal{L}_k(x) = \mathbb{E}\Big[\log \frac{1}{k} \sum_{i=1}^k
  \frac{p_\theta(x \mid z_i)\, p(z_i)}{q_\phi(z_i \mid x)}\Big]$$

rises towards $\log p_\theta(x)$ as $k$ grows ($\mathcal{L}_1$ is the ELBO).

Two decoders: ``"bernoulli"`` for binarised digits ($x \in \{0, 1\}$, logits out) and
``"gaussian"`` for grey levels in [0, 1] (a mean per pixel and one learned scale).
Two architectures: ``"conv"`` (the course's model) and ``"mlp"`` (the classic
784-400-20 VAE, the baseline). Every number is in nats per example.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from . import inputs

LIKELIHOODS = ("bernoulli", "gaussian")
ARCHITECTURES = ("conv", "mlp")


@dataclass(frozen=True)
class VAEConfig:
    """A VAE's shape. `num_classes` > 0 makes it class-conditional: p(x | z, y), q(z | x, y)."""

    shape: tuple[int, int, int] = (1, 28, 28)  # C, H, W of the data
    latent_dim: int = 32
    hidden: int = 32  # conv: channels of the first layer (doubled once); mlp: hidden units
    likelihood: str = "bernoulli"
    architecture: str = "conv"
    beta: float = 1.0  # weight on the KL in the training loss (β-VAE); 1 is the true ELBO
    num_classes: int = 0
    # gaussian: the decoder's learned scale never drops below this. Left near 0, σ can
    # shrink until the codes become points and prior samples fall between them.
    min_sigma: float = 1e-3

    def __post_init__(self):
        if self.likelihood not in LIKELIHOODS:
            raise ValueError(f"likelihood must be one of {LIKELIHOODS}, got {self.likelihood!r}")
        if self.architecture not in ARCHITECTURES:
            raise ValueError(
                f"architecture must be one of {ARCHITECTURES}, got {self.architecture!r}"
            )
        if len(self.shape) != 3 or min(self.shape) < 1:
            raise ValueError(f"shape must be (C, H, W), got {self.shape}")
        if self.latent_dim < 1 or self.hidden < 1 or self.beta < 0 or self.num_classes < 0:
            raise ValueError(f"latent_dim, hidden >= 1 and beta, num_classes >= 0: {self}")
        if not self.min_sigma > 0:
            raise ValueError(f"min_sigma must be > 0, got {self.min_sigma}")


def gaussian_kl(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    r"""$\mathrm{KL}(\mathcal{N}(\mu, \sigma^2) \| \mathcal{N}(0, I))$ per example, in nats.

    Closed form (Kingma & Welling 2014, appendix B):
    $\tfrac12 \sum_j (\mu_j^2 + \sigma_j^2 - 1 - \log \sigma_j^2)$. mu, logvar: (N, L) -> (N,).
    """
    return 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar).sum(-1)


def reparameterize(
    mu: torch.Tensor, logvar: torch.Tensor, generator: torch.Generator | None = None
) -> torch.Tensor:
    r"""$z = \mu + \sigma \odot \varepsilon$, $\varepsilon \sim \mathcal{N}(0, I)$: a sample
    that gradients flow through to mu and logvar (the reparameterisation trick)."""
    eps = torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
    return mu + (0.5 * logvar).exp() * eps


def _normal_log_density(z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """log N(z; mu, diag exp(logvar)), summed over the last dimension."""
    return -0.5 * (math.log(2 * math.pi) + logvar + (z - mu).pow(2) / logvar.exp()).sum(-1)


class VAE(nn.Module):
    """A VAE following the genedu contract: loss, sample, elbo, log_prob, encode, decode."""

    def __init__(self, config: VAEConfig = VAEConfig()):
        super().__init__()
        self.config = config
        c, h, w = config.shape
        d, y_dim = config.hidden, config.num_classes
        if config.architecture == "conv":
            # Pad H and W up to multiples of 4 so that two stride-2 steps divide exactly.
            self.padded = (4 * math.ceil(h / 4), 4 * math.ceil(w / 4))
            h4, w4 = self.padded[0] // 4, self.padded[1] // 4
            self.encoder = nn.Sequential(
                nn.Conv2d(c, d, 4, stride=2, padding=1), nn.ReLU(),  # (N, d, H/2, W/2)
                nn.Conv2d(d, 2 * d, 4, stride=2, padding=1), nn.ReLU(),  # (N, 2d, H/4, W/4)
                nn.Flatten(),
            )  # fmt: skip
            features = 2 * d * h4 * w4
            self.decoder = nn.Sequential(
                nn.Linear(config.latent_dim + y_dim, features), nn.ReLU(),
                nn.Unflatten(1, (2 * d, h4, w4)),
                nn.ConvTranspose2d(2 * d, d, 4, stride=2, padding=1), nn.ReLU(),  # (N, d, H/2, W/2)
                nn.ConvTranspose2d(d, c, 4, stride=2, padding=1),  # (N, C, H, W): logits or means
            )  # fmt: skip
        else:
            self.padded = (h, w)
            features = d
            self.encoder = nn.Sequential(nn.Flatten(), nn.Linear(c * h * w, d), nn.ReLU())
            self.decoder = nn.Sequential(
                nn.Linear(config.latent_dim + y_dim, d), nn.ReLU(),
                nn.Linear(d, c * h * w), nn.Unflatten(1, (c, h, w)),
            )  # fmt: skip
        self.to_posterior = nn.Linear(features + y_dim, 2 * config.latent_dim)  # mu, logvar
        if config.likelihood == "gaussian":
            self.log_sigma = nn.Parameter(torch.full((c,), math.log(0.1)))

    # ---------------------------------------------------------------- checks
    def _check(self, x: torch.Tensor, what: str) -> None:
        hint = "use genedu.data.binarize (digits) or genedu.data.to_unit (grey levels)"
        inputs.images(x, self.config.shape, what=f"VAE.{what}", hint=hint,
                      dtype=self.to_posterior.weight.dtype)  # fmt: skip

    def _labels(self, y, n: int, what: str = "VAE") -> torch.Tensor | None:
        y = inputs.labels(y, n, self.config.num_classes, what=what)
        if y is None:
            return None
        return F.one_hot(y.to(self.to_posterior.weight.device), self.config.num_classes).float()

    # ---------------------------------------------------------------- the two networks
    def encode(
        self, x: torch.Tensor, y: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """q(z | x): the posterior's mean and log-variance, each (N, latent_dim)."""
        self._check(x, "encode")
        return self._encode(x, self._labels(y, len(x)))

    def _encode(self, x, y_onehot):
        h, w = self.config.shape[1:]
        x = F.pad(x, (0, self.padded[1] - w, 0, self.padded[0] - h))
        features = self.encoder(x)
        if y_onehot is not None:
            features = torch.cat([features, y_onehot], 1)
        mu, logvar = self.to_posterior(features).chunk(2, dim=1)
        return mu, logvar.clamp(-12.0, 8.0)

    def _decode(self, z: torch.Tensor, y_onehot) -> torch.Tensor:
        """The decoder's raw output (N, C, H, W): logits (Bernoulli) or pre-sigmoid means."""
        if y_onehot is not None:
            z = torch.cat([z, y_onehot], 1)
        h, w = self.config.shape[1:]
        return self.decoder(z)[..., :h, :w]

    def decode(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """The mean image E[x | z] in [0, 1], (N, C, H, W), for codes z (N, latent_dim)."""
        inputs.vectors(z, self.config.latent_dim, what="VAE.decode: z",
                       dtype=self.to_posterior.weight.dtype)  # fmt: skip
        return torch.sigmoid(self._decode(z, self._labels(y, len(z))))

    def log_likelihood(
        self, x: torch.Tensor, z: torch.Tensor, y: torch.Tensor | None = None
    ) -> torch.Tensor:
        """log p(x | z) per example (N,), in nats, for images x (N, C, H, W) and codes z
        (N, latent_dim): the first term of the ELBO, one z per image."""
        self._check(x, "log_likelihood")
        inputs.vectors(z, self.config.latent_dim, what="VAE.log_likelihood: z",
                       dtype=self.to_posterior.weight.dtype)  # fmt: skip
        if z.shape != (len(x), self.config.latent_dim):
            raise ValueError(
                f"log_likelihood: expected z of shape {len(x)}×{self.config.latent_dim} "
                f"(one code per image), got {tuple(z.shape)}"
            )
        return self._log_likelihood(x, self._decode(z, self._labels(y, len(x))))

    def _log_likelihood(self, x: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        """log p(x | z) per example, in nats, from the decoder's raw output."""
        if self.config.likelihood == "bernoulli":
            return -F.binary_cross_entropy_with_logits(out, x, reduction="none").flatten(1).sum(1)
        log_sigma = self.log_sigma.clamp(min=math.log(self.config.min_sigma)).view(1, -1, 1, 1)
        mean = torch.sigmoid(out)
        log_density = (
            -0.5 * math.log(2 * math.pi) - log_sigma - 0.5 * ((x - mean) / log_sigma.exp()) ** 2
        )
        return log_density.flatten(1).sum(1)

    # ---------------------------------------------------------------- objectives
    def _terms(self, x, y_onehot, generator=None) -> tuple[torch.Tensor, torch.Tensor]:
        mu, logvar = self._encode(x, y_onehot)
        z = reparameterize(mu, logvar, generator)
        return self._log_likelihood(x, self._decode(z, y_onehot)), gaussian_kl(mu, logvar)

    def elbo(
        self,
        x: torch.Tensor,
        y: torch.Tensor | None = None,
        *,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """One-sample ELBO per example (N,), in nats: E_q[log p(x|z)] - KL(q(z|x) || p(z))."""
        self._check(x, "elbo")
        recon, kl = self._terms(x, self._labels(y, len(x)), generator)
        return recon - kl

    def loss(
        self, batch: torch.Tensor | tuple[torch.Tensor, torch.Tensor]
    ) -> dict[str, torch.Tensor]:
        """Mean of -E[log p(x|z)] + β·KL over the batch; with y when class-conditional."""
        x, y = (batch, None) if isinstance(batch, torch.Tensor) else batch
        if self.config.num_classes == 0:
            y = None  # an (images, labels) batch trains an unconditional model too
        self._check(x, "loss")
        recon, kl = self._terms(x, self._labels(y, len(x)))
        recon, kl = -recon.mean(), kl.mean()
        return {
            "loss": recon + self.config.beta * kl,
            "recon": recon,
            "kl": kl,
            "neg_elbo": recon + kl,
        }

    @torch.no_grad()
    def log_prob(
        self,
        x: torch.Tensor,
        *,
        y: torch.Tensor | None = None,
        k: int = 100,
        generator: torch.Generator | None = None,
        max_samples: int = 20_000,
    ) -> torch.Tensor:
        r"""The importance-weighted bound $\mathcal{L}_k(x)$ per example (N,), in nats.

        Burda et al. 2016, eq. 8: $\log \frac1k \sum_i p(x|z_i) p(z_i) / q(z_i|x)$ with
        $z_i \sim q(z|x)$. k=1 is the ELBO; it rises towards $\log p(x)$ as k grows.
        Works through the examples in chunks of at most `max_samples` decoder passes.
        """
        self._check(x, "log_prob")
        k = inputs.count(k, "VAE.log_prob: k")
        max_samples = inputs.count(max_samples, "VAE.log_prob: max_samples")
        y_onehot = self._labels(y, len(x))
        per_chunk = max(1, max_samples // k)
        out = []
        for start in range(0, len(x), per_chunk):
            xb = x[start : start + per_chunk]
            yb = None if y_onehot is None else y_onehot[start : start + per_chunk]
            mu, logvar = self._encode(xb, yb)
            n, latent = mu.shape
            mu_k = mu.repeat_interleave(k, 0)  # (n·k, L): k samples per example
            logvar_k = logvar.repeat_interleave(k, 0)
            z = reparameterize(mu_k, logvar_k, generator)
            y_k = None if yb is None else yb.repeat_interleave(k, 0)
            log_px_z = self._log_likelihood(xb.repeat_interleave(k, 0), self._decode(z, y_k))
            log_pz = _normal_log_density(z, torch.zeros_like(z), torch.zeros_like(z))
            log_qz = _normal_log_density(z, mu_k, logvar_k)
            log_w = (log_px_z + log_pz - log_qz).view(n, k)
            out.append(torch.logsumexp(log_w, 1) - math.log(k))
        return torch.cat(out)

    # ---------------------------------------------------------------- generation
    @torch.no_grad()
    def sample(
        self,
        n: int,
        *,
        generator: torch.Generator | None = None,
        y: torch.Tensor | int | None = None,
        temperature: float = 1.0,
        mean: bool = False,
    ) -> torch.Tensor:
        """n draws x ~ p(x | z) at z ~ N(0, temperature² I): images (n, C, H, W) in [0, 1]
        (binary for the Bernoulli decoder; Gaussian draws clipped to [0, 1]). mean=True
        returns the decoder's mean image E[x | z] instead, the picture usually shown. A
        class-conditional VAE given no y draws the classes in turn, 0, 1, ..., K-1, 0, ..."""
        n = inputs.count(n, "VAE.sample: n")
        if self.config.num_classes and y is None:  # the classes in turn, as a GAN does
            y = torch.arange(n) % self.config.num_classes
        temperature = inputs.number(temperature, "VAE.sample: temperature", low=0)
        device = self.to_posterior.weight.device
        z = temperature * torch.randn(n, self.config.latent_dim, generator=generator).to(device)
        means = torch.sigmoid(self._decode(z, self._labels(y, n, "VAE.sample")))
        if mean:
            return means
        if self.config.likelihood == "bernoulli":  # each pixel on with its probability
            u = torch.rand(means.shape, generator=generator).to(device)
            return (u < means).to(means.dtype)
        eps = torch.randn(means.shape, generator=generator).to(device)
        sigma = self.log_sigma.clamp(min=math.log(self.config.min_sigma)).exp().view(1, -1, 1, 1)
        return (means + sigma * eps).clamp(0, 1)


@torch.no_grad()
def mean_neg_elbo(
    model: VAE,
    x: torch.Tensor,
    *,
    generator: torch.Generator | None = None,
    batch_size: int = 1000,
) -> float:
    """The mean of -ELBO over images x (N, C, H, W), in nats per image, in batches.

    The one number a VAE's training, `genedu eval`, the benchmark and the chapters report;
    `generator` seeds the one-sample noise so that a measurement repeats exactly.
    """
    total = sum(-model.elbo(b, generator=generator).sum().item() for b in x.split(batch_size))
    return total / len(x)
