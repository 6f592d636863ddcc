"""Chapter 8: does adding synthetic samples help a classifier with few labels?

    python benchmarks/augmentation.py            # 5 seeds × n = 100, 1000; needs MNIST
    python benchmarks/augmentation.py --seeds 1 --labels 100    # one cell of the grid

Every arm of `genedu.apps.augmentation` (real only, classic augmentation, two
conditional-VAE arms, classic plus the better of them, and a class-conditional
flow-matching arm) at n labelled MNIST images, over 5 seeds, on 2 CPU threads, with
`AugmentationConfig`'s defaults and the flow arm switched on (`FLOW`). Each record is a
mean with the half-width of its 95% Student-t interval (`ci95`) and the per-seed values.
Each finished seed is kept in runs/augmentation/ and reused, so an interrupted run
resumes where it stopped.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

from common import record, setup, verdict, write

from genedu import data
from genedu.apps import augmentation as aug

RUNS = Path("runs") / "augmentation"
FLOW = {"flow_steps": 1000, "flow_hidden": 16, "flow_sample_steps": 10}  # the cvae's 1,000 steps


def one_run(train, test, n: int, seed: int) -> dict:
    """One (n, seed) cell, from runs/augmentation/ when it is there already."""
    path = RUNS / f"n{n}-seed{seed}.json"
    if path.exists():
        kept = json.loads(path.read_text())
        if aug.FLOW in kept["arms"]:  # a seed kept from before the flow arm is rerun
            return kept
    start = time.perf_counter()
    result = aug.run(train, test, aug.AugmentationConfig(labels=n, **FLOW), seed=seed)
    result["wall_seconds"] = round(time.perf_counter() - start, 1)
    RUNS.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".part")
    tmp.write_text(json.dumps(result, indent=1))
    os.replace(tmp, path)
    print(f"n={n} seed={seed}: " + ", ".join(
        f"{a} {e['test']:.4f}" for a, e in result["arms"].items()
    ) + f" ({result['wall_seconds']} s)")  # fmt: skip
    return result


def rows_for(n: int, runs: list[dict]) -> list[dict]:
    """The records of one n: every arm's clean and corrupted accuracy, each generator's
    CAS and its curve against the number of synthetic samples, and the pseudo-labels."""
    dataset = f"mnist, {n} labels"
    seeds = [r["seed"] for r in runs]
    rows = []

    def row(model, metric, values, seconds, **extra):
        mean, half = aug.interval(values)
        rows.append(record(model, dataset, metric, mean, "accuracy", seconds, seeds[0],
                           ci95=round(half, 4), seeds=seeds,
                           per_seed=[round(v, 4) for v in values], **extra))  # fmt: skip

    for arm in (*aug.ARMS, aug.FLOW):
        entries = [r["arms"][arm] for r in runs]
        seconds = sum(e["seconds"] for e in entries) / len(entries)
        synthetic = [e["synthetic"] for e in entries]
        for measure, metric in (("test", "accuracy"), ("corrupted", "corrupted_accuracy"),
                                ("validation", "validation_accuracy")):  # fmt: skip
            extra = {"synthetic": synthetic}
            if arm == "classic+synthetic":
                extra["generator"] = [e["generator"] for e in entries]
            row(arm, metric, [e[measure] for e in entries], seconds, **extra)
    for gen in (*aug.SYNTHETIC, aug.FLOW):
        row(f"{gen} (CAS)", "cas", [r["cas"][gen] for r in runs], 0.0)
        for i, m in enumerate(runs[0]["config"]["multiples"]):
            entries = [r["curves"][gen][i] for r in runs]
            seconds = sum(e["seconds"] for e in entries) / len(entries)
            row(f"{gen} × {m:g}", "accuracy", [e["test"] for e in entries], seconds,
                synthetic=entries[0]["synthetic"])  # fmt: skip
    kept = [r["pseudo_labels"]["kept"] / r["pseudo_labels"]["unlabelled"] for r in runs]
    right = [r["pseudo_labels"]["accuracy_of_kept"] for r in runs]
    rows.append(record("pseudo-labels", dataset, "kept_share", sum(kept) / len(kept), "share",
                       0.0, seeds[0], per_seed=[round(v, 4) for v in kept]))  # fmt: skip
    row("pseudo-labels", "accuracy_of_kept", right, 0.0)
    return rows


def judge(rows: list[dict]) -> list[dict]:
    """The issue's target: at n = 100 the better synthetic arm (chosen on validation)
    beats real only by >= 2 points, with 95% intervals that do not overlap."""
    at = lambda model, metric: next(  # noqa: E731
        r for r in rows if r["model"] == model and r["metric"] == metric
        and r["dataset"] == "mnist, 100 labels"
    )  # fmt: skip
    best = max(aug.SYNTHETIC, key=lambda a: at(a, "validation_accuracy")["value"])
    real, syn = at("real", "accuracy"), at(best, "accuracy")
    gain = syn["value"] - real["value"]
    apart = syn["value"] - syn["ci95"] > real["value"] + real["ci95"]
    print(f"n=100: {best} {syn['value']:.4f} ± {syn['ci95']:.4f} against real "
          f"{real['value']:.4f} ± {real['ci95']:.4f}: gain {100 * gain:.2f} points")  # fmt: skip
    goal = "best synthetic arm beats real only at n=100 by >= 2 points, intervals apart"
    return [verdict({**syn, "gain_points": round(100 * gain, 2)}, goal, gain >= 0.02 and apart)]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--labels", type=int, nargs="+", default=[100, 1000])
    p.add_argument("--seeds", type=int, default=5)
    args = p.parse_args()
    setup(threads=2)
    train, test = data.load("mnist", "train"), data.load("mnist", "test")
    rows = []
    for n in args.labels:
        runs = [one_run(train, test, n, seed) for seed in range(args.seeds)]
        rows += rows_for(n, runs)
    if 100 in args.labels and args.seeds > 1:
        rows += judge(rows)
    write("augmentation", rows)


if __name__ == "__main__":
    main()
