"""What every benchmark script shares: the record format of benchmarks/results/*.json.

A record holds at least model, dataset, metric, value, unit, wall_seconds (the training
time behind the value), device, threads, torch, seed, command and date. Results are
written atomically, replacing the file's records for the same script.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import shlex
import sys
from pathlib import Path

import torch

RESULTS = Path(__file__).parent / "results"


def setup(threads: int = 2, seed: int = 0) -> None:
    """Fix the thread count (the course's reference is 2 CPU threads) and the seed."""
    torch.set_num_threads(threads)
    torch.manual_seed(seed)


def record(
    model: str,
    dataset: str,
    metric: str,
    value: float,
    unit: str,
    wall_seconds: float,
    seed: int = 0,
    **extra,
) -> dict:
    """One result row, with the machine and the command that reproduces it."""
    return {
        "model": model,
        "dataset": dataset,
        "metric": metric,
        "value": round(float(value), 4),
        "unit": unit,
        "wall_seconds": round(float(wall_seconds), 2),
        "device": f"cpu ({platform.processor() or platform.machine()})",
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "seed": seed,
        "command": " ".join(
            ["python", "benchmarks/" + Path(sys.argv[0]).name, *map(shlex.quote, sys.argv[1:])]
        ),
        "date": datetime.date.today().isoformat(),
        **extra,
    }


def write(name: str, records: list[dict]) -> Path:
    """Write benchmarks/results/<name>.json atomically and print every record."""
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}.json"
    tmp = path.with_name(path.name + ".part")
    tmp.write_text(json.dumps(records, indent=2) + "\n")
    os.replace(tmp, path)
    for r in records:
        print(
            f"{r['model']:<34} {r['dataset']:<22} {r['metric']:<10} {r['value']:>10} "
            f"{r['unit']:<9} after {r['wall_seconds']} s"
        )
    print(f"wrote {path}")
    return path


def verdict(row: dict, goal: str, met: bool) -> dict:
    """The record behind a goal, restated as that goal's verdict: its metric becomes
    "goal: <goal>: met" (or "missed") and ``met`` holds the answer. Printed as well."""
    word = "met" if met else "missed"
    print(f"{row['model']}: goal {goal}: {word} ({row['value']} {row['unit']} "
          f"after {row['wall_seconds']} s)")  # fmt: skip
    return {**row, "metric": f"goal: {goal}: {word}", "met": met}


def rejudge(name: str, judge) -> Path:
    """Re-judge results/<name>.json without training anything: drop its goal records and
    write the measurements back with `judge(measurements)` appended."""
    measured = json.loads((RESULTS / f"{name}.json").read_text())
    measured = [r for r in measured if not r["metric"].startswith("goal")]
    return write(name, measured + judge(measured))
