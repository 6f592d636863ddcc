"""`genedu train classifier`: the small CNN classifier whose features FID, precision and
recall, and CAS use (genedu.metrics).

    genedu train classifier --data mnist --steps 4000 --out runs/classifier-mnist

It trains a fixed number of steps on a cosine schedule, so `--minutes` is refused.
"""

from __future__ import annotations

import torch

from .. import data, metrics
from . import common

MODELS = (metrics.Classifier,)


def arguments(p) -> None:
    common.data_arguments(p, "mnist")
    common.option(p, "--hidden", metrics.ClassifierConfig, "hidden",
                  "the first conv block's channels (the second has twice as many)")  # fmt: skip
    common.run_arguments(p, steps=3_000, lr=2e-3, batch=128, minutes=False)


def run(args):
    images = data.load(args.data, "train", fallback=args.fallback)
    if images.labels is None:
        raise ValueError(f"{args.data} has no labels to train a classifier on")
    dev = common.device(args)
    config = metrics.ClassifierConfig(
        shape=images.shape, num_classes=int(images.labels.max()) + 1, hidden=args.hidden
    )
    model, history = metrics.train_classifier(
        images.images,
        images.labels,
        steps=args.steps or args.default_steps,
        config=config,
        lr=args.lr,
        batch_size=args.batch_size,
        seed=args.seed,
        device=dev,
    )
    common.stop_if_interrupted(history)
    model = model.cpu()
    test = data.load(args.data, "test", fallback=args.fallback)
    acc = metrics.accuracy(model, test.images, test.labels)
    found = {
        "test_accuracy": round(acc, 4),
        "test_images": len(test),
        "train_seconds": common.trained(history)["train_seconds"],
        "device": str(dev),
        "threads": torch.get_num_threads(),
        "data": args.data,
    }
    print(f"test accuracy {acc:.4f} on {len(test)} images")
    return common.finish(model, args, found, half=True)


def evaluate(model, args) -> str:
    test = data.load(args.data, "test", fallback=args.fallback)
    acc = metrics.accuracy(model, test.images, test.labels)
    return f"accuracy {acc:.4f} ({len(test)} images)"
