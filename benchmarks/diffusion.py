"""The diffusion chapter's goals: sample quality on MNIST in genedu's own feature space
(the shipped classifier-mnist; not comparable with Inception FID), on 2 CPU threads.

    python benchmarks/diffusion.py                       # every part (hours on 2 threads)
    python benchmarks/diffusion.py --parts latent steps  # some parts; the others' rows kept
    python benchmarks/diffusion.py --parts steps --samplers euler heun  # some samplers
    python benchmarks/diffusion.py --parts race --minutes 2 --n 2000   # a quick look
    python benchmarks/diffusion.py --judge-only          # re-judge results/diffusion.json

Parts:
- race: a class-conditional flow-matching model and a cDCGAN, each trained here by the
  stored command of its shipped checkpoint (flowmatch-mnist, cdcgan-mnist) for --minutes
  (25 by default), one after the other in the same run; FID, precision, recall and
  class agreement on --n samples (the cDCGAN's recipe: 10,000) against the test set.
- guidance: the shipped flowmatch-mnist's class agreement and FID over the guidance weight.
- steps: FID against the sampler and its steps: DDPM (ddpm-mnist) ancestral on all T
  steps and DDIM at 50/20/10, deterministic (eta 0) and as noisy as ancestral (eta 1);
  flow matching (flowmatch-mnist) with Euler and Heun at 100/50/20/10.
- latent: `genedu train latent-diffusion` for 5 minutes, and the same VAE sampled from
  its N(0, I) prior, measured on the same features in the same run.
A shipped checkpoint a part needs but that is missing is said, and the part skipped.

Goals: flow matching's FID <= the cDCGAN's after the same minutes; class agreement >=
0.98 at the best guidance weight; Heun at 10 steps within 20% of its own 100-step FID;
DDIM at 50 steps within 20% of the 1000-step ancestral FID (judged for eta 0 and 1);
latent diffusion's FID below the VAE prior's, within 5 minutes of training.
"""

from __future__ import annotations

import argparse
import json
import shlex
import tempfile
import time
from pathlib import Path

import torch
from common import RESULTS, record, rejudge, setup, verdict, write

from genedu import cli, data, hub, metrics

SEED = 0
DATASET = "mnist (grey levels, 28x28)"
PARTS = ("race", "guidance", "steps", "latent")
SAMPLERS = ("ancestral", "ddim", "euler", "heun")
FLOW, CDCGAN = "flow matching (trained here)", "cdcgan (trained here)"
LATENT, PRIOR = "latent diffusion (trained here)", "vae-mnist from N(0, I)"
UNITS = {"fid": "FID", "precision": "fraction", "recall": "fraction", "class_agreement": "fraction"}


class Judge:
    """Features of the test set, computed once; `measure` scores a batch of samples."""

    def __init__(self, n: int):
        self.net = hub.load("classifier-mnist")
        test = data.load("mnist", "test")
        self.real = metrics.extract_features(test.images[:n], self.net)

    def measure(self, images: torch.Tensor, labels: torch.Tensor | None = None) -> dict:
        fake = metrics.extract_features(images, self.net)
        pr = metrics.precision_recall(self.real, fake)
        found = {"fid": metrics.fid_from_features(self.real, fake), **pr}
        if labels is not None:
            found["class_agreement"] = metrics.accuracy(self.net, images, labels)
        return found


def rows_of(model: str, found: dict, seconds: float, **extra) -> list[dict]:
    print(f"{model} ({extra}): " + ", ".join(f"{k} {v:.4g}" for k, v in found.items()), flush=True)
    return [
        record(model, DATASET, k, v, UNITS[k], seconds, SEED, **extra) for k, v in found.items()
    ]


