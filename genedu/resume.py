"""What a training run leaves behind so that it can resume exactly: its History, and
a checkpoint of the weights, every optimiser's state and the RNG, written without
pickles (safetensors plus JSON), with the per-step log appended beside it.

`genedu.train.fit` saves one every N steps, on Ctrl-C and on a crash, and `resume=True`
continues from it to the numbers an uninterrupted run gives.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import torch

from . import hub
from .distributed import is_main


@dataclass
class History:
    """What `fit` saw: one entry per step, plus any evaluations, against wall-clock time."""

    steps: list[int] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    logs: dict[str, list[float]] = field(default_factory=dict)
    evals: list[dict] = field(default_factory=list)
    interrupted: bool = False

    def __getitem__(self, key: str) -> list[float]:
        return self.logs[key]

    def last(self, key: str = "loss") -> float:
        return self.logs[key][-1]


def _flatten_optimizer(opt: torch.optim.Optimizer) -> tuple[dict, dict]:
    """Split an optimiser's state into tensors (for safetensors) and JSON."""
    sd = opt.state_dict()
    tensors, plain = {}, {}
    for pid, state in sd["state"].items():
        for k, v in state.items():
            if isinstance(v, torch.Tensor):
                tensors[f"{pid}/{k}"] = v
            else:
                plain[f"{pid}/{k}"] = v
    return tensors, {"param_groups": sd["param_groups"], "plain": plain}


def _restore_optimizer(opt: torch.optim.Optimizer, tensors: dict, meta: dict) -> None:
    state: dict[int, dict] = {}
    for key, v in tensors.items():
        pid, k = key.split("/", 1)
        state.setdefault(int(pid), {})[k] = v
    for key, v in meta["plain"].items():
        pid, k = key.split("/", 1)
        state.setdefault(int(pid), {})[k] = v
    opt.load_state_dict({"state": state, "param_groups": meta["param_groups"]})


TRAINING_STATE = "genedu-training-state/2"


def history_file(path) -> Path:
    """Where a training checkpoint keeps its per-step log: one JSON line per step,
    appended at each save, so saving costs what changed, not the whole history."""
    stem = hub._stem(path)
    return stem.parent / f"{stem.name}.history.jsonl"


def _write_history(path, history: History, written: int) -> int:
    """Append the steps after the first `written` to the log; return how many it holds."""
    with history_file(path).open("a") as f:
        for i in range(written, len(history.steps)):
            row = {"step": history.steps[i], "seconds": history.seconds[i]}
            row.update({k: v[i] for k, v in history.logs.items()})
            f.write(json.dumps(row) + "\n")
    return len(history.steps)


def _read_history(path, lines: int) -> History:
    """The first `lines` steps of the log (a crash may have left more, never fewer)."""
    log = history_file(path)
    rows = log.read_text().splitlines()[:lines] if log.is_file() else []
    if len(rows) < lines:
        raise hub.CheckpointError(f"{log} holds {len(rows)} steps; the checkpoint needs {lines}")
    history = History()
    for row in map(json.loads, rows):
        history.steps.append(row.pop("step"))
        history.seconds.append(row.pop("seconds"))
        for k, v in row.items():
            history.logs.setdefault(k, []).append(v)
    log.write_text("".join(r + "\n" for r in rows))  # drop what a crash left past `lines`
    return history


def save_training_state(path, model, optimizers, step, history, seed, written=0, rng_state=None):
    """A resumable checkpoint: weights, every optimiser, the RNG state and the history,
    without pickles. `written`: how many steps of the history the log already holds.
    Returns how many it holds now."""
    if isinstance(optimizers, torch.optim.Optimizer):
        optimizers = {"model": optimizers}
    tensors = {f"model/{k}": v for k, v in model.state_dict().items()}
    metas = {}
    for name, opt in optimizers.items():
        opt_tensors, metas[name] = _flatten_optimizer(opt)
        tensors.update({f"optim/{name}/{k}": v for k, v in opt_tensors.items()})
    tensors["rng/torch"] = torch.get_rng_state() if rng_state is None else rng_state
    hub._stem(path).parent.mkdir(parents=True, exist_ok=True)
    written = _write_history(path, history, written)
    meta = {
        "format": TRAINING_STATE,
        "step": step,
        "seed": seed,
        "optimizers": metas,
        "history": {"lines": written, "evals": history.evals, "interrupted": history.interrupted},
    }
    hub.write_tensors(path, tensors, json.loads(json.dumps(meta)))
    return written


def discard_training_state(path) -> None:
    """Remove a training checkpoint and its log once the model they made is saved."""
    if is_main():
        for leftover in (*hub._files(hub._stem(path)), history_file(path)):
            leftover.unlink(missing_ok=True)


def load_training_state(path, model, optimizers) -> tuple[int, History]:
    """Restore what `save_training_state` wrote into `model` and `optimizers`;
    returns (step, history)."""
    if isinstance(optimizers, torch.optim.Optimizer):
        optimizers = {"model": optimizers}
    tensors, meta = hub.read_tensors(path)
    if meta.get("format") != TRAINING_STATE:
        raise hub.CheckpointError(
            f"{path} is not a genedu training checkpoint ({TRAINING_STATE}); "
            f"its format is {meta.get('format')!r}"
        )
    if set(meta["optimizers"]) != set(optimizers):
        raise hub.CheckpointError(
            f"{path} holds optimisers {sorted(meta['optimizers'])}, this run has "
            f"{sorted(optimizers)}"
        )
    weights = {k[len("model/") :]: v for k, v in tensors.items() if k.startswith("model/")}
    hub.load_state(model, weights, source=f"training checkpoint {path}")
    for name, opt in optimizers.items():
        prefix = f"optim/{name}/"
        own = {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}
        _restore_optimizer(opt, own, meta["optimizers"][name])
    torch.set_rng_state(tensors["rng/torch"])
    history = _read_history(path, meta["history"]["lines"])
    history.evals = meta["history"]["evals"]
    return meta["step"], history
