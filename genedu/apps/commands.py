"""The application commands: `genedu eval augmentation`, `genedu eval anomaly`,
`genedu complete` and `genedu style`, each a thin shell over its module in genedu.apps."""

from __future__ import annotations

import os
from pathlib import Path

import torch

from .. import data, hub


def arguments(sub) -> None:
    """Add `style` and `complete` to the `genedu` parser's subcommands."""
    y = sub.add_parser("style", help="style transfer (or texture synthesis) into a PNG")
    y.add_argument("--content", default="chelsea", help="a bundled photo's name or an image file")
    y.add_argument("--style", required=True, help="a bundled photo's name or an image file")
    y.add_argument("--out", required=True, help="the PNG to write")
    y.add_argument("--steps", type=int, default=100, help="L-BFGS steps")
    y.add_argument("--size", type=int, default=256, help="side of the (square) result")
    y.add_argument("--style-weight", type=float, default=100.0,
                   help="style against content (both losses start near 1)")  # fmt: skip
    y.add_argument("--seed", type=int, default=0, help="random features and initial noise")
    y.add_argument("--texture", action="store_true", help="texture synthesis: no content")
    y.set_defaults(func=style_command)

    c = sub.add_parser("complete", help="complete occluded MNIST test digits (chapter 10)")
    c.add_argument("--method", default="all", choices=("all", "pixelcnn", "vae", "neighbour"))
    c.add_argument("--mask", default="bottom", choices=("bottom", "right", "centre"))
    c.add_argument("--n", type=int, default=8, help="test digits to complete")
    c.add_argument("--samples", type=int, default=4, help="completions per digit")
    c.add_argument("--seed", type=int, default=0)
    c.add_argument("--fallback", default="mnist5k", help="offline: the bundled digits")
    c.add_argument("--no-progress", action="store_true")
    c.add_argument("--out", default="completions.png")
    c.set_defaults(func=complete)


def eval_augmentation(args) -> int:
    """One seed of the augmentation experiment (genedu.apps.augmentation), as a table."""
    from . import augmentation as aug

    n = args.labels
    config = aug.AugmentationConfig(labels=n)
    if args.quick:  # seconds, to see every arm run; the numbers mean little
        config = aug.AugmentationConfig(
            labels=n, validation=200, classifier_steps=20, generator_steps=20,
            semi_steps=20, cas_samples=200,
        )  # fmt: skip
    name = args.data or "mnist"
    train_set = data.load(name, "train", fallback=args.fallback)
    test_set = data.load(name, "test", fallback=args.fallback)
    print(f"augmentation on {train_set.name}: {n} labels, seed {args.seed}"
          + (" (--quick budgets)" if args.quick else ""))  # fmt: skip
    result = aug.run(train_set, test_set, config, seed=args.seed)
    print(f"{'arm':<18} {'synthetic':>9} {'validation':>10} {'test':>7} {'corrupted':>9}"
          f" {'seconds':>8}")  # fmt: skip
    for arm, e in result["arms"].items():
        print(f"{arm:<18} {e['synthetic']:>9} {e['validation']:>10.4f} {e['test']:>7.4f} "
              f"{e['corrupted']:>9.4f} {e['seconds']:>8.1f}")  # fmt: skip
    print("CAS: " + ", ".join(f"{g} {v:.4f}" for g, v in result["cas"].items()))
    pseudo = result["pseudo_labels"]
    print(f"pseudo-labels: {pseudo['kept']} of {pseudo['unlabelled']} kept, "
          f"{pseudo['accuracy_of_kept']:.4f} of them right")  # fmt: skip
    return 0


