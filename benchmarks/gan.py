"""The GAN chapter's goals: sample quality on MNIST against training time, in genedu's
own feature space (the shipped classifier-mnist; not comparable with Inception FID).

    python benchmarks/gan.py                  # everything: about 13 minutes on 2 threads
    python benchmarks/gan.py --minutes 1 --n 2000   # a quick look
    python benchmarks/gan.py --judge-only     # the goals' verdicts for results/gan.json
    python benchmarks/gan.py --parts cas-ceiling   # rerun one part, keep the other's rows

Goals (issue 4), on 2 CPU threads:
- classifier-mnist: test accuracy >= 99.0% on the 10,000 official test images;
- DCGAN: within 10 training minutes, an FID below that of the VAE's samples;
- conditional DCGAN: within 15 training minutes, CAS >= 90% on the real test set, and
  classifier-mnist names the requested class for >= 95% of its samples.
FID, precision and recall compare n generated images with the n test images (n = 10,000
by default); the floor is the FID of n real training images against the test images.
The DCGAN is trained here: the clock stops while it is measured, so `wall_seconds` is
training time only, and the FID curve against it is recorded at every mark. The
conditional DCGAN's curve comes from the shipped `cdcgan-mnist`, whose training run
(on 2 CPU threads, the command in its records) measured itself the same way at each
of its --eval-minutes marks, CAS included. The shipped `dcgan-mnist` (longer, on a GPU)
is measured beside the DCGAN trained here. CAS's ceiling is the same classifier trained
the same way on real training digits (cdcgan-mnist's CAS protocol: 50,000 images and its
--cas-steps), so the GAN's CAS has a real-data score to be read against. Each goal's
verdict is a record too.
"""

from __future__ import annotations

import argparse
import json
import re
import time

import torch
from common import RESULTS, record, rejudge, setup, verdict, write

from genedu import data, gan, hub, metrics
from genedu.train import fit

SEED = 0
DATASET = "mnist (grey levels, 28x28)"
# the chapter's recipe: non-saturating loss, Adam 2e-4 (0.5, 0.999), batch 64, EMA 0.999
DCGAN = gan.GANConfig(latent_dim=64, hidden=64, ema_decay=0.999)


def measure(images, real_features, net) -> dict[str, float]:
    """FID, precision and recall of `images` against the test features."""
    fake_features = metrics.extract_features(images, net)
    return {
        "fid": metrics.fid_from_features(real_features, fake_features),
        **metrics.precision_recall(real_features, fake_features),
    }


UNITS = {
    "fid": "fid",
    "precision": "share",
    "recall": "share",
    "class_agreement": "accuracy",
    "cas": "accuracy",
}


def records(name: str, found: dict, trained: float, **extra) -> list[dict]:
    """One record per measured number, printed as it goes."""
    print(
        f"{name} after {trained:.0f} s: " + ", ".join(f"{k} {v:.4g}" for k, v in found.items()),
        flush=True,
    )
    return [record(name, DATASET, k, v, UNITS[k], trained, SEED, **extra) for k, v in found.items()]


def train_dcgan(name, train_set, real_features, net, args) -> list[dict]:
    """Train a DCGAN for --minutes on 2 threads, measuring at each mark; the records."""
    torch.manual_seed(SEED)
    model = gan.GAN(DCGAN)

    def evaluate(m: gan.GAN) -> dict[str, float]:
        x = m.sample(args.n, generator=torch.Generator().manual_seed(SEED))
        return measure(x, real_features, net)

    history = fit(
        model,
        train_set.images,
        step=gan.train_step,
        steps=10**9,
        lr=2e-4,  # DCGAN's Adam: lr 2e-4, beta1 0.5 (the GAN's default betas)
        batch_size=64,
        seed=SEED,
        max_seconds=args.minutes * 60,
        eval_fn=evaluate,
        eval_at_seconds=[m * 60 for m in args.marks if m < args.minutes],
        progress=False,
    )
    rows = []
    for e in history.evals:  # each with the step and the training seconds behind it
        found = {k: v for k, v in e.items() if k not in ("step", "seconds")}
        rows += records(name, found, e["seconds"], steps=e["step"], samples=args.n)
    return rows


