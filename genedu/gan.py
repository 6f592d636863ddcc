r"""Generative adversarial networks: a generator $G$ and a discriminator $D$ in a game.

References: Goodfellow et al. 2014 (the game, eq. 1, and the non-saturating generator
loss of section 3); Radford, Metz & Chintala 2016 (DCGAN: strided convolutions, batch
norm in G, LeakyReLU in D, Adam with lr 2e-4 and beta1 0.5); Mirza & Osindero 2014
(conditional GAN); Miyato & Koyama 2018 (the projection discriminator); Lim & Ye 2017
(the hinge loss); Mescheder, Geiger & Nowozin 2018 (the R1 penalty, eq. 9); Karras et
al. 2018 (an exponential moving average of G's weights).

$D(x) = \sigma(\ell(x))$ is D's probability that $x$ is real, $\ell$ its logit. The game

$$\min_G \max_D \; \mathbb{E}_{x \sim p_{\text{data}}}[\log D(x)]
  + \mathbb{E}_{z \sim p(z)}[\log(1 - D(G(z)))]$$

is played one step at a time: `train_step` updates D once, then G once, each with its
own optimiser. The loop around it is every family's, `genedu.train.fit`, called with
``step=train_step``; the StyleGAN chapter reuses both.

Two architectures: ``"dcgan"`` for 28×28 and 32×32 images (the course's model; 64×64 on a GPU) and
``"mlp"`` for points in $\mathbb{R}^d$ (the 2-D toys of the GAN chapter). Images are
floats in [0, 1] outside the model; inside, G ends in tanh and D sees $2x - 1$.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from . import inputs
from .distributed import average_gradients

LOSSES = ("minimax", "nonsaturating", "hinge")
ARCHITECTURES = ("dcgan", "mlp")
CONDITIONINGS = ("input", "projection")


@dataclass(frozen=True)
class GANConfig:
    """A GAN's shape and its game. `num_classes` > 0 makes both players class-conditional."""

    shape: tuple[int, ...] = (1, 28, 28)  # dcgan: (C, S, S), S in {28, 32, 64, ...}; mlp: (d,)
    latent_dim: int = 64
    hidden: int = 64  # dcgan: D's first channels (G's widest layer has 2x); mlp: units
    architecture: str = "dcgan"
    num_classes: int = 0
    # how D sees the class: "input" (one-hot maps stacked on the image, as in the
    # conditional DCGAN) or "projection" (Miyato & Koyama 2018: l = w.phi + embed(y).phi)
    conditioning: str = "input"
    # D also sees how much its batch varies (Karras et al. 2018, section 3): a batch of
    # near-copies, the signature of mode collapse, becomes easy to reject
    minibatch_std: bool = False
    loss: str = "nonsaturating"  # one of LOSSES
    # weight of the R1 penalty on real data, its gradient taken w.r.t. the [0, 1] image
    # (4x the penalty on D's [-1, 1] input: divide a paper's gamma by 4); 0 turns it off
    r1_gamma: float = 0.0
    r1_every: int = 1  # lazy R1: apply it (scaled up by this) every N steps
    ema_decay: float = 0.0  # EMA of G's weights, e.g. 0.999; 0 turns it off

    def __post_init__(self):
        if self.architecture not in ARCHITECTURES:
            raise ValueError(
                f"architecture must be one of {ARCHITECTURES}, got {self.architecture!r}"
            )
        if self.conditioning not in CONDITIONINGS:
            raise ValueError(
                f"conditioning must be one of {CONDITIONINGS}, got {self.conditioning!r}"
            )
        if self.loss not in LOSSES:
            raise ValueError(f"loss must be one of {LOSSES}, got {self.loss!r}")
        if self.architecture == "dcgan":
            c, h, w = self.shape if len(self.shape) == 3 else (0, 0, 1)
            if c not in (1, 3) or h != w or h < 8 or h % 4:
                raise ValueError(
                    f"dcgan: shape must be (C, S, S) with C = 1 or 3 and S a multiple of 4 "
                    f"(28, 32, 64, ...; each player halves it twice), "
                    f"got {self.shape}"
                )
        elif len(self.shape) != 1 or self.shape[0] < 1:
            raise ValueError(f"mlp: shape must be (d,), got {self.shape}")
        if self.latent_dim < 1 or self.hidden < 1 or self.num_classes < 0:
            raise ValueError(f"latent_dim, hidden >= 1 and num_classes >= 0: {self}")
        if self.r1_gamma < 0 or self.r1_every < 1 or not 0.0 <= self.ema_decay < 1.0:
            raise ValueError(
                f"r1_gamma >= 0, r1_every >= 1 and 0 <= ema_decay < 1, got {self.r1_gamma}, "
                f"{self.r1_every}, {self.ema_decay}"
            )


