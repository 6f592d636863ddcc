"""The PixelCNN chapter's goals: likelihood against training time, sampling speed, and
bits/dim on natural patches, on 2 CPU threads.

    python benchmarks/pixelcnn.py                   # everything (about 15 minutes)
    python benchmarks/pixelcnn.py --retrain         # also retrain pixelcnn-mnist (30 min)
    python benchmarks/pixelcnn.py --sample-n 16 --patch-minutes 1   # a quick look

Goals (issue 5):
* Likelihood: the gated PixelCNN on dynamically binarised MNIST reaches a test NLL of at
  most 92 nats within 30 training minutes (stretch: 85). The curve is the one the
  training run measured on itself (`genedu train pixelcnn ... --eval-minutes ...`, the
  marginal log p(x) on the first 1,000 test images, binarised with seed 0, the clock
  stopped while it measures); this script re-measures the final model.
* Sampling: on a batch of 64 images, cached sampling at least 10× faster than naive
  (stretch 30×), with identical samples from the same generator.
* Natural patches: bits/dim of a gated PixelCNN (logistic mixture) on the held-out
  photo's patches, next to independent per-pixel histograms.
Each goal's verdict, met or missed, is added to the results as a record of its own.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from common import record, setup, verdict, write

from genedu import data, hub, metrics, train
from genedu.baselines import HistogramConfig, IndependentHistogram
from genedu.pixelcnn import GatedPixelCNN, PixelCNNConfig

SEED = 0
NAME = "pixelcnn-mnist"
DIGITS = "mnist (dynamically binarised, first 1000 test images)"
TRAIN = (
    "genedu train pixelcnn --data mnist --conditional --hidden 32 --layers 10 --minutes 30 "
    "--eval-minutes 5 10 15 20 25 --out genedu/weights/pixelcnn-mnist"
)


def likelihood(args) -> list[dict]:
    if args.retrain:  # the shipped model's own command, into a scratch folder
        scratch = Path(tempfile.mkdtemp())
        cmd = TRAIN.split()[1:-1] + [str(scratch / NAME)]
        subprocess.run([sys.executable, "-m", "genedu.cli", *cmd], check=True)
        model, meta = hub.load(scratch / NAME), json.loads((scratch / f"{NAME}.json").read_text())
    else:
        model, meta = hub.load(NAME), json.loads((hub.WEIGHTS_DIR / f"{NAME}.json").read_text())
    found, rows = meta["metrics"], []
    label = f"{NAME} ({'retrained here' if args.retrain else 'shipped'}; gated, conditional)"
    for point in found["curve"]:
        row = record(label, DIGITS, "test_nll", point["test_nll_nats"], "nats",
                     60 * point["minutes"], SEED, steps=point["step"])  # fmt: skip
        row |= {"command": meta["command"], "measured_by": "the training run, at each mark"}
        rows.append(row)
    test = data.load("mnist", "test").images[:1000]
    x = data.binarize(test, generator=torch.Generator().manual_seed(SEED))
    start = time.perf_counter()
    nll = metrics.mean_nll(model.log_prob, x, batch_size=250)
    print(f"{label}: test NLL {nll:.3f} nats ({time.perf_counter() - start:.0f} s to measure)")
    seconds = found["train_seconds"]
    final = record(label, DIGITS, "test_nll", nll, "nats", seconds, SEED,
                   steps=found["train_steps"], trained_by=meta["command"])  # fmt: skip
    bpd = metrics.bits_per_dim(nll, 784)
    rows += [final, record(label, DIGITS, "test_bits_per_dim", bpd, "bits/dim", seconds, SEED)]
    within = seconds <= 30 * 60 + 1
    rows.append(verdict(final, "test_nll <= 92 within 30 min", within and nll <= 92))
    rows.append(verdict(final, "stretch: test_nll <= 85 within 30 min", within and nll <= 85))
    return rows


def sampling(args) -> list[dict]:
    model = hub.load(NAME)
    y = torch.arange(args.sample_n) % 10
    times, images = {}, {}
    for method in ("cached", "naive"):
        start = time.perf_counter()
        gen = torch.Generator().manual_seed(SEED)
        images[method] = model.sample(args.sample_n, generator=gen, method=method, y=y)
        times[method] = time.perf_counter() - start
        print(f"{method}: {args.sample_n} images in {times[method]:.2f} s", flush=True)
    same = torch.equal(images["cached"], images["naive"])
    ratio = times["naive"] / times["cached"]
    print(f"speed-up {ratio:.1f}×, identical samples: {same}")
    what = f"sampling {args.sample_n} images of 28×28"
    rows = [
        record(f"{NAME} {m}", what, "sampling_time", t, "seconds", 0.0, SEED, identical=same)
        for m, t in times.items()
    ]
    rows.append(record(f"{NAME} naive/cached", what, "speedup", ratio, "×", 0.0, SEED,
                       identical=same))  # fmt: skip
    rows.append(verdict(rows[-1], "cached >= 10× faster, identical samples", ratio >= 10 and same))
    rows.append(verdict(rows[-2], "stretch: cached >= 30× faster", ratio >= 30 and same))
    return rows


def patches(args) -> list[dict]:
    train_set, test_set = data.load("patches", "train"), data.load("patches", "test")
    x_train, x_test = data.to_unit(train_set.images), data.to_unit(test_set.images)
    dims = x_test[0].numel()
    where = f"patches ({len(x_test)} held-out 32×32 patches)"
    floor = IndependentHistogram(HistogramConfig(shape=tuple(x_train.shape[1:])))
    floor.fit_closed_form(x_train)
    floor_bpd = metrics.bits_per_dim(metrics.mean_nll(floor.log_prob, x_test), dims)
    rows = [record("independent histograms", where, "test_bits_per_dim", floor_bpd,
                   "bits/dim", 0.0, SEED)]  # fmt: skip
    torch.manual_seed(SEED)
    config = PixelCNNConfig(shape=(3, 32, 32), hidden=32, layers=8, likelihood="logistic")
    model = GatedPixelCNN(config)
    history = train.fit(
        model, train_set.images, steps=1_000_000, lr=2e-3, batch_size=32, seed=SEED,
        max_seconds=60 * args.patch_minutes, progress=False,
    )  # fmt: skip
    bpd = metrics.bits_per_dim(metrics.mean_nll(model.log_prob, x_test, batch_size=100), dims)
    seconds = history.seconds[-1]
    print(f"patches: histograms {floor_bpd:.3f}, gated PixelCNN {bpd:.3f} bits/dim")
    rows.append(record("gated PixelCNN (32 ch, 8 layers, logistic mixture)", where,
                       "test_bits_per_dim", bpd, "bits/dim", seconds, SEED,
                       steps=len(history.steps)))  # fmt: skip
    rows.append(verdict(rows[-1], "bits/dim below the histograms'", bpd < floor_bpd))
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--retrain", action="store_true", help="retrain pixelcnn-mnist (30 min)")
    p.add_argument("--sample-n", type=int, default=64, help="images per sampling batch")
    p.add_argument("--patch-minutes", type=float, default=5.0)
    args = p.parse_args()
    setup(threads=2, seed=SEED)
    rows = likelihood(args) + sampling(args) + patches(args)
    write("pixelcnn", rows)


if __name__ == "__main__":
    main()
