"""`genedu train pixelcnn`: a gated (or plain) PixelCNN with an exact likelihood
(genedu.pixelcnn), measured by the test NLL of its first --n-test images.

    genedu train pixelcnn --data mnist --conditional --layers 10 --minutes 30 --out runs/p
    genedu train pixelcnn --data fashion-mnist --mixtures 3 --steps 1000 --out runs/f

Bernoulli on dynamically binarised digits; otherwise a mixture of discretised
logistics over the 256 grey levels.
"""

from __future__ import annotations

import torch

from .. import data, metrics, train
from ..pixelcnn import GatedPixelCNN, PixelCNN, PixelCNNConfig
from . import common

MODELS = (PixelCNN, GatedPixelCNN)


def arguments(p) -> None:
    common.data_arguments(p, "mnist")
    common.option(p, "--hidden", PixelCNNConfig, "hidden", "width: every layer's feature maps")
    common.option(p, "--layers", PixelCNNConfig, "layers", "gated layers, or mask-B blocks")
    p.add_argument(
        "--architecture", choices=["gated", "plain"], default="gated", help="the network"
    )
    p.add_argument("--likelihood", choices=["bernoulli", "categorical", "logistic"],
                   help="default: bernoulli on the MNIST digits, else logistic")  # fmt: skip
    common.option(p, "--mixtures", PixelCNNConfig, "mixtures", "logistic: mixture components")
    p.add_argument("--conditional", action="store_true", help="condition on the class")
    p.add_argument("--n-test", type=int, default=1000, help="test images behind the NLL")
    common.run_arguments(p, steps=10_000, lr=2e-3, batch=64)


def test_set(args, likelihood: str, n: int):
    """The first n test images as the model reads them (binarised with --seed), and
    their labels."""
    test = data.load(args.data, "test", fallback=args.fallback)
    x, _ = common.test_images(test.images[:n], likelihood, args.seed)
    return x, None if test.labels is None else test.labels[:n]


def nll(model, x: torch.Tensor, y: torch.Tensor | None = None) -> float:
    """The mean test NLL in nats: the marginal log p(x), or given the class with y."""
    if y is None:
        return metrics.mean_nll(model.log_prob, x, batch_size=250)
    total = sum(
        model.log_prob(x[i : i + 250], y=y[i : i + 250]).sum().item() for i in range(0, len(x), 250)
    )
    return -total / len(x)


def run(args):
    train.seed_everything(args.seed)
    ds = data.load(args.data, "train", fallback=args.fallback)
    likelihood = args.likelihood or (
        "bernoulli" if common.binarised_digits(ds.name) else "logistic"
    )
    classes = 0
    if args.conditional and ds.labels is not None:
        classes = len(ds.classes) if ds.classes else int(ds.labels.max()) + 1
    if args.conditional and not classes:
        raise ValueError(f"--conditional needs class labels, and {ds.name} has none")
    config = PixelCNNConfig(
        shape=tuple(ds.images.shape[1:]),
        hidden=args.hidden,
        layers=args.layers,
        likelihood=likelihood,
        num_classes=classes,
        mixtures=args.mixtures,
    )
    binary = likelihood == "bernoulli"
    model = (PixelCNN if args.architecture == "plain" else GatedPixelCNN)(config)
    x_test, y_test = test_set(args, likelihood, args.n_test)
    if classes and y_test is None:
        raise ValueError(f"--conditional: the test split of {ds.name} has no labels")

    def measure(model) -> dict[str, float]:  # the marginal log p(x) when conditional
        return {"test_nll_nats": round(nll(model, x_test.to(next(model.parameters()).device)), 3)}

    history = train.fit(
        model,
        (ds.images, ds.labels) if classes else ds.images,
        lr=args.lr,
        batch_size=args.batch_size,
        transform=data.binarize if binary else None,
        device=common.device(args),
        eval_fn=measure if args.eval_minutes else None,
        **common.budget(args, checkpoint_every=500),
    )
    common.stop_if_interrupted(history)
    model = model.cpu().eval()
    with torch.no_grad():  # fit measured the end already when it kept a curve
        found = common.numbers(history.evals[-1]) if history.evals else measure(model)
        if classes:
            found["test_nll_given_class_nats"] = round(nll(model, x_test, y_test), 3)
    found |= {
        "test_bits_per_dim": round(
            metrics.bits_per_dim(found["test_nll_nats"], x_test[0].numel()), 4
        ),
        "test_images": len(x_test),
        "train_steps": common.trained(history)["steps"],
        "train_seconds": common.trained(history)["train_seconds"],
        "curve": common.curve(history),
        "data": f"{ds.name} ({'dynamically binarised' if binary else '256 levels'})",
    }
    print(
        f"test NLL {found['test_nll_nats']} nats, {found['test_bits_per_dim']} bits/dim "
        f"(first {len(x_test)} test images) after {found['train_seconds']} s"
    )
    return common.finish(model, args, found)


def evaluate(model, args) -> str:
    """The test NLL of the first --n images, binarised with --seed as training did."""
    x, _ = test_set(args, model.config.likelihood, args.n)
    value = nll(model, x)
    return (
        f"NLL {value:.3f} nats, {metrics.bits_per_dim(value, x[0].numel()):.4f} bits/dim "
        f"(first {len(x)} images)"
    )