def train_here(family: str, argv: list[str], minutes: float, n: int) -> dict:
    """Run `genedu train FAMILY ... --minutes M` in this process; its checkpoint's metrics."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / family
        command = ["train", family, "--data", "mnist", *argv, "--minutes", str(minutes),
                   "--quality-samples", str(n), "--out", str(out)]  # fmt: skip
        if family == "cdcgan":  # its recipe measures 10,000 samples, as the GAN chapter
            command.remove("--quality-samples"), command.remove(str(n))
        if cli.main(command) != 0:
            raise SystemExit(f"genedu {' '.join(command)} failed")
        return json.loads(out.with_suffix(".json").read_text())["metrics"]


def own_command(name: str) -> tuple[str, list[str]]:
    """The family and flags of a shipped checkpoint's stored training command, less those
    that only write or measure along the way (--out, --eval-minutes, --cas-steps)."""
    words = shlex.split(hub.info(name)["command"])[2:]  # after "genedu train"
    flags, skipping = [], False
    for w in words[1:]:
        if w.startswith("--"):
            skipping = w in ("--out", "--eval-minutes", "--cas-steps")
        if not skipping:
            flags.append(w)
    return words[0], flags


def race(args, scorer: Judge) -> list[dict]:
    """Each model retrained by its shipped checkpoint's own command, for --minutes."""
    rows = []
    for name, checkpoint in [(FLOW, "flowmatch-mnist"), (CDCGAN, "cdcgan-mnist")]:
        family, flags = own_command(checkpoint)
        m = train_here(family, flags, args.minutes, args.n)
        found = {"fid": m["fid_test"], "precision": m["precision"], "recall": m["recall"],
                 "class_agreement": m["class_agreement"]}  # fmt: skip
        rows += rows_of(name, found, m["train_seconds"], steps=m["steps"],
                        samples=m["quality_samples"], sampling=m.get("sampling"),
                        trained_by=f"genedu train {family} {shlex.join(flags)}")  # fmt: skip
    return rows


def shipped(name: str):
    if name not in {r["name"] for r in hub.list()}:
        print(f"{name} is not shipped yet: this part is skipped")
        return None, None
    return hub.load(name), hub.info(name)


def guidance(args, scorer: Judge) -> list[dict]:
    model, info = shipped("flowmatch-mnist")
    if model is None:
        return []
    labels = torch.arange(args.n) % model.config.num_classes
    rows = []
    for w in args.weights:
        start = time.perf_counter()
        x = model.sample(
            args.n, y=labels, guidance=w, steps=20, generator=torch.Generator().manual_seed(SEED)
        )
        took = round(time.perf_counter() - start, 1)
        rows += rows_of("flowmatch-mnist (shipped)", scorer.measure(x, labels),
                        info["metrics"]["train_seconds"], guidance=w, sampler="heun", steps=20,
                        samples=args.n, sampling_seconds=took)  # fmt: skip
    return rows


def steps(args, scorer: Judge) -> list[dict]:
    plans = [("ddpm-mnist", "ancestral", None, {})]
    plans += [("ddpm-mnist", "ddim", s, {"eta": e}) for e in (0.0, 1.0) for s in (50, 20, 10)]
    plans += [("flowmatch-mnist", m, s, {}) for m in ("euler", "heun") for s in (100, 50, 20, 10)]
    rows = []
    for name, sampler, n_steps, extra in [p for p in plans if p[1] in args.samplers]:
        model, info = shipped(name)
        if model is None:
            continue
        start = time.perf_counter()
        x = model.sample(args.n, sampler=sampler, steps=n_steps,
                         generator=torch.Generator().manual_seed(SEED), **extra)  # fmt: skip
        found = {"fid": scorer.measure(x)["fid"]}
        took = round(time.perf_counter() - start, 1)
        rows += rows_of(f"{name} (shipped)", found, info["metrics"]["train_seconds"],
                        sampler=sampler, steps=n_steps or model.config.timesteps, samples=args.n,
                        sampling_seconds=took, **extra)  # fmt: skip
    return rows


def latent(args, scorer: Judge) -> list[dict]:
    m = train_here("latent-diffusion", [], 5.0, args.n)
    found = {"fid": m["fid_test"], "precision": m["precision"], "recall": m["recall"]}
    rows = rows_of(LATENT, found, m["train_seconds"], steps=m["steps"], samples=args.n)
    prior = {
        k: m[f"vae_prior_{k}_test" if k == "fid" else f"vae_prior_{k}"]
        for k in ("fid", "precision", "recall")
    }
    return rows + rows_of(PRIOR, prior, 0.0, samples=args.n, decoded="the decoder's mean images")


