r"""Numbers that say whether a generative model is good.

Likelihoods are in nats per example unless a name says otherwise. Bits per dimension
divide by the number of dimensions and by $\ln 2$, so that images of any size compare:
$\mathrm{bpd} = \mathrm{NLL}_{\text{nats}} / (D \ln 2)$.
"""

from __future__ import annotations

import math

import torch


def bits_per_dim(nll_nats: torch.Tensor | float, dims: int) -> torch.Tensor | float:
    """Negative log-likelihood in nats per example -> bits per dimension."""
    if dims < 1:
        raise ValueError(f"dims must be a positive number of dimensions, got {dims}")
    return nll_nats / (dims * math.log(2))


@torch.no_grad()
def mean_nll(log_prob, x: torch.Tensor, batch_size: int = 1000) -> float:
    """Mean negative log-likelihood in nats per example of `log_prob` over `x`, batched."""
    total = sum(-log_prob(x[i : i + batch_size]).sum().item() for i in range(0, len(x), batch_size))
    return total / len(x)