def eval_anomaly(args) -> int:
    """Chapter 9's experiments (genedu.apps.anomaly): one-class MNIST, or Fashion->MNIST."""
    from . import anomaly

    small = 500 if args.quick else None  # --quick: a few hundred images, to see it run
    if args.method == "ood":
        steps = args.steps or (20 if args.quick else 2000)
        result = anomaly.ood_fashion_mnist(
            train_size=small, test_size=small, steps=steps, seed=args.seed,
            background_steps=steps if args.background else 0,
        )  # fmt: skip
        print(f"trained on fashion-mnist ({steps} steps), mnist test as out-of-distribution:")
        for score, value in result.aurocs.items():
            print(f"  AUROC of {score:<17} {value:.4f}")
        return 0
    digits = range(10) if args.digit is None else [args.digit]
    steps = args.steps or (20 if args.quick else 1000)
    found = []
    for digit in digits:
        r = anomaly.one_class(digit, method=args.method, steps=steps, seed=args.seed,
                              train_size=small, test_size=small and 4 * small)  # fmt: skip
        found.append((r.auroc, r.corrected_auroc))
        extra = "" if r.corrected_auroc is None else f", PNG-corrected {r.corrected_auroc:.4f}"
        print(f"digit {digit}: {args.method} AUROC {r.auroc:.4f}{extra} "
              f"({r.train_images} training images, {r.train_seconds:.1f} s)")  # fmt: skip
    if len(found) > 1:
        raw = sum(a for a, _ in found) / len(found)
        extra = "" if found[0][1] is None else (
            f", PNG-corrected {sum(c for _, c in found) / len(found):.4f}")  # fmt: skip
        print(f"mean AUROC over {len(found)} digits: {raw:.4f}{extra}")
    return 0


def complete(args) -> int:
    """Complete occluded MNIST test digits with each method; a PNG grid, and the scores."""
    from PIL import Image
    from tqdm.auto import tqdm

    from .. import viz
    from . import completion

    test = data.load("mnist", "test", fallback=args.fallback)
    if not 1 <= args.n <= len(test.images):
        raise ValueError(f"--n must be in 1..{len(test.images)}, got {args.n}")
    g = torch.Generator().manual_seed(args.seed)
    x = data.binarize(test.images[: args.n], generator=g)
    known = completion.mask(args.mask, tuple(x.shape[2:]))
    methods = completion.METHODS if args.method == "all" else (args.method,)
    train_images = None
    if "neighbour" in methods:
        train = data.load("mnist", "train", fallback=args.fallback)
        train_images = data.binarize(train.images, generator=g)
    found, chunk = {}, 50
    jobs = [(m, i) for m in methods for i in range(0, args.n, chunk)]
    for method, i in tqdm(jobs, desc="completing", disable=args.no_progress):
        out, _ = completion.complete(method, x[i : i + chunk], known, samples=args.samples,
                                     seed=args.seed + i, train_images=train_images)  # fmt: skip
        found.setdefault(method, []).append(out)
    found = {m: torch.cat(parts) for m, parts in found.items()}
    classifier = hub.load("classifier-mnist")
    for method, out in found.items():
        s = completion.evaluate(out, x, known, test.labels[: args.n], classifier)
        print(f"{method:<10} read as the true digit {s.accuracy:.3f}, hidden pixels "
              f"right {s.agreement:.3f}, diversity {s.diversity:.3f} "
              f"({s.completions} completions)")  # fmt: skip
    shown = min(args.n, 16)
    images, ncol, names = completion.panel(
        x[:shown], known, {m: o[:shown] for m, o in found.items()}
    )
    grid = viz.make_grid(images, nrow=ncol)[0]
    out = Path(args.out)
    tmp = out.with_name(out.name + ".part")
    Image.fromarray((grid * 255).round().to(torch.uint8).numpy()).save(tmp, format="PNG")
    os.replace(tmp, out)
    print(f"wrote {out}: one digit per row; columns {', '.join(names)}")
    return 0


def style_command(args) -> int:
    """Style transfer (or, with --texture, texture synthesis) into a PNG (genedu.apps.style)."""
    from . import style

    look = style.load_image(args.style, args.size)
    if args.texture:
        result = style.texture(look, size=args.size, steps=args.steps, seed=args.seed)
    else:
        result = style.transfer(style.load_image(args.content, args.size), look,
                                steps=args.steps, style_weight=args.style_weight,
                                seed=args.seed)  # fmt: skip
    style.save_png(result.image, args.out)
    print(f"wrote {args.out}: style loss {result.style[0]:.4g} -> {result.style[-1]:.4g} "
          f"({100 * result.style_reduction:.1f}% less), {result.seconds:.1f} s")  # fmt: skip
    return 0
