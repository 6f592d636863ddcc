"""How long each chapter takes to run, top to bottom, in quick and in full mode.

    python benchmarks/notebooks.py                      # every chapter, both modes
    python benchmarks/notebooks.py --modes full 01      # chapters whose name starts with 01

Each chapter states its full-mode time on 2 CPU cores; this script is where that
figure comes from. A chapter runs in a fresh kernel as the book build runs it (one
nbclient session for the whole notebook), with the data found through GENEDU_DATA_DIR.
Timing some chapters keeps the recorded times of the others.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from pathlib import Path

import nbformat
from common import RESULTS, record, setup, write
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
sys.path.insert(0, str(ROOT / "book" / "_ext"))
import kernel_wakeup  # noqa: E402


def run(path: Path, quick: bool, timeout: int, keep: Path | None = None) -> float:
    """Execute one notebook in a fresh kernel; return its wall-clock seconds.

    keep: a folder to write the executed notebook to, outputs and all, for reading.
    """
    env = dict(os.environ)
    env.pop("MPLBACKEND", None)
    env.pop("GENEDU_QUICK", None)
    if quick:
        env["GENEDU_QUICK"] = "1"
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(
        nb,
        timeout=timeout,
        kernel_name="python3",
        resources={"metadata": {"path": str(path.parent)}},
    )
    start = time.perf_counter()
    client.execute(env=env)
    seconds = time.perf_counter() - start
    if keep is not None:
        keep.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, keep / f"{path.stem}.{'quick' if quick else 'full'}.ipynb")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("prefixes", nargs="*", help="only notebooks whose name starts so")
    parser.add_argument("--modes", nargs="+", choices=("quick", "full"), default=["quick", "full"])
    parser.add_argument("--timeout", type=int, default=3600, help="seconds per cell")
    parser.add_argument("--keep", type=Path, help="write the executed notebooks to this folder")
    args = parser.parse_args()
    setup(threads=2)
    kernel_wakeup.install()
    paths = [
        p
        for p in sorted(NOTEBOOKS.glob("*.ipynb"))
        if not args.prefixes or any(p.name.startswith(x) for x in args.prefixes)
    ]
    if not paths:
        parser.error(f"no notebook in {NOTEBOOKS.name}/ starts with {args.prefixes}")
    rows = []
    for path in paths:
        for mode in args.modes:
            print(f"running {path.name} ({mode}) ...", flush=True)
            seconds = run(path, quick=mode == "quick", timeout=args.timeout, keep=args.keep)
            rows.append(
                record(
                    path.stem,
                    "staged data" if os.environ.get("GENEDU_DATA_DIR") else "downloaded data",
                    f"{mode}_run",
                    seconds,
                    "s",
                    seconds,
                    threads=os.cpu_count(),
                )
            )
            # --keep only says where to write the executed copy: a path of this machine
            rows[-1]["command"] = re.sub(r" --keep \S+", "", rows[-1]["command"])
    measured = {(r["model"], r["metric"]) for r in rows}
    previous = RESULTS / "notebooks.json"
    kept = json.loads(previous.read_text()) if previous.is_file() else []
    kept = [r for r in kept if (r["model"], r["metric"]) not in measured]
    write("notebooks", sorted(kept + rows, key=lambda r: (r["model"], r["metric"] != "quick_run")))


if __name__ == "__main__":
    main()
