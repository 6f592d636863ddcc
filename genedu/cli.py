"""The `genedu` command: data, train, sample, eval, and the application commands.

    genedu data list                 every dataset, where it comes from, whether it is here
    genedu data fetch mnist          download (or find) and verify
    genedu train vae --data mnist --steps 20000 --out runs/vae-mnist
    genedu train vae --help          one family's flags, with its defaults
    genedu sample vae-mnist --n 64 --out samples.png
    genedu eval vae-mnist            measured on the data it was trained on, as training did
    genedu eval augmentation --labels 100 --seed 0    every arm of the augmentation experiment
    genedu eval anomaly --method vae --digit 3       one-class AUROC; --method ood
    genedu style --content chelsea --style flower --out cat.png    style transfer

What each family trains, and how it is measured, is its recipe in genedu.recipes; a new
family adds one there.
"""

from __future__ import annotations

import argparse
import os
import sys

import torch

from . import data, hub, recipes, text
from .apps import commands
from .distributed import is_main
from .vae import VAE


def _cmd_data(args) -> int:
    if args.action == "list":
        rows = data.list_datasets(args.root)
        widths = [max(len(r[k]) for r in rows) for k in ("name", "kind", "shape")]
        for r in rows:
            print(
                f"{r['name']:<{widths[0]}}  {r['kind']:<{widths[1]}}  {r['shape']:<{widths[2]}}  "
                f"{r['status']}\n{'':<{widths[0]}}  {r['description']}; split: {r['split']}"
                f"\n{'':<{widths[0]}}  terms: {r['terms']}"
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


def _cmd_train(args) -> int:
    print(f"saved {recipes.RECIPES[args.model].train(args)}.safetensors")
    return 0


def _cmd_sample(args) -> int:
    from . import viz

    model = hub.load(args.name)
    g = torch.Generator().manual_seed(args.seed)
    if isinstance(model, text.CharModel):  # text to the terminal
        boundary = model.config.boundary
        texts = text.generate(
            model, args.prompt, args.chars or (40 if boundary else 500),
            temperature=args.temperature, top_k=args.top_k, top_p=args.top_p,
            num_samples=args.n if args.n is not None else (10 if boundary else 1), generator=g,
        )  # fmt: skip
        print(("\n" if boundary else "\n\n---\n\n").join(texts))
        return 0
    means = {"mean": True} if isinstance(model, VAE) else {}  # a VAE's usual picture
    images = model.sample(64 if args.n is None else args.n, generator=g, **means)
    fig = viz.image_grid(images.clamp(0, 1), nrow=args.nrow)
    fig.savefig(args.out, dpi=150, bbox_inches="tight")
    print(f"wrote {args.out}")
    return 0


def _cmd_eval(args) -> int:
    if args.name == "augmentation":
        return commands.eval_augmentation(args)
    if args.name == "anomaly":
        return commands.eval_anomaly(args)
    model = hub.load(args.name)
    recipe = recipes.for_model(model)
    args.recorded = hub.info(args.name).get("metrics") or {}  # what training measured
    # the data it was trained on, as its checkpoint records; else the recipe's default
    args.data = args.data or recipes.common.recorded_dataset(args.name) or recipe.dataset
    print(f"{args.name} on {args.data} test: {recipe.evaluate(model, args)}")
    return 0


class _Help(argparse.RawDescriptionHelpFormatter):
    """A family's docstring as written, and every flag's default after its help."""

    def _get_help_string(self, action):
        text = action.help or ""
        if action.default not in (None, argparse.SUPPRESS, [], False, "") and "default" not in text:
            text += " (default: %(default)s)"
        return text


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="genedu", description="The genedu course toolkit.")
    sub = p.add_subparsers(dest="command", required=True)

    d = sub.add_parser("data", help="list, fetch and verify datasets")
    d.add_argument("action", choices=["list", "fetch", "verify"])
    d.add_argument("names", nargs="*", help="datasets (default: every downloadable one)")
    d.add_argument("--root", help="a data folder to search (and fetch into) first")
    d.set_defaults(func=_cmd_data)

    t = sub.add_parser("train", help="train a model and save a checkpoint",
                       description="Train a model and save a checkpoint with its metrics and "
                       "the command that made it. `genedu train FAMILY --help` lists a "
                       "family's flags and their defaults.")  # fmt: skip
    families = t.add_subparsers(dest="model", required=True, metavar="FAMILY")
    for name, recipe in recipes.RECIPES.items():
        f = families.add_parser(name, help=recipe.help, description=recipe.description,
                                formatter_class=_Help)  # fmt: skip
        recipe.arguments(f)
        f.set_defaults(func=_cmd_train, model=name)

    s = sub.add_parser(
        "sample", help="draw samples from a checkpoint into a PNG grid (text: to the terminal)"
    )
    s.add_argument("name", help="a shipped name (see genedu.hub.list()) or a checkpoint path")
    s.add_argument("--n", type=int, default=None, help="samples: 64 images, 10 names, 1 text")
    s.add_argument("--prompt", default="", help="text: what to continue (names: the start)")
    s.add_argument("--chars", type=int, default=None, help="text: at most this many (40, 500)")
    s.add_argument("--temperature", type=float, default=1.0, help="text: 0 is greedy")
    s.add_argument("--top-k", type=int, default=None, help="text: keep the k likeliest")
    s.add_argument("--top-p", type=float, default=None, help="text: nucleus sampling")
    s.add_argument("--nrow", type=int, default=8)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--out", default="samples.png")
    s.set_defaults(func=_cmd_sample)

    e = sub.add_parser(
        "eval",
        help="test log-likelihood of a checkpoint (a GAN: FID, precision, recall), or "
        "an application experiment: augmentation, anomaly",
    )
    e.add_argument("name", help="a checkpoint, or augmentation, or anomaly")
    e.add_argument(
        "--data", default=None, help="default: the dataset the checkpoint records it was trained on"
    )
    e.add_argument("--fallback", default=None)
    e.add_argument("--k", type=int, default=100, help="VAE: importance samples per image")
    e.add_argument(
        "--n",
        type=int,
        default=1000,
        help="VAE: test images for IWAE; PixelCNN: test images; GAN: samples for FID",
    )
    e.add_argument("--seed", type=int, default=0, help="VAE: seed of binarisation and samples")
    e.add_argument("--labels", type=int, default=100, help="augmentation: labelled images")
    e.add_argument("--quick", action="store_true", help="augmentation, anomaly: tiny budgets")
    e.add_argument("--method", default="vae", choices=("vae", "pixelcnn", "pca", "ood"),
                   help="anomaly: a one-class score, or ood (fashion-mnist vs mnist)")  # fmt: skip
    e.add_argument("--digit", type=int, default=None, choices=range(10),
                   help="anomaly: the one class (default: each in turn)")  # fmt: skip
    e.add_argument("--steps", type=int, default=None, help="anomaly: training steps")
    e.add_argument("--background", action="store_true",
                   help="anomaly ood: also Ren's likelihood ratio (a second model)")  # fmt: skip
    e.set_defaults(func=_cmd_eval)

    commands.arguments(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parser().parse_args(argv)
    args.argv = argv
    if not is_main():  # under torchrun, rank 0 alone prints and saves
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - for the life of the process
    try:
        return args.func(args)
    except (data.DataError, hub.CheckpointError, ValueError) as err:
        print(f"genedu: {err}", file=sys.stderr)
        return 2
    except recipes.common.Interrupted as err:
        print(f"genedu: {err}", file=sys.stderr)
        return 130  # as a shell reports a Ctrl-C


if __name__ == "__main__":
    sys.exit(main())
