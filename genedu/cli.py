"""The `genedu` command: data, train, sample, eval.

    genedu data list                 every dataset, where it comes from, whether it is here
    genedu data fetch mnist          download (or find) and verify
    genedu data verify               check the checksum of every present file
    genedu train mixture --data mnist --out runs/mixture-mnist
    genedu sample mixture-mnist --n 64 --out samples.png
    genedu eval mixture-mnist --data mnist

Each model family adds its recipe to TRAINERS as it lands.
"""

from __future__ import annotations

import argparse
import shlex
import sys

import torch

from . import data, hub, metrics, train


def _cmd_data(args) -> int:
    if args.action == "list":
        rows = data.list_datasets(args.root)
        widths = [max(len(r[k]) for r in rows) for k in ("name", "kind", "shape")]
        for r in rows:
            print(
                f"{r['name']:<{widths[0]}}  {r['kind']:<{widths[1]}}  {r['shape']:<{widths[2]}}  "
                f"{r['status']}\n{'':<{widths[0]}}  {r['description']}; split: {r['split']}"
            )
        return 0
    names = args.names or [n for n, e in data.REGISTRY.items() if not e.embedded]
    failed = 0
    for name in names:
        entry = data.get_entry(name)
        if entry.embedded:
            print(f"{name}: bundled with an installed package, nothing to fetch")
            continue
        try:
            if args.action == "fetch":
                paths = data.fetch(name, root=args.root)
                print(f"{name}: ok ({next(iter(paths.values())).parent})")
            else:  # verify: only what is present
                found = data.locate(entry, args.root)
                if found is None:
                    print(f"{name}: not present")
                    continue
                for spec in entry.files:
                    data.verify(found[spec.filename], spec, name)
                print(f"{name}: ok ({len(found)} files verified)")
        except data.DataError as err:
            failed += 1
            print(f"{name}: {err}", file=sys.stderr)
    return 1 if failed else 0


def _binary_images(name: str, split: str, fallback: str | None) -> torch.Tensor:
    ds = data.load(name, split, fallback=fallback)
    return data.binarize(ds.images, threshold=0.5)


def _train_mixture(args):
    from .baselines import BernoulliMixture, MixtureConfig

    train.seed_everything(args.seed)
    x = _binary_images(args.data, "train", args.fallback)
    model = BernoulliMixture(MixtureConfig(components=args.components, shape=tuple(x.shape[1:])))
    curve = model.fit_em(
        x, iterations=args.steps, generator=torch.Generator().manual_seed(args.seed)
    )
    test = _binary_images(args.data, "test", args.fallback)
    nll = metrics.mean_nll(model.log_prob, test)
    found = {
        "test_nll_nats": round(nll, 3),
        "test_bits_per_dim": round(metrics.bits_per_dim(nll, test[0].numel()), 4),
        "train_ll_nats": round(curve[-1], 3),
        "data": f"{args.data} (binarised at 0.5)",
    }
    print(f"test NLL {found['test_nll_nats']} nats, {found['test_bits_per_dim']} bits/dim")
    return hub.save(model, args.out, metrics=found, command=_command_line())


def _command_line() -> str:
    """How this run was invoked, as `genedu ...`, with no path of this machine in it."""
    return " ".join(["genedu", *map(shlex.quote, sys.argv[1:])])


TRAINERS = {
    "mixture": (_train_mixture, "a mixture of independent Bernoulli images, fitted by EM"),
}


def _cmd_train(args) -> int:
    fn, _ = TRAINERS[args.model]
    print(f"saved {fn(args)}.safetensors")
    return 0


def _cmd_sample(args) -> int:
    from . import viz

    model = hub.load(args.name)
    images = model.sample(args.n, generator=torch.Generator().manual_seed(args.seed))
    fig = viz.image_grid(images.clamp(0, 1), nrow=args.nrow)
    fig.savefig(args.out, dpi=150, bbox_inches="tight")
    print(f"wrote {args.out}")
    return 0


def _cmd_eval(args) -> int:
    model = hub.load(args.name)
    test = _binary_images(args.data, "test", args.fallback)
    nll = metrics.mean_nll(model.log_prob, test)
    print(
        f"{args.name} on {args.data} test: NLL {nll:.3f} nats, "
        f"{metrics.bits_per_dim(nll, test[0].numel()):.4f} bits/dim"
    )
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="genedu", description="The genedu course toolkit.")
    sub = p.add_subparsers(dest="command", required=True)

    d = sub.add_parser("data", help="list, fetch and verify datasets")
    d.add_argument("action", choices=["list", "fetch", "verify"])
    d.add_argument("names", nargs="*", help="datasets (default: every downloadable one)")
    d.add_argument("--root", help="a data folder to search (and fetch into) first")
    d.set_defaults(func=_cmd_data)

    t = sub.add_parser("train", help="train a model and save a checkpoint")
    t.add_argument("model", choices=sorted(TRAINERS))
    t.add_argument("--data", default="mnist")
    t.add_argument("--fallback", default=None, help="embedded set to use if --data is absent")
    t.add_argument("--steps", type=int, default=30, help="training steps (EM iterations)")
    t.add_argument("--components", type=int, default=50)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--out", required=True, help="checkpoint path, without extension")
    t.set_defaults(func=_cmd_train)

    s = sub.add_parser("sample", help="draw samples from a checkpoint into a PNG grid")
    s.add_argument("name", help="a shipped name (see genedu.hub.list()) or a checkpoint path")
    s.add_argument("--n", type=int, default=64)
    s.add_argument("--nrow", type=int, default=8)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--out", default="samples.png")
    s.set_defaults(func=_cmd_sample)

    e = sub.add_parser("eval", help="test log-likelihood of a checkpoint")
    e.add_argument("name")
    e.add_argument("--data", default="mnist")
    e.add_argument("--fallback", default=None)
    e.set_defaults(func=_cmd_eval)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return args.func(args)
    except (data.DataError, hub.CheckpointError, ValueError) as err:
        print(f"genedu: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
