"""The model contract, as code: what every family in genedu offers, by the same names.

    model.loss(batch)["loss"]              a scalar that a step of training lowers
    model.sample(n, *, y=None, generator=None)
                                           n draws in the data's layout, repeatable
                                           for a seeded generator
    model.log_prob(x, *, y=None)           nats per example, (N,): exact, or a bound
                                           the family names (the VAE's, with k=)
    model.config                           a frozen dataclass that rebuilds the model

The data's layout is the family's: images (N, C, H, W) in [0, 1] for the image models,
rows of character ids (N, T) for the text models. A class label is always ``y``: an
int for one class, or n labels; unconditional models take none. Bad inputs raise
TypeError or ValueError from `genedu.inputs`, saying what was expected.
`tests/test_contract.py` runs every family through these checks.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import torch


@runtime_checkable
class Generative(Protocol):
    """Every family: trained on `loss`, drawn from with `sample`."""

    config: Any

    def loss(self, batch) -> dict[str, torch.Tensor]: ...

    def sample(
        self, n: int, *, y=None, generator: torch.Generator | None = None
    ) -> torch.Tensor: ...


@runtime_checkable
class Likelihood(Generative, Protocol):
    """A family that also scores data: log p(x), or a named bound on it, in nats."""

    def log_prob(self, x: torch.Tensor, *, y=None) -> torch.Tensor: ...