# ---------------------------------------------------------------------------- the losses


def discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor, kind: str):
    r"""D's loss from its logits on a real and a fake batch (a scalar, to minimise).

    minimax and nonsaturating share D's side, the cross-entropy of eq. 1:
    $-\log \sigma(\ell_r) - \log(1 - \sigma(\ell_f)) = \mathrm{softplus}(-\ell_r)
    + \mathrm{softplus}(\ell_f)$. hinge: $\max(0, 1 - \ell_r) + \max(0, 1 + \ell_f)$.
    """
    if kind in ("minimax", "nonsaturating"):
        return F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()
    if kind == "hinge":
        return F.relu(1 - real_logits).mean() + F.relu(1 + fake_logits).mean()
    raise ValueError(f"unknown GAN loss {kind!r}: expected one of {LOSSES}")


def generator_loss(fake_logits: torch.Tensor, kind: str) -> torch.Tensor:
    r"""G's loss from D's logits on G's samples (a scalar, to minimise).

    minimax: $\log(1 - \sigma(\ell_f)) = -\mathrm{softplus}(\ell_f)$, eq. 1 itself, whose
    gradient vanishes exactly when D rejects G's samples confidently (early training).
    nonsaturating: $-\log \sigma(\ell_f) = \mathrm{softplus}(-\ell_f)$, the same fixed
    point with strong gradients there. hinge: $-\ell_f$.
    """
    if kind == "minimax":
        return -F.softplus(fake_logits).mean()
    if kind == "nonsaturating":
        return F.softplus(-fake_logits).mean()
    if kind == "hinge":
        return -fake_logits.mean()
    raise ValueError(f"unknown GAN loss {kind!r}: expected one of {LOSSES}")


def r1_penalty(discriminator: nn.Module, x: torch.Tensor, y: torch.Tensor | None = None):
    r"""$\tfrac12 \mathbb{E}\,\|\nabla_x \ell(x)\|^2$ on real data (Mescheder et al. 2018, eq. 9,
    without $\gamma$): it keeps D flat on the data, so the game settles instead of cycling.
    """
    x = x.detach().requires_grad_(True)
    logits = discriminator(x, y)
    (grad,) = torch.autograd.grad(logits.sum(), x, create_graph=True)
    return 0.5 * grad.pow(2).flatten(1).sum(1).mean()


# ---------------------------------------------------------------------------- the players


class Generator(nn.Module):
    """z (N, latent_dim) [+ class y (N,)] -> samples: images in [-1, 1] or points in R^d."""

    def __init__(self, c: GANConfig):
        super().__init__()
        self.config = c
        z_dim = c.latent_dim + c.num_classes  # [z, one_hot(y)]: Mirza & Osindero 2014
        if c.architecture == "mlp":
            h = c.hidden
            self.net = nn.Sequential(
                nn.Linear(z_dim, h),
                nn.ReLU(),
                nn.Linear(h, h),
                nn.ReLU(),
                nn.Linear(h, c.shape[0]),
            )
            return
        ch, size, w = c.shape[0], c.shape[1] // 4, 2 * c.hidden
        self.net = nn.Sequential(
            nn.Linear(z_dim, w * size * size, bias=False),  # project and reshape
            nn.BatchNorm1d(w * size * size),
            nn.ReLU(),
            nn.Unflatten(1, (w, size, size)),  # (N, 2h, H/4, W/4)
            nn.ConvTranspose2d(w, c.hidden, 4, 2, 1, bias=False),  # (N, h, H/2, W/2)
            nn.BatchNorm2d(c.hidden),
            nn.ReLU(),
            nn.ConvTranspose2d(c.hidden, ch, 4, 2, 1),  # (N, C, H, W)
            nn.Tanh(),
        )

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        if self.config.num_classes:
            z = torch.cat([z, F.one_hot(y, self.config.num_classes).to(z.dtype)], dim=1)
        return self.net(z)