def shipped_conditional() -> list[dict]:
    """The shipped cdcgan-mnist's quality curve, as its training run measured and printed
    it (`genedu train cdcgan ... --eval-minutes ... --cas-steps ...`, kept in the JSON):
    FID, precision, recall, class agreement and CAS at each mark and at the end."""
    info = next(r for r in hub.list() if r["name"] == "cdcgan-mnist")
    m = info["metrics"]
    keys = ("fid_test", "precision", "recall", "class_agreement", "cas")
    final = {"step": m["steps"], "seconds": m["train_seconds"], **{k: m[k] for k in keys}}
    rows = []
    for point in [*m.get("curve", []), final]:
        extra = {
            "steps": point["step"],
            "samples": 10_000,
            "cas_protocol": m.get("cas_protocol"),
            "trained_by": info["command"] + f" (on {m.get('device')}, {m.get('threads')} threads)",
            "measured_by": "the training run itself, at each --eval-minutes mark",
        }
        found = {("fid" if k == "fid_test" else k): point[k] for k in keys if k in point}
        rows += records(CDCGAN, found, point["seconds"], **extra)
    for r in rows:
        r["command"] = info["command"]
    return rows


def cas_ceiling(train_set, test) -> list[dict]:
    """CAS's ceiling: the CAS classifier trained on n real training digits instead of n
    generated ones, with cdcgan-mnist's protocol (n = 50,000, its --cas-steps, seed 0),
    and tested on the same real test set."""
    info = next(r for r in hub.list() if r["name"] == "cdcgan-mnist")
    protocol = info["metrics"]["cas_protocol"]  # e.g. "50000 generated, 500 classifier steps"
    n, steps = (
        int(v) for v in re.fullmatch(r"(\d+) generated, (\d+) classifier steps", protocol).groups()
    )
    idx = torch.randperm(len(train_set), generator=torch.Generator().manual_seed(SEED))[:n]
    start = time.perf_counter()
    cas = metrics.classification_accuracy_score(
        train_set.images[idx],
        train_set.labels[idx],
        test.images,
        test.labels,
        steps=steps,
        seed=SEED,
    )
    return records(
        CEILING,
        {"cas": cas},
        0.0,
        samples=n,
        cas_protocol=f"{n} real training digits, {steps} classifier steps",
        classifier_seconds=round(time.perf_counter() - start, 1),
    )


def kept(part: str) -> list[dict]:
    """The measured rows of one part from the last recorded run (a part not rerun now)."""
    path = RESULTS / "gan.json"
    rows = json.loads(path.read_text()) if path.exists() else []
    rows = [r for r in rows if not r["metric"].startswith("goal")]
    return [r for r in rows if (r["model"] == CEILING) == (part == "cas-ceiling")]


PARTS = ("quality", "cas-ceiling")
CEILING = "real train images (the CAS ceiling)"
CLASSIFIER, VAE = "classifier-mnist (shipped)", "vae-mnist (shipped; Bernoulli means)"
DCGAN_HERE, CDCGAN = "dcgan (genedu.gan, trained here)", "cdcgan-mnist (shipped)"
GOALS = [
    (CLASSIFIER, "test_accuracy", ">=", 0.99, None),
    (DCGAN_HERE, "fid", "<", VAE, 600),
    (CDCGAN, "cas", ">=", 0.90, 900),
    (CDCGAN, "class_agreement", ">=", 0.95, 900),
]


