"""The `genedu` command: data, train, sample, eval.

    genedu data list                 every dataset, where it comes from, whether it is here
    genedu data fetch mnist          download (or find) and verify
    genedu data verify               check the checksum of every present file
    genedu train mixture --data mnist --out runs/mixture-mnist
    genedu train vae --data mnist --steps 20000 --out runs/vae-mnist
    genedu sample mixture-mnist --n 64 --out samples.png
    genedu eval mixture-mnist --data mnist

Each model family adds its recipe to TRAINERS as it lands.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

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
        x, iterations=args.steps or 30, generator=torch.Generator().manual_seed(args.seed)
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
    return hub.save(model, args.out, metrics=found, command=_command_line(args))


def _train_vae(args):
    """A VAE on `--data`: Bernoulli on dynamically binarised digits, Gaussian on grey levels."""
    from .vae import VAE, VAEConfig, mean_neg_elbo

    train.seed_everything(args.seed)
    images = data.load(args.data, "train", fallback=args.fallback).images
    likelihood = args.likelihood or ("bernoulli" if "mnist" in args.data else "gaussian")
    config = VAEConfig(
        shape=tuple(images.shape[1:]),
        latent_dim=args.latent,
        hidden=args.hidden,
        likelihood=likelihood,
        architecture=args.architecture,
        beta=args.beta,
        min_sigma=args.min_sigma,
    )
    model = VAE(config)
    # Bernoulli: a fresh binarisation of every batch (dynamic binarisation);
    # Gaussian: grey levels in [0, 1].
    transform = data.binarize if likelihood == "bernoulli" else None
    history = train.fit(
        model,
        images,
        steps=args.steps or 10_000,
        lr=args.lr,
        batch_size=args.batch_size,
        transform=transform,
        seed=args.seed,
        checkpoint=f"{args.out}-training",
        checkpoint_every=1000,
        resume=True,
    )
    test = data.load(args.data, "test", fallback=args.fallback).images
    g = torch.Generator().manual_seed(args.seed)
    x = data.binarize(test, generator=g) if likelihood == "bernoulli" else data.to_unit(test)
    model.eval()
    elbo = -mean_neg_elbo(model, x, generator=g)
    iwae = model.log_prob(x[:1000], k=100, generator=g).mean().item()
    found = {
        "test_neg_elbo_nats": round(-elbo, 3),
        "test_nll_iwae100_first1000_nats": round(-iwae, 3),
        "train_seconds": round(history.seconds[-1], 1) if history.seconds else 0.0,
        "data": f"{args.data} ({'dynamically binarised' if transform else 'grey levels'})",
    }
    print(f"test -ELBO {-elbo:.2f} nats; NLL (IWAE k=100, first 1,000) {-iwae:.2f} nats")
    saved = hub.save(model, args.out, metrics=found, command=_command_line(args), half=True)
    for leftover in hub._files(Path(f"{args.out}-training")):  # the resumable state, now spent
        leftover.unlink(missing_ok=True)
    return saved


def _command_line(args) -> str:
    """How this run was invoked, as `genedu ...`, with no path of this machine in it."""
    return " ".join(["genedu", *map(shlex.quote, args.argv)])


TRAINERS = {
    "mixture": (_train_mixture, "a mixture of independent Bernoulli images, fitted by EM"),
    "vae": (_train_vae, "a variational autoencoder (genedu.vae), trained with Adam"),
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
    likelihood = getattr(getattr(model, "config", None), "likelihood", "bernoulli")
    if hasattr(model, "elbo"):  # a VAE: measured the way `genedu train vae` measured it
        images = data.load(args.data, "test", fallback=args.fallback).images
        g = torch.Generator().manual_seed(args.seed)
        test = (
            data.binarize(images, generator=g)
            if likelihood == "bernoulli"
            else data.to_unit(images)
        )
        from .vae import mean_neg_elbo

        elbo = -mean_neg_elbo(model, test, generator=g)
        nll = -model.log_prob(test[: args.n], k=args.k, generator=g).mean().item()
        print(f"{args.name} on {args.data} test: -ELBO {-elbo:.3f} nats (all {len(test)}); "
              f"NLL (IWAE k={args.k}, first {min(args.n, len(test))}) {nll:.3f} nats")  # fmt: skip
        return 0
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
    t.add_argument(
        "--steps", type=int, default=None, help="training steps (mixture: EM iterations, 30)"
    )
    t.add_argument("--components", type=int, default=50, help="mixture components")
    t.add_argument("--latent", type=int, default=32, help="VAE latent dimensions")
    t.add_argument("--hidden", type=int, default=32, help="VAE width (conv channels, MLP units)")
    t.add_argument("--architecture", choices=["conv", "mlp"], default="conv")
    t.add_argument("--likelihood", choices=["bernoulli", "gaussian"], default=None)
    t.add_argument("--beta", type=float, default=1.0, help="VAE weight on the KL")
    t.add_argument(
        "--min-sigma", type=float, default=1e-3, help="Gaussian VAE: floor on the decoder's scale"
    )
    t.add_argument("--lr", type=float, default=1e-3)
    t.add_argument("--batch-size", type=int, default=128)
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
    e.add_argument("--k", type=int, default=100, help="VAE: importance samples per image")
    e.add_argument("--n", type=int, default=1000, help="VAE: test images for the IWAE bound")
    e.add_argument("--seed", type=int, default=0, help="VAE: seed of binarisation and samples")
    e.set_defaults(func=_cmd_eval)
    return p


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parser().parse_args(argv)
    args.argv = argv
    try:
        return args.func(args)
    except (data.DataError, hub.CheckpointError, ValueError) as err:
        print(f"genedu: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
