r"""Latent diffusion: flow matching in the latent space of a trained VAE, then its decoder.

References: Rombach et al. 2022 (latent diffusion, the idea behind Stable Diffusion:
diffuse in an autoencoder's small latent space, not in pixel space); Lipman et al.
2023 (flow matching, `genedu.diffusion`).

A VAE's prior N(0, I) is a poor fit to the codes its encoder actually uses: drawing z
from it lands in holes between the digits. Here a small MLP learns the codes'
distribution instead, by flow matching on the 32 numbers of each code rather than on
784 pixels, so a step costs a few thousand multiply-adds, not a U-Net. Sampling solves
the flow's ODE from noise to a code, then decodes it:

    model = LatentDiffusion(LatentDiffusionConfig(vae="vae-mnist"))
    genedu.train.fit(model, images, steps=3000, step=genedu.diffusion.train_step)
    digits = model.sample(64)

The VAE is frozen and kept inside the checkpoint, so the codes and the decoder always
belong together.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from . import hub, inputs
from .diffusion import DiffusionConfig, FlowMatching
from .vae import reparameterize


@dataclass(frozen=True)
class LatentDiffusionConfig:
    """The VAE whose latent space is learned (a shipped name), and the flow's MLP."""

    vae: str = "vae-mnist"
    hidden: int = 256
    layers: int = 4
    num_classes: int = 0
    p_uncond: float = 0.1
    ema_decay: float = 0.0

    @property
    def shape(self) -> tuple[int, ...]:
        """The images' shape: the VAE's."""
        return tuple(hub.info(self.vae)["config"]["shape"])

    def __post_init__(self):
        if self.vae not in {row["name"] for row in hub.list()}:
            known = ", ".join(r["name"] for r in hub.list() if r["class"] == "genedu.vae.VAE")
            raise ValueError(f"LatentDiffusionConfig: vae must be a shipped VAE ({known}), "
                             f"got {self.vae!r}")  # fmt: skip


class LatentDiffusion(nn.Module):
    """Flow matching on a frozen VAE's codes; samples are the decoder's mean images."""

    def __init__(self, config: LatentDiffusionConfig = LatentDiffusionConfig()):
        super().__init__()
        self.config = c = config
        self.vae = hub.load(c.vae).requires_grad_(False).eval()
        d = self.vae.config.latent_dim
        self.flow = FlowMatching(DiffusionConfig(
            shape=(d,), architecture="mlp", hidden=c.hidden, layers=c.layers,
            num_classes=c.num_classes, p_uncond=c.p_uncond, ema_decay=c.ema_decay))  # fmt: skip

    def train(self, mode: bool = True):
        super().train(mode)
        self.vae.eval()  # frozen: its batch statistics, if any, stay as trained
        return self

    def update_ema(self, step: int) -> None:
        self.flow.update_ema(step)

    @torch.no_grad()
    def codes(self, x: torch.Tensor, *, generator: torch.Generator | None = None):
        """z ~ q(z | x) for images x in [0, 1]: a draw from the VAE's posterior."""
        mu, logvar = self.vae.encode(x)
        return reparameterize(mu, logvar, generator)

    def loss(self, batch, *, generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """Flow matching's loss on the codes of the batch's images."""
        x, y = batch if isinstance(batch, tuple | list) else (batch, None)
        inputs.images(x, self.vae.config.shape, what="LatentDiffusion.loss")
        z = self.codes(x, generator=generator)
        return self.flow.loss(z if y is None else (z, y), generator=generator)

    @torch.no_grad()
    def sample(self, n: int, *, y=None, steps: int | None = None, sampler: str = "heun",
               guidance: float = 1.0,
               generator: torch.Generator | None = None) -> torch.Tensor:  # fmt: skip
        """n images in [0, 1]: codes from the flow's ODE (see FlowMatching.sample), then
        the VAE decoder's mean image for each."""
        z = self.flow.sample(n, y=y, steps=steps, sampler=sampler, guidance=guidance,
                             generator=generator)  # fmt: skip
        return self.vae.decode(z)