def judge(rows: list[dict]) -> list[dict]:
    """One record per goal: the best value measured within the time, met or missed."""
    measured = [r for r in rows if not r["metric"].startswith("goal")]
    verdicts = []
    for model, metric, op, target, seconds in GOALS:
        found = [
            r
            for r in measured
            if r["model"] == model
            and r["metric"] == metric
            and (seconds is None or r["wall_seconds"] <= seconds + 1)
        ]
        if not found:
            continue
        if isinstance(target, str):  # another model's value, e.g. the VAE's FID
            ref = [r for r in measured if r["model"] == target and r["metric"] == metric]
            if not ref:
                continue
            target = ref[0]["value"]
        lower = op.startswith("<")
        best = (min if lower else max)(found, key=lambda r: r["value"])
        met = best["value"] < target if op == "<" else best["value"] >= target
        when = f" within {seconds // 60} min" if seconds else ""
        verdicts.append(verdict(best, f"{metric} {op} {target:g}{when}", met))
    return verdicts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="DCGAN training budget")
    parser.add_argument("--marks", type=float, nargs="*", default=[1, 2, 5, 10], help="minutes")
    parser.add_argument("--n", type=int, default=10_000, help="samples for FID, P/R")
    parser.add_argument("--judge-only", action="store_true", help="judge results/gan.json")
    kept_help = "run only these; the rows of the others are kept from the last run"
    parser.add_argument("--parts", nargs="+", choices=PARTS, default=list(PARTS), help=kept_help)
    args = parser.parse_args()
    if args.judge_only:
        rejudge("gan", judge)
        return
    setup(threads=2, seed=SEED)
    train_set, test = data.load("mnist", "train"), data.load("mnist", "test")
    rows = quality(train_set, test, args) if "quality" in args.parts else kept("quality")
    rows += cas_ceiling(train_set, test) if "cas-ceiling" in args.parts else kept("cas-ceiling")
    write("gan", rows + judge(rows))


def quality(train_set, test, args) -> list[dict]:
    """The classifier, the floor, noise, the VAE, both shipped GANs and the DCGAN trained
    here: every record but the CAS ceiling's."""
    net = hub.load("classifier-mnist")
    info = next(r for r in hub.list() if r["name"] == "classifier-mnist")
    acc = metrics.accuracy(net, test.images, test.labels)
    rows = [
        record(
            CLASSIFIER,
            "mnist",
            "test_accuracy",
            acc,
            "accuracy",
            info["metrics"]["train_seconds"],
            SEED,
            test_images=len(test),
            trained_by=info["command"] + " (on one H100 GPU)",
        ),
    ]
    print(f"classifier-mnist: test accuracy {acc:.4f} on {len(test)} images", flush=True)
    real_features = metrics.extract_features(test.images[: args.n], net)

    g = torch.Generator().manual_seed(SEED)
    floor = train_set.images[torch.randperm(len(train_set), generator=g)[: args.n]]
    n = {"samples": args.n}
    rows += records("real train images (the floor)", measure(floor, real_features, net), 0.0, **n)
    noise = torch.rand(args.n, 1, 28, 28, generator=g)
    rows += records("uniform noise", measure(noise, real_features, net), 0.0, **n)
    vae = hub.load("vae-mnist")
    vae_info = next(r for r in hub.list() if r["name"] == "vae-mnist")
    vae_x = vae.sample(args.n, generator=torch.Generator().manual_seed(SEED))
    rows += records(
        VAE,
        measure(vae_x, real_features, net),
        vae_info["metrics"].get("train_seconds", 0.0),
        trained_by=vae_info["command"],
        **n,
    )

    dcgan_info = next(r for r in hub.list() if r["name"] == "dcgan-mnist")
    shipped = hub.load("dcgan-mnist").sample(args.n, generator=torch.Generator().manual_seed(SEED))
    rows += records(
        "dcgan-mnist (shipped)",
        measure(shipped, real_features, net),
        dcgan_info["metrics"]["train_seconds"],
        trained_by=dcgan_info["command"] + " (on one H100 GPU)",
        **n,
    )
    rows += shipped_conditional()
    rows += train_dcgan(DCGAN_HERE, train_set, real_features, net, args)
    return rows


if __name__ == "__main__":
    main()
