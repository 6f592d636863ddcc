"""Chapter 1's baselines on binarised MNIST: held-out NLL against training time.

    python benchmarks/baselines.py            # needs MNIST (GENEDU_DATA_DIR or a download)

Independent Bernoulli pixels (closed form) and mixtures of Bernoullis fitted by EM,
on the 60,000 training digits binarised at 0.5, scored on the 10,000 test digits.
"""

from __future__ import annotations

import time

import torch
from common import record, setup, write

from genedu import data, metrics
from genedu.baselines import BernoulliConfig, BernoulliMixture, IndependentBernoulli, MixtureConfig

SEED = 0


def main() -> None:
    setup(threads=2, seed=SEED)
    x_train = data.binarize(data.load("mnist", "train").images, threshold=0.5)
    x_test = data.binarize(data.load("mnist", "test").images, threshold=0.5)
    dataset = "mnist (binarised at 0.5)"
    dims = x_test[0].numel()
    rows = []

    def score(name: str, model, seconds: float, **extra) -> None:
        nll = metrics.mean_nll(model.log_prob, x_test)
        rows.append(record(name, dataset, "test_nll", nll, "nats", seconds, SEED, **extra))
        rows.append(
            record(
                name,
                dataset,
                "test_bpd",
                metrics.bits_per_dim(nll, dims),
                "bits/dim",
                seconds,
                SEED,
                **extra,
            )
        )

    t0 = time.perf_counter()
    independent = IndependentBernoulli(BernoulliConfig()).fit_closed_form(x_train)
    score("independent-bernoulli", independent, time.perf_counter() - t0)

    for k in (10, 50, 100, 200):
        torch.manual_seed(SEED)
        model = BernoulliMixture(MixtureConfig(components=k))
        t0 = time.perf_counter()
        model.fit_em(x_train, iterations=30, generator=torch.Generator().manual_seed(SEED))
        score(f"bernoulli-mixture-k{k} (EM x30)", model, time.perf_counter() - t0, components=k)
    write("baselines", rows)


if __name__ == "__main__":
    main()
