"""`genedu train mixture`: a mixture of independent Bernoulli images, fitted by EM
(genedu.baselines), on digits binarised at 0.5.

    genedu train mixture --data mnist --components 50 --out runs/mixture-mnist

EM runs a fixed number of iterations (--steps), each a pass over the whole set, so this
recipe has no time budget: `--minutes` is refused.
"""

from __future__ import annotations

import torch

from .. import data, metrics, train
from ..baselines import BernoulliMixture, IndependentBernoulli, MixtureConfig
from . import common

MODELS = (BernoulliMixture, IndependentBernoulli)


def arguments(p) -> None:
    common.data_arguments(p, "mnist")
    common.option(p, "--components", MixtureConfig, "components", "mixture components")
    p.add_argument("--steps", type=int, default=30, help="EM iterations")
    p.add_argument("--seed", type=int, default=0, help="of everything random")
    p.add_argument("--out", required=True, help="checkpoint path, without extension")


def binary_images(args, split: str) -> torch.Tensor:
    ds = data.load(args.data, split, fallback=args.fallback)
    return data.binarize(ds.images, threshold=0.5)


def measure(model, args) -> tuple[float, int]:
    """(the test NLL in nats, the dimensions per image)."""
    test = binary_images(args, "test")
    return metrics.mean_nll(model.log_prob, test), test[0].numel()


def run(args):
    train.seed_everything(args.seed)
    x = binary_images(args, "train")
    model = BernoulliMixture(MixtureConfig(components=args.components, shape=tuple(x.shape[1:])))
    g = torch.Generator().manual_seed(args.seed)
    curve = model.fit_em(x, iterations=args.steps, generator=g)
    nll, dims = measure(model, args)
    found = {
        "test_nll_nats": round(nll, 3),
        "test_bits_per_dim": round(metrics.bits_per_dim(nll, dims), 4),
        "train_ll_nats": round(curve[-1], 3),
        "data": f"{args.data} (binarised at 0.5)",
    }
    print(f"test NLL {found['test_nll_nats']} nats, {found['test_bits_per_dim']} bits/dim")
    return common.finish(model, args, found)


def evaluate(model, args) -> str:
    nll, dims = measure(model, args)
    return f"NLL {nll:.3f} nats, {metrics.bits_per_dim(nll, dims):.4f} bits/dim"
