"""The recipes behind `genedu train` and `genedu eval`: one module per family.

A recipe says, for one family, which flags `genedu train FAMILY` takes (their defaults
read from the family's config), how it trains and saves a checkpoint with its metrics
and command, and how `genedu eval` measures such a checkpoint: the same way training
did. `common` holds what they share. A new family adds a module and a line here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from . import char, classifier, common, diffusion, gan, mixture, pixelcnn, vae


@dataclass(frozen=True)
class Recipe:
    help: str  # one line, for `genedu train --help`
    arguments: Callable  # adds the family's flags to its parser
    train: Callable  # args -> the saved checkpoint's path
    evaluate: Callable | None  # (model, args) -> the line `genedu eval` prints
    models: tuple[type, ...]  # the classes `evaluate` measures
    dataset: str = "mnist"  # what `genedu eval` uses when the checkpoint records none
    description: str = ""  # the module's docstring, for `genedu train FAMILY --help`


def _recipe(module, help: str, **overrides) -> Recipe:  # noqa: A002 - argparse's word
    fields = {
        "arguments": module.arguments,
        "train": module.run,
        "evaluate": module.evaluate,
        "models": module.MODELS,
        "description": module.__doc__,
    } | overrides
    return Recipe(help=help, **fields)


RECIPES = {
    "mixture": _recipe(mixture, "a mixture of independent Bernoulli images, fitted by EM"),
    "vae": _recipe(vae, "a variational autoencoder (genedu.vae), trained with Adam"),
    "cvae": _recipe(
        vae,
        "a conditional VAE on a few labels (--semi: + pseudo-labels)",
        arguments=vae.cvae_arguments,
        train=vae.run_cvae,
    ),
    "classifier": _recipe(classifier, "the CNN classifier whose features FID uses"),
    "dcgan": _recipe(
        gan, "a DCGAN (genedu.gan), two players, two Adams", arguments=gan.ARGUMENTS["dcgan"]
    ),
    "cdcgan": _recipe(
        gan,
        "a class-conditional DCGAN (one-hot label maps into D)",
        arguments=gan.ARGUMENTS["cdcgan"],
    ),
    "stylegan": _recipe(
        gan,
        "a StyleGAN (genedu.stylegan): mapping network, styles, noise",
        arguments=gan.ARGUMENTS["stylegan"],
    ),
    "pixelcnn": _recipe(pixelcnn, "a gated PixelCNN (genedu.pixelcnn), exact likelihood"),
    "diffusion": _recipe(diffusion, "DDPM or flow matching (genedu.diffusion) on a small U-Net"),
    "latent-diffusion": _recipe(
        diffusion,
        "flow matching on a shipped VAE's codes (genedu.latent_diffusion)",
        arguments=diffusion.latent_arguments,
        train=diffusion.run_latent,
    ),
    "char": _recipe(
        char, "a character model (genedu.text): transformer, GRU, LSTM or n-gram", dataset="names"
    ),
}


def for_model(model) -> Recipe:
    """The recipe that measures `model`: the first whose classes it is an instance of."""
    for recipe in RECIPES.values():
        if isinstance(model, recipe.models):
            return recipe
    raise ValueError(f"no recipe measures a {type(model).__name__}")


__all__ = ["RECIPES", "Recipe", "common", "for_model"]