GOALS = [  # (model, metric, how, a target or another model, within seconds)
    (FLOW, "fid", "<=", CDCGAN, None),
    ("flowmatch-mnist (shipped)", "class_agreement", ">=", 0.98, None),
    (LATENT, "fid", "<", PRIOR, 300),
]


def judge(rows: list[dict]) -> list[dict]:
    """One record per goal that the rows can answer, met or missed."""
    measured = [r for r in rows if not r["metric"].startswith("goal")]
    out = []
    for model, metric, op, target, seconds in GOALS:
        found = [r for r in measured if r["model"] == model and r["metric"] == metric
                 and (seconds is None or r["wall_seconds"] <= seconds + 1)]  # fmt: skip
        if not found:
            continue
        if isinstance(target, str):
            ref = [r for r in measured if r["model"] == target and r["metric"] == metric]
            if not ref:
                continue
            target = ref[0]["value"]
        best = (min if op.startswith("<") else max)(found, key=lambda r: r["value"])
        met = {"<=": best["value"] <= target, "<": best["value"] < target,
               ">=": best["value"] >= target}[op]  # fmt: skip
        out.append(verdict(best, f"{metric} {op} {target:g}", met))
    few_steps = [("flowmatch-mnist (shipped)", "heun", None, 10, 100),
                 ("ddpm-mnist (shipped)", "ddim", 0.0, 50, None),
                 ("ddpm-mnist (shipped)", "ddim", 1.0, 50, None)]  # fmt: skip
    for model, sampler, eta, few, many in few_steps:
        fid = {r.get("steps"): r for r in measured if r["model"] == model and r["metric"] == "fid"
               and (r.get("sampler") == "ancestral"
                    or (r.get("sampler") == sampler and r.get("eta") == eta))}  # fmt: skip
        reference = max(fid) if many is None and fid else many
        if few in fid and reference in fid:
            limit = 1.2 * fid[reference]["value"]
            how = sampler if eta is None else f"{sampler} (eta {eta:g})"
            goal = f"fid with {how} at {few} steps <= 1.2 x the {reference}-step fid ({limit:.4g})"
            out.append(verdict(fid[few], goal, fid[few]["value"] <= limit))
    return out


def kept(parts: list[str], samplers: list[str]) -> list[dict]:
    """The rows not rerun now, from the last recorded run: those of the other parts, and
    the steps part's rows of the other samplers."""
    path = RESULTS / "diffusion.json"
    rows = json.loads(path.read_text()) if path.exists() else []

    def rerun(r: dict) -> bool:
        return r.get("part") in parts and (r["part"] != "steps" or r.get("sampler") in samplers)

    return [r for r in rows if not r["metric"].startswith("goal") and not rerun(r)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", nargs="+", choices=PARTS, default=list(PARTS))
    parser.add_argument("--minutes", type=float, default=25.0, help="race: each model's training")
    parser.add_argument("--n", type=int, default=10_000, help="samples for FID, P/R")
    parser.add_argument(
        "--weights", type=float, nargs="+", default=[0, 1, 2, 3, 5], help="guidance"
    )
    parser.add_argument("--samplers", nargs="+", choices=SAMPLERS, default=list(SAMPLERS),
                        help="steps: rerun these samplers' rows, keep the others'")  # fmt: skip
    parser.add_argument("--judge-only", action="store_true")
    args = parser.parse_args()
    if args.judge_only:
        rejudge("diffusion", judge)
        return
    setup(threads=2, seed=SEED)
    scorer = Judge(args.n)
    rows = kept(args.parts, args.samplers)
    for part in args.parts:
        rows += [{**r, "part": part} for r in globals()[part](args, scorer)]
    write("diffusion", rows + judge(rows))


if __name__ == "__main__":
    main()
