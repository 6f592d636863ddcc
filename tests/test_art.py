"""Latent arithmetic and walks (genedu.apps.art)."""

from __future__ import annotations

import pytest
import torch

from genedu.apps import art
from genedu.vae import VAE, VAEConfig


@pytest.fixture(scope="module")
def model() -> VAE:
    torch.manual_seed(0)
    return VAE(VAEConfig(shape=(1, 12, 12), latent_dim=3, hidden=4)).eval()


def _images(n=20, seed=0):
    return torch.rand(n, 1, 12, 12, generator=torch.Generator().manual_seed(seed))


def test_class_means_are_the_mean_posterior_means(model):
    x, y = _images(), torch.arange(20) % 2
    means = art.class_means(model, x, y)
    mu, _ = model.encode(x)
    assert set(means) == {0, 1}
    assert torch.allclose(means[1], mu[1::2].mean(0), atol=1e-6)
    with pytest.raises(ValueError, match="integer labels"):
        art.class_means(model, x, y.float())


def test_analogy_with_equal_ends_is_the_reconstruction(model):
    x = _images(4)
    mu, _ = model.encode(x)
    same = art.analogy(model, x, mu[0], mu[0])
    assert torch.allclose(same, model.decode(mu), atol=1e-6)
    moved = art.analogy(model, x, torch.zeros(3), torch.ones(3))
    assert torch.allclose(moved, model.decode(mu + 1), atol=1e-6)
    with pytest.raises(ValueError, match="codes of shape"):
        art.analogy(model, x, torch.zeros(4), torch.zeros(3))


def test_walk_passes_through_its_stops_and_loops(model):
    stops = torch.randn(3, 3, generator=torch.Generator().manual_seed(1))
    frames = art.walk(model, stops, steps=5)
    assert frames.shape == (15, 1, 12, 12)
    stop_images = model.decode(stops)
    for k in range(3):
        assert torch.allclose(frames[5 * k], stop_images[k], atol=1e-5)
    open_path = art.walk(model, stops, steps=5, loop=False)
    assert open_path.shape == (11, 1, 12, 12)
    assert torch.allclose(open_path[-1], stop_images[-1], atol=1e-5)
    with pytest.raises(ValueError, match="at least 2 codes"):
        art.walk(model, stops[:1])
