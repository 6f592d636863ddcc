"""genedu.latent_diffusion: flow matching on a frozen VAE's codes learns where the codes
lie, which the VAE's N(0, I) prior does not; the rest of the contract."""

from __future__ import annotations

import pytest
import torch

from genedu import data, diffusion, hub, train
from genedu.latent_diffusion import LatentDiffusion, LatentDiffusionConfig


def g(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.fixture(scope="module")
def digits() -> torch.Tensor:
    return data.to_unit(data.load("mnist5k", "train").images[:2000])


def moment_gap(a: torch.Tensor, b: torch.Tensor) -> float:
    """How far two clouds of codes are apart in their means and covariances."""
    return ((a.mean(0) - b.mean(0)).norm() + (torch.cov(a.T) - torch.cov(b.T)).norm()).item()


def test_the_learned_prior_sits_where_the_codes_are_and_n01_does_not(digits):
    torch.manual_seed(0)
    model = LatentDiffusion(LatentDiffusionConfig(hidden=128, layers=3, ema_decay=0.99))
    codes = model.codes(digits, generator=g(0))
    train.fit(model, digits, steps=500, batch_size=256, lr=2e-3, step=diffusion.train_step,
              lr_schedule=train.warmup_cosine(), progress=False)  # fmt: skip
    learned = model.flow.sample(2000, steps=10, generator=g(1))
    prior = torch.randn(2000, model.vae.config.latent_dim, generator=g(2))
    gap = moment_gap(learned, codes), moment_gap(prior, codes)
    assert gap[0] < 0.75 * gap[1], gap


def test_the_vae_stays_frozen_and_in_eval_mode(digits):
    torch.manual_seed(0)
    model = LatentDiffusion(LatentDiffusionConfig(hidden=16, layers=1))
    before = {k: v.clone() for k, v in model.vae.state_dict().items()}
    train.fit(model, digits[:256], steps=3, batch_size=64, progress=False)
    assert not model.vae.training
    for k, v in model.vae.state_dict().items():
        assert torch.equal(v, before[k]), k


def test_samples_are_decoded_images_repeatable_for_a_seed_and_round_trip(tmp_path):
    torch.manual_seed(0)
    model = LatentDiffusion(LatentDiffusionConfig(hidden=16, layers=1, num_classes=10)).eval()
    a = model.sample(4, y=3, steps=3, guidance=2.0, generator=g(5))
    assert a.shape == (4, 1, 28, 28) and 0 <= a.min() and a.max() <= 1
    assert torch.equal(a, model.sample(4, y=3, steps=3, guidance=2.0, generator=g(5)))
    back = hub.load(hub.save(model, tmp_path / "latent"))
    assert torch.equal(back.sample(4, y=3, steps=3, guidance=2.0, generator=g(5)), a)
    assert model.config.shape == (1, 28, 28)


def test_bad_inputs_are_named():
    with pytest.raises(ValueError, match="vae must be a shipped VAE"):
        LatentDiffusionConfig(vae="no-such-vae")
    model = LatentDiffusion(LatentDiffusionConfig(hidden=8, layers=1))
    with pytest.raises(ValueError, match="LatentDiffusion.loss: expected"):
        model.loss(torch.rand(2, 1, 8, 8))
    with pytest.raises(ValueError, match="steps: expected a whole number >= 1"):
        model.sample(2, steps=0)
