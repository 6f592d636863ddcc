"""Chapter 10's measured results (issue 9), on 2 CPU threads.

    python benchmarks/apps.py                        # everything
    python benchmarks/apps.py --parts completion     # one part; the other's rows are kept
    python benchmarks/apps.py --digits 50            # a quick look

* Completion: the bottom half of the first 1,000 MNIST test digits (binarised with a
  seeded draw) is hidden, and each method draws 4 completions per digit: the shipped
  PixelCNN (`pixelcnn-mnist`, exact raster-order conditional), the shipped VAE
  (`vae-mnist`, a latent search on the known half) and the nearest training image on
  the known half. For each: the share of completions that `classifier-mnist` reads as
  the true digit, the share of hidden pixels equal to the truth, the diversity (share
  of hidden pixels on which two completions of a digit differ) and seconds per digit.
  For scale, the classifier on the whole digits and on the top halves alone.
* Style transfer and texture synthesis (`style_rows`): times, the style loss reduction
  and the content loss against its bound; the two images are saved beside the JSON
  (results/apps-style-transfer.png, results/apps-style-texture.png) for the book.
"""

from __future__ import annotations

import argparse
import json
import time

import torch
from common import RESULTS, record, setup, verdict, write

from genedu import data, hub
from genedu.apps import completion, style

SEED = 0
PARTS = ("completion", "style")
MODELS = {
    "pixelcnn": "pixelcnn-mnist (raster-order conditional)",
    "vae": "vae-mnist (latent search, 100 Adam steps)",
    "neighbour": "nearest training image on the known half",
}


def completion_rows(args) -> list[dict]:
    test = data.load("mnist", "test")
    train = data.load("mnist", "train")
    g = torch.Generator().manual_seed(SEED)
    x = data.binarize(test.images[: args.digits], generator=g)
    labels = test.labels[: args.digits]
    train_images = data.binarize(train.images, generator=g)
    known = completion.mask("bottom")
    classifier = hub.load("classifier-mnist")
    dataset = f"mnist test, bottom half hidden ({len(x)} digits)"
    rows = []
    for name, images in (("whole digits", x), ("top halves only", x * known)):
        accuracy = (classifier.predict(images) == labels).float().mean().item()
        print(f"classifier-mnist on the {name}: {accuracy:.4f}")
        rows.append(record(f"classifier-mnist on the {name}", dataset, "accuracy", accuracy,
                           "share", 0.0, SEED, digits=len(x)))  # fmt: skip
    for method in completion.METHODS:
        out, seconds = completion.complete(method, x, known, samples=args.samples, seed=SEED,
                                           train_images=train_images)  # fmt: skip
        s = completion.evaluate(out, x, known, labels, classifier)
        print(f"{method}: accuracy {s.accuracy:.4f}, hidden pixels right {s.agreement:.4f}, "
              f"diversity {s.diversity:.4f}, {seconds / len(x):.3f} s per digit")  # fmt: skip
        extra = {"method": method, "digits": len(x), "samples": args.samples}
        for metric, value, unit in (
            ("accuracy", s.accuracy, "share"),
            ("agreement", s.agreement, "share"),
            ("diversity", s.diversity, "share"),
            ("seconds_per_digit", seconds / len(x), "s"),
        ):
            rows.append(record(MODELS[method], dataset, metric, value, unit, seconds, SEED,
                               **extra))  # fmt: skip
    return rows


def style_rows(args) -> list[dict]:
    """A 256×256 transfer (chelsea in the style of flower) and a 256×256 texture from the
    flower photo, with the defaults of genedu.apps.style (random multi-scale features,
    L-BFGS). Goals: the transfer within 2 CPU-minutes, its style loss down by >= 90%
    from the start, and its content loss under the bound (the content loss of the style
    photo itself: a result closer in content to the cat than the flower is)."""
    rows = []
    r = style.benchmark("chelsea", "flower", size=args.style_size, steps=args.style_steps)
    style.save_png(r.pop("image"), RESULTS / "apps-style-transfer.png")
    model = f"Gatys transfer, random features, L-BFGS ({r['steps']} steps)"
    dataset = f"chelsea in the style of flower, {r['size']}×{r['size']}"
    print(f"style transfer: {r['seconds']:.1f} s, style loss down "
          f"{100 * r['style_reduction']:.2f}%, content {r['content_final']:.3f} "
          f"(bound {r['content_bound']:.3f})")  # fmt: skip
    extra = {k: r[k] for k in ("steps", "evaluations", "style_initial", "style_final",
                               "content_final", "content_bound")}  # fmt: skip
    seconds = record(model, dataset, "seconds", r["seconds"], "s", r["seconds"], SEED, **extra)
    reduction = record(model, dataset, "style_reduction", r["style_reduction"], "share",
                       r["seconds"], SEED, **extra)  # fmt: skip
    content = record(model, dataset, "content_over_bound",
                     r["content_final"] / r["content_bound"], "ratio", r["seconds"], SEED,
                     **extra)  # fmt: skip
    rows += [seconds, reduction, content]
    rows.append(verdict(seconds, "256×256 transfer in <= 120 s on 2 CPU threads",
                        r["seconds"] <= 120))  # fmt: skip
    rows.append(verdict(reduction, "style loss reduced by >= 90%", r["style_reduction"] >= 0.9))
    rows.append(verdict(content, "content loss under its bound (ratio < 1)",
                        r["content_final"] < r["content_bound"]))  # fmt: skip
    torch.manual_seed(SEED)
    t = style.texture(style.photo("flower", args.style_size), size=args.style_size,
                      steps=args.style_steps, seed=SEED, progress=False)  # fmt: skip
    style.save_png(t.image, RESULTS / "apps-style-texture.png")
    print(f"texture: {t.seconds:.1f} s, style loss down {100 * t.style_reduction:.2f}%")
    model = f"Gatys texture, random features, L-BFGS ({args.style_steps} steps)"
    dataset = f"flower, {args.style_size}×{args.style_size}, from noise"
    rows.append(record(model, dataset, "seconds", t.seconds, "s", t.seconds, SEED))
    rows.append(record(model, dataset, "style_reduction", t.style_reduction, "share",
                       t.seconds, SEED))  # fmt: skip
    return rows


def _kept(part: str) -> list[dict]:
    """The rows of one part from the last recorded run (a part not rerun this time)."""
    path = RESULTS / "apps.json"
    rows = json.loads(path.read_text()) if path.exists() else []
    return [r for r in rows if r.get("part") == part]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--digits", type=int, default=1000, help="completion: test digits")
    p.add_argument("--samples", type=int, default=4, help="completion: per digit")
    p.add_argument("--style-size", type=int, default=256)
    p.add_argument("--style-steps", type=int, default=100)
    kept = "run only these; the rows of the others are kept from the last run"
    p.add_argument("--parts", nargs="+", choices=PARTS, default=list(PARTS), help=kept)
    args = p.parse_args()
    setup(threads=2, seed=SEED)
    start = time.perf_counter()
    rows = []
    for part, run in (("completion", completion_rows), ("style", style_rows)):
        if part in args.parts:
            rows += [{**r, "part": part} for r in run(args)]
        else:
            rows += _kept(part)
    print(f"benchmarks/apps.py: {time.perf_counter() - start:.0f} s in all")
    write("apps", rows)


if __name__ == "__main__":
    main()
