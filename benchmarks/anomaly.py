"""The anomaly-detection chapter's goals (issue 8), on 2 CPU threads at fixed step budgets.

    python benchmarks/anomaly.py            # everything (about 25 minutes on 2 threads)
    python benchmarks/anomaly.py --digits 1 8 --vae-steps 100 --pixelcnn-steps 20 \\
        --ood-steps 50 --background-steps 0                  # a quick look

* One-class MNIST: for each digit, train on that digit's training images only and score
  all 10,000 test images; the other nine digits are the anomalies. Scores: the conv
  VAE's -ELBO, a small gated PixelCNN's -log p (both on binarised digits) and PCA
  reconstruction error. AUROC per digit and the mean. Goal: VAE mean AUROC >= 0.90.
* Fashion-MNIST -> MNIST: a gated PixelCNN (logistic mixture over 256 grey levels)
  trained on Fashion-MNIST scores its test set (in) and MNIST's test set (out).
  Raw likelihood: AUROC expected below 0.5 (Nalisnick et al. 2019). Input-complexity
  corrected (Serrà et al. 2020): goal AUROC >= 0.90. The likelihood ratio against a
  background model trained on mutated images (Ren et al. 2019) is measured as well.
Budgets are steps, not seconds, so the AUROCs do not depend on the machine's load;
wall_seconds is each model's training time.
"""

from __future__ import annotations

import argparse
import time

from common import record, setup, verdict, write

from genedu import data
from genedu.apps import anomaly

SEED = 0
MODELS = {
    "vae": "conv VAE, 4-d code (-ELBO, 4 draws)",
    "pixelcnn": "gated PixelCNN 16ch×4 (-log p)",
    "pca": "PCA reconstruction error",
}


def one_class(args) -> list[dict]:
    train_set = data.load("mnist", "train")
    test_set = data.load("mnist", "test")
    steps = {"vae": args.vae_steps, "pixelcnn": args.pixelcnn_steps, "pca": 0}
    rows = []
    for method in anomaly.METHODS:
        per_digit = []
        for digit in args.digits:
            start = time.perf_counter()
            result = anomaly.one_class(
                digit,
                method=method,
                steps=steps[method],
                seed=SEED,
                components=args.components,
                train_set=train_set,
                test_set=test_set,
            )
            print(
                f"{method} digit {digit}: AUROC {result.auroc:.4f} (trained "
                f"{result.train_seconds:.0f} s, {time.perf_counter() - start:.0f} s in all)",
                flush=True,
            )
            per_digit.append(
                record(
                    MODELS[method],
                    f"mnist one-class: digit {digit} vs the rest",
                    "auroc",
                    result.auroc,
                    "auroc",
                    result.train_seconds,
                    SEED,
                    digit=digit,
                    steps=steps[method],
                    train_images=result.train_images,
                    test_images=len(result.scores),
                )
            )
        mean = sum(r["value"] for r in per_digit) / len(per_digit)
        seconds = sum(r["wall_seconds"] for r in per_digit)
        digits = " ".join(map(str, args.digits))
        per_digit.append(
            record(
                MODELS[method],
                f"mnist one-class: mean over digits {digits}",
                "mean_auroc",
                mean,
                "auroc",
                seconds,
                SEED,
                steps=steps[method],
            )
        )
        rows += per_digit
        if method == "vae":
            rows.append(verdict(per_digit[-1], "VAE one-class mean AUROC >= 0.90", mean >= 0.90))
    return rows


def ood(args) -> list[dict]:
    result = anomaly.ood_fashion_mnist(
        steps=args.ood_steps,
        background_steps=args.background_steps,
        mutation_rate=args.mutation_rate,
        seed=SEED,
    )
    print(f"Fashion-MNIST -> MNIST AUROCs: {result.aurocs} (trained {result.train_seconds})")
    where = "fashion-mnist test (in) vs mnist test (out)"
    name = "gated PixelCNN 16ch×4, logistic mixture"
    model_s = result.train_seconds["model"]
    rows = [
        record(
            name,
            f"{part} test",
            "test_bits_per_dim",
            result.neg_log_p[key].mean().item() / (784 * 0.6931471805599453),
            "bits/dim",
            model_s,
            SEED,
            steps=args.ood_steps,
        )
        for key, part in (("in", "fashion-mnist"), ("out", "mnist"))
    ]
    labels = {
        "likelihood": (f"{name}: -log p(x)", model_s),
        "complexity": ("PNG input complexity L(x) alone", 0.0),
        "corrected": (f"{name}: -log2 p(x) - L(x) (Serrà)", model_s),
        "likelihood_ratio": (
            f"{name}: likelihood ratio vs background (Ren, mutation rate {args.mutation_rate})",
            model_s + result.train_seconds.get("background", 0.0),
        ),
    }
    by_score = {}
    for key, value in result.aurocs.items():
        label, seconds = labels[key]
        by_score[key] = record(
            label,
            where,
            "auroc",
            value,
            "auroc",
            seconds,
            SEED,
            score=key,
            steps=args.ood_steps,
            background_steps=args.background_steps,
        )
        rows.append(by_score[key])
    raw, fixed = by_score["likelihood"], by_score["corrected"]
    rows.append(verdict(raw, "raw likelihood AUROC < 0.5 (the failure)", raw["value"] < 0.5))
    rows.append(verdict(fixed, "complexity-corrected AUROC >= 0.90", fixed["value"] >= 0.90))
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--digits", type=int, nargs="+", default=list(range(10)))
    p.add_argument("--vae-steps", type=int, default=500)
    p.add_argument("--pixelcnn-steps", type=int, default=200)
    p.add_argument("--components", type=int, default=10, help="PCA directions")
    p.add_argument("--ood-steps", type=int, default=1000)
    p.add_argument("--background-steps", type=int, default=600)
    p.add_argument("--mutation-rate", type=float, default=0.2)
    args = p.parse_args()
    setup(threads=2, seed=SEED)
    start = time.perf_counter()
    rows = one_class(args) + ood(args)
    print(f"benchmarks/anomaly.py: {time.perf_counter() - start:.0f} s in all")
    write("anomaly", rows)


if __name__ == "__main__":
    main()