def minibatch_stddev(phi: torch.Tensor, group: int = 4) -> torch.Tensor:
    """Per example, the mean standard deviation of each feature across its group of
    `group` examples (the whole batch when it does not split evenly): (N, F) -> (N, 1)."""
    n = len(phi)
    g = group if n % group == 0 and n > group else n
    if g < 2:
        return torch.zeros(n, 1, dtype=phi.dtype, device=phi.device)
    grouped = phi.reshape(g, n // g, -1)  # example i sits in group i % (n // g)
    std = (grouped.var(0, unbiased=False) + 1e-8).sqrt().mean(1)  # (n // g,)
    return std.repeat(g)[:, None]


class Discriminator(nn.Module):
    """x (images in [0, 1], or points) [+ class y] -> one logit per example, (N,)."""

    def __init__(self, c: GANConfig):
        super().__init__()
        self.config = c
        # "input" conditioning: the class as K extra one-hot inputs (channels of images)
        extra = c.num_classes if c.num_classes and c.conditioning == "input" else 0
        if c.architecture == "mlp":
            h = c.hidden
            self.features = nn.Sequential(
                nn.Linear(c.shape[0] + extra, h),
                nn.LeakyReLU(0.2),
                nn.Linear(h, h),
                nn.LeakyReLU(0.2),
            )
            width = h
        else:
            h, size = c.hidden, c.shape[1] // 4
            self.features = nn.Sequential(
                nn.Conv2d(c.shape[0] + extra, h, 4, 2, 1),  # (N, h, H/2, W/2)
                nn.LeakyReLU(0.2),
                nn.Conv2d(h, 2 * h, 4, 2, 1),  # (N, 2h, H/4, W/4)
                nn.LeakyReLU(0.2),
                nn.Flatten(),
            )
            width = 2 * h * size * size
        self.out = nn.Linear(width + int(c.minibatch_std), 1)
        projection = c.num_classes and c.conditioning == "projection"
        self.embed = nn.Embedding(c.num_classes, width) if projection else None

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        c = self.config
        if c.architecture == "dcgan":
            x = 2 * x - 1  # [0, 1] -> [-1, 1], G's range
        if c.num_classes and c.conditioning == "input":
            onehot = F.one_hot(y, c.num_classes).to(x.dtype)  # (N, K)
            if c.architecture == "dcgan":
                onehot = onehot[:, :, None, None].expand(-1, -1, *x.shape[2:])  # (N, K, H, W)
            x = torch.cat([x, onehot], dim=1)
        phi = self.features(x)  # (N, width)
        if c.minibatch_std:
            phi = torch.cat([phi, minibatch_stddev(phi)], dim=1)  # (N, width + 1)
        logits = self.out(phi).squeeze(1)
        if self.embed is not None:
            logits = logits + (self.embed(y) * phi[:, : self.embed.embedding_dim]).sum(1)
        return logits


class GAN(nn.Module):
    """Both players in one module, so one checkpoint holds the game.

    `generator` and `discriminator` are plain attributes: train them with two optimisers
    (see `train_step`). With ``ema_decay`` > 0, `generator_ema` follows G's weights as an
    exponential moving average and `sample` draws from it.
    """

    def __init__(self, config: GANConfig):
        super().__init__()
        self.config = config
        self.generator, self.discriminator = self.players(config)
        self.generator_ema = None
        if config.ema_decay > 0:
            self.generator_ema = copy.deepcopy(self.generator).requires_grad_(False).eval()

    def players(self, config) -> tuple[nn.Module, nn.Module]:
        """(G, D) for this config; `genedu.stylegan.StyleGAN` swaps in its own."""
        return Generator(config), Discriminator(config)

    @property
    def images(self) -> bool:
        """Whether the players make and judge images (in [0, 1]), not points."""
        return self.config.architecture != "mlp"

    def to_data(self, out: torch.Tensor) -> torch.Tensor:
        """G's raw output in the data's range: [-1, 1] -> [0, 1] for images."""
        return (out + 1) / 2 if self.images else out

    def train(self, mode: bool = True):
        """Train mode for both players; the EMA generator always samples in eval mode."""
        super().train(mode)
        if self.generator_ema is not None:
            self.generator_ema.eval()
        return self

    # ------------------------------------------------------------------ inputs
    def check_data(self, x: torch.Tensor, y: torch.Tensor | None = None, what: str = "GAN"):
        """Raise a clear error unless x (and y) is what this GAN was built for: images in
        [0, 1] (or points), and labels when it is class-conditional. Returns y as int64."""
        inputs.images(x, self.config.shape, what=what, values="unit" if self.images else "any",
                      dtype=next(self.parameters()).dtype)  # fmt: skip
        return self._check_labels(y, len(x), what)

    def _check_labels(self, y, n: int, what: str = "GAN") -> torch.Tensor | None:
        return inputs.labels(y, n, self.config.num_classes, what=what)

    # ------------------------------------------------------------------ sampling
    def noise(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """z ~ N(0, I): (n, latent_dim)."""
        n = inputs.count(n, "GAN.noise: n")
        dev = next(self.parameters()).device
        return torch.randn(n, self.config.latent_dim, generator=generator).to(dev)

    def generate(
        self, z: torch.Tensor, y: torch.Tensor | None = None, *, ema: bool = True
    ) -> torch.Tensor:
        """Samples for given latents (images in [0, 1]); the EMA generator when there is one."""
        inputs.vectors(z, self.config.latent_dim, what="GAN.generate: z",
                       dtype=next(self.parameters()).dtype)  # fmt: skip
        y = self._check_labels(y, len(z), "GAN.generate")
        g = self.generator_ema if ema and self.generator_ema is not None else self.generator
        return self.to_data(g(z, y))

    @torch.no_grad()
    def sample(
        self,
        n: int,
        *,
        generator: torch.Generator | None = None,
        y: torch.Tensor | int | None = None,
    ) -> torch.Tensor:
        """n samples in the data's layout (images in [0, 1]), in eval mode.

        Conditional GANs take `y`: an int for n samples of one class, a tensor of n
        labels, or None for the classes in turn (0, 1, ..., K-1, 0, ...).
        """
        n = inputs.count(n, "GAN.sample: n")
        k = self.config.num_classes
        if k and y is None:
            y = torch.arange(n) % k
        y = self._check_labels(y, n, "GAN.sample")
        dev = next(self.parameters()).device
        z = self.noise(n, generator)
        if y is not None:
            y = y.to(dev)
        was_training = self.training
        self.eval()
        try:  # in chunks, so that 50,000 samples need no more memory than 5,000
            parts = [
                self.generate(z[i : i + 5000], None if y is None else y[i : i + 5000])
                for i in range(0, max(n, 1), 5000)
            ]
            return torch.cat(parts)
        finally:
            self.train(was_training)

    def loss(self, batch, *, generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """Both players' losses on one batch, for logging and the model contract.

        "loss" is D's loss, the one number of the game that a step of training lowers
        (D's half of `train_step`); "g" is G's, which it lowers against the D of the
        moment. No single optimiser should descend both: train with `train_step`.
        """
        x, y = batch if isinstance(batch, tuple | list) else (batch, None)
        y = self.check_data(x, y, "GAN.loss")
        z = self.noise(len(x), generator)
        fake = self.to_data(self.generator(z, y))
        d_loss = discriminator_loss(
            self.discriminator(x, y), self.discriminator(fake, y), self.config.loss
        )
        g_loss = generator_loss(self.discriminator(fake, y), self.config.loss)
        return {"loss": d_loss, "d": d_loss, "g": g_loss}

    def optimizers(self, *, lr: float = 2e-4, betas: tuple[float, float] | None = None) -> dict:
        """One Adam per player, as `train_step` wants them: {"d": ..., "g": ...}.
        betas None is DCGAN's (0.5, 0.999); StyleGAN2 uses (0, 0.99)."""
        betas = betas or (0.5, 0.999)
        return {
            "d": torch.optim.Adam(self.discriminator.parameters(), lr=lr, betas=betas),
            "g": torch.optim.Adam(self.generator.parameters(), lr=lr, betas=betas),
        }

    @torch.no_grad()
    def update_ema(self) -> None:
        """generator_ema <- decay * generator_ema + (1 - decay) * generator; buffers copied."""
        if self.generator_ema is None:
            return
        decay = self.config.ema_decay
        for p_ema, p in zip(
            self.generator_ema.parameters(), self.generator.parameters(), strict=True
        ):
            p_ema.lerp_(p, 1 - decay)
        for b_ema, b in zip(self.generator_ema.buffers(), self.generator.buffers(), strict=True):
            b_ema.copy_(b)


def train_step(
    model: GAN,
    batch,
    optimizers: dict[str, torch.optim.Optimizer],
    *,
    step: int = 0,
    generator: torch.Generator | None = None,
) -> dict[str, float]:
    """One round of the game on a real batch x or (x, y): (1) update D, (2) update G.

    The step `genedu.train.fit` takes for a GAN: ``fit(model, images, step=train_step)``;
    `optimizers` are ``{"d": ..., "g": ...}`` (`GAN.optimizers`). With lazy R1 the
    penalty is applied every r1_every-th step, scaled up to match.
    Returns the numbers worth logging: both adversarial losses (d without the penalty),
    the R1 penalty, and D's mean probability of "real" on real (d_real) and fake (d_fake)
    data.
    """
    x, y = batch if isinstance(batch, tuple | list) else (batch, None)
    y = model.check_data(x, y, "gan.train_step")
    opt_d, opt_g = optimizers["d"], optimizers["g"]
    c = model.config
    D, G = model.discriminator, model.generator
    n = len(x)
    y_fake = (
        None
        if c.num_classes == 0
        else torch.randint(0, c.num_classes, (n,), generator=generator).to(x.device)
    )
    z = model.noise(n, generator)
    fake = model.to_data(G(z, y_fake))  # images in [0, 1], as D reads them

    # (1) update D: push l(real) up and l(fake) down; G's graph is cut by detach()
    real_logits, fake_logits = D(x, y), D(fake.detach(), y_fake)
    loss_d = discriminator_loss(real_logits, fake_logits, c.loss)
    penalty = torch.zeros(())
    if c.r1_gamma > 0 and step % c.r1_every == 0:
        penalty = r1_penalty(D, x, y)
    opt_d.zero_grad(set_to_none=True)
    (loss_d + c.r1_gamma * c.r1_every * penalty).backward()
    average_gradients(D)  # under torchrun; a no-op in one process
    opt_d.step()

    # (2) update G: through the updated D, whose weights stay fixed here
    D.requires_grad_(False)
    try:
        loss_g = generator_loss(D(fake, y_fake), c.loss)
        opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        average_gradients(G)
        opt_g.step()
    finally:
        D.requires_grad_(True)
    model.update_ema()
    return {
        "d": loss_d.item(),
        "g": loss_g.item(),
        "d_real": torch.sigmoid(real_logits).mean().item(),
        "d_fake": torch.sigmoid(fake_logits).mean().item(),
        "r1": penalty.item(),
    }
