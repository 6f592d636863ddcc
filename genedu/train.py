"""One plain training loop for every likelihood-style model, plus budgets and seeding.

`fit` is deliberately short: pick a batch, compute ``model.loss(batch)["loss"]``,
step the optimiser, log. Everything around it exists so a learner loses nothing:
a NaN guard that names the step, Ctrl-C that returns the history so far, and
checkpoints that resume to exactly the numbers an uninterrupted run gives.
GANs keep their own two-player loop in ``gan.py``.
"""

from __future__ import annotations

import json
import math
import os
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from . import hub
from .data import ImageSet, to_unit

Batch = torch.Tensor | tuple[torch.Tensor, ...]


def is_quick() -> bool:
    """True when GENEDU_QUICK=1: every run shrinks to seconds (tests, CI, the default book)."""
    return os.environ.get("GENEDU_QUICK", "").strip().lower() in ("1", "true", "yes")


def budget(*, quick, full):
    """`quick` under GENEDU_QUICK=1, else `full`: the one visible place a notebook sets a size."""
    return quick if is_quick() else full


def budget_note(seconds: float, *, quick: str, full: str) -> str:
    """Print and return the line a train-here cell ends with: what ran, and the other budget.

    quick / full: what each budget trains, e.g. ``"40 steps"`` and ``"3,000 steps (about
    4 min)"``. Under GENEDU_QUICK=1 it prints ``quick build: 40 steps in 3.1 s; without
    GENEDU_QUICK this trains 3,000 steps (about 4 min)``, so a reader never mistakes a
    seconds-long run for the real one; otherwise ``full build: 3,000 steps ... in 241 s``.
    """
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"budget_note: seconds must be a finite number >= 0, got {seconds}")
    if is_quick():
        line = f"quick build: {quick} in {seconds:.1f} s; without GENEDU_QUICK this trains {full}"
    else:
        line = f"full build: {full}, done in {seconds:.0f} s (GENEDU_QUICK=1 trains {quick})"
    print(line)
    return line


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and PyTorch so that a CPU run repeats exactly."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def device() -> torch.device:
    """The best device here: CUDA, then Apple's MPS, then the CPU."""
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


class TrainingDiverged(FloatingPointError):
    """The loss became NaN or infinite. `.history` holds everything up to that step."""

    def __init__(self, message: str, history: History):
        super().__init__(message)
        self.history = history


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


def _as_tensors(data) -> tuple[torch.Tensor, ...]:
    if isinstance(data, ImageSet):
        return (data.images,)
    tensors = (data,) if isinstance(data, torch.Tensor) else tuple(data)
    if not tensors or not all(isinstance(t, torch.Tensor) for t in tensors):
        raise ValueError("fit: data must be a Tensor, a tuple of Tensors or an ImageSet")
    if len({len(t) for t in tensors}) != 1:
        raise ValueError(f"fit: tensors in data differ in length: {[len(t) for t in tensors]}")
    return tensors


def _default_transform(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    return to_unit(x) if x.dtype == torch.uint8 else x


def _flatten_optimizer(opt: torch.optim.Optimizer) -> tuple[dict, dict]:
    """Split an optimiser's state into tensors (for safetensors) and JSON."""
    sd = opt.state_dict()
    tensors, plain = {}, {}
    for pid, state in sd["state"].items():
        for k, v in state.items():
            if isinstance(v, torch.Tensor):
                tensors[f"optim/{pid}/{k}"] = v
            else:
                plain[f"{pid}/{k}"] = v
    return tensors, {"param_groups": sd["param_groups"], "plain": plain}


def _restore_optimizer(opt: torch.optim.Optimizer, tensors: dict, meta: dict) -> None:
    state: dict[int, dict] = {}
    for key, v in tensors.items():
        if key.startswith("optim/"):
            _, pid, k = key.split("/", 2)
            state.setdefault(int(pid), {})[k] = v
    for key, v in meta["plain"].items():
        pid, k = key.split("/", 1)
        state.setdefault(int(pid), {})[k] = v
    opt.load_state_dict({"state": state, "param_groups": meta["param_groups"]})


def save_training_state(
    path, model, opt, step: int, history: History, seed: int, rng_state: torch.Tensor | None = None
) -> None:
    """A resumable checkpoint: weights, optimiser, RNG state, history (no pickles).

    rng_state: the global torch RNG state to resume from (default: the current one).
    """
    opt_tensors, opt_meta = _flatten_optimizer(opt)
    tensors = {f"model/{k}": v for k, v in model.state_dict().items()}
    tensors.update(opt_tensors)
    tensors["rng/torch"] = torch.get_rng_state() if rng_state is None else rng_state
    meta = {
        "format": "genedu-training-state/1",
        "step": step,
        "seed": seed,
        "optimizer": opt_meta,
        "history": asdict(history),
    }
    hub.write_tensors(path, tensors, json.loads(json.dumps(meta)))


def load_training_state(path, model, opt) -> tuple[int, History]:
    """Restore what `save_training_state` wrote; returns (step, history)."""
    tensors, meta = hub.read_tensors(path)
    if meta.get("format") != "genedu-training-state/1":
        raise hub.CheckpointError(f"{path} is not a genedu training checkpoint")
    weights = {k[len("model/") :]: v for k, v in tensors.items() if k.startswith("model/")}
    hub.load_state(model, weights, source=f"training checkpoint {path}")
    _restore_optimizer(opt, tensors, meta["optimizer"])
    torch.set_rng_state(tensors["rng/torch"])
    return meta["step"], History(**meta["history"])


def warmup_cosine(steps: int, warmup: int = 100, floor: float = 0.1) -> Callable[[int], float]:
    """A learning-rate factor for `fit`'s lr_schedule: a linear rise over `warmup` steps,
    then a cosine fall to `floor` at `steps` (and `floor` after)."""

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        done = min(1.0, (step - warmup) / max(1, steps - warmup))
        return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * done))

    return factor


def passed_mark(marks: list[float], clock: float) -> bool:
    """Whether the training clock has reached the next of the sorted `marks` (seconds);
    every mark it has reached is removed, so a slow step triggers one evaluation."""
    passed = bool(marks) and clock >= marks[0]
    while marks and clock >= marks[0]:
        marks.pop(0)
    return passed


def fit(
    model: nn.Module,
    data: torch.Tensor | tuple[torch.Tensor, ...] | ImageSet,
    *,
    steps: int,
    lr: float = 1e-3,
    batch_size: int = 128,
    transform: Callable[..., torch.Tensor] | None = None,
    optimizer: torch.optim.Optimizer | None = None,
    seed: int = 0,
    device: str | torch.device | None = None,
    grad_clip: float | None = None,
    lr_schedule: Callable[[int], float] | None = None,
    checkpoint: str | os.PathLike | None = None,
    checkpoint_every: int | None = None,
    resume: bool = False,
    eval_fn: Callable[[nn.Module], dict[str, float]] | None = None,
    eval_every: int | None = None,
    eval_at_seconds: Sequence[float] = (),
    max_seconds: float | None = None,
    progress: bool = True,
) -> History:
    """Train `model` by minimising ``model.loss(batch)["loss"]`` for `steps` steps.

    data: a Tensor, a tuple of Tensors sharing their first dimension (for example
        ``(images, labels)``) or an ImageSet. The batch handed to `model.loss` is the
        Tensor, or the tuple, after `transform`.
    transform: applied to the first tensor of each batch as ``transform(x, generator=g)``;
        by default uint8 images become floats in [0, 1]. Pass `genedu.data.binarize` for
        dynamic binarisation: it draws from a per-step seeded generator, so runs repeat.
    lr_schedule: a factor on the learning rate at each step, for example a cosine decay
        ``lambda step: 0.5 * (1 + math.cos(math.pi * step / steps))``.
    Batches walk a fresh seeded permutation each epoch, so the order depends only on
    `seed` and the step: a resumed run sees exactly the batches it would have seen.
    checkpoint / checkpoint_every: save a resumable state there every N steps, at the
        end, and on Ctrl-C; `resume=True` continues from it when it exists.
    eval_fn / eval_every: call ``eval_fn(model)`` (in eval mode, no grad) every N steps
        and at the end; its numbers land in ``history.evals`` with the training time.
    eval_at_seconds: also evaluate when the training clock passes each of these marks.
    max_seconds: stop once training has taken this long. The clock (``history.seconds``)
        counts training steps only, not evaluations or checkpoints.
    Returns the History. A NaN or inf loss raises TrainingDiverged naming the step;
    Ctrl-C stops cleanly and returns the history so far with ``interrupted=True``.
    """
    tensors = _as_tensors(data)
    n = len(tensors[0])
    if batch_size > n:
        batch_size = n
    if steps < 0 or batch_size < 1:
        raise ValueError(f"fit: steps must be >= 0 and batch_size >= 1, got {steps}, {batch_size}")
    if checkpoint_every is not None and checkpoint is None:
        raise ValueError("fit: checkpoint_every needs a checkpoint path")
    transform = transform or _default_transform
    dev = torch.device(device) if device is not None else next(model.parameters()).device
    model.to(dev)
    opt = optimizer or torch.optim.Adam(model.parameters(), lr=lr)

    base_lrs = [group["lr"] for group in opt.param_groups]  # what lr_schedule scales
    seed_everything(seed)
    start, history = 0, History()
    if resume and checkpoint is not None and hub.exists(checkpoint):
        start, history = load_training_state(checkpoint, model, opt)
        history.interrupted = False
    per_epoch = n // batch_size
    perm_epoch, perm = -1, None
    clock = history.seconds[-1] if history.seconds else 0.0  # training seconds so far
    marks = sorted(s for s in eval_at_seconds if s > clock)

    def evaluate(step: int) -> None:
        model.eval()
        with torch.no_grad():
            record = {"step": step, "seconds": clock, **eval_fn(model)}
        model.train()
        history.evals.append(record)

    bar = tqdm(range(start, steps), initial=start, total=steps, disable=not progress, leave=False)
    model.train()
    done = start  # steps completed: what a checkpoint resumes from
    in_step, rng_before = False, None  # a Ctrl-C mid-step resumes from the step's start
    try:
        for step in bar:
            in_step, rng_before = True, torch.get_rng_state()
            t = time.perf_counter()
            epoch, i = divmod(step, per_epoch)
            if epoch != perm_epoch:
                g = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
                perm_epoch, perm = epoch, torch.randperm(n, generator=g)
            idx = perm[i * batch_size : (i + 1) * batch_size]
            g_step = torch.Generator().manual_seed(seed * 1_000_003 + 7919 * step + 1)
            batch = [transform(tensors[0][idx], generator=g_step)] + [t[idx] for t in tensors[1:]]
            batch = [b.to(dev) for b in batch]

            out = model.loss(batch[0] if len(batch) == 1 else tuple(batch))
            if not isinstance(out, dict) or "loss" not in out:
                raise ValueError("model.loss(batch) must return a dict with the key 'loss'")
            loss = out["loss"]
            if not torch.isfinite(loss):
                raise TrainingDiverged(
                    f"the loss became {loss.item()} at step {step}; lower the learning rate "
                    f"(now {opt.param_groups[0]['lr']}) or clip gradients (grad_clip=)",
                    history,
                )
            if lr_schedule is not None:
                for group, base in zip(opt.param_groups, base_lrs, strict=True):
                    group["lr"] = base * lr_schedule(step)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if grad_clip is not None:
                nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
            opt.step()
            done, in_step = step + 1, False
            clock += time.perf_counter() - t

            history.steps.append(step)
            history.seconds.append(clock)
            for k, v in out.items():
                history.logs.setdefault(k, []).append(
                    float(v.detach()) if v.dim() == 0 else math.nan
                )
            if step % 10 == 0:
                bar.set_postfix(loss=f"{loss.item():.4g}")
            at_mark = passed_mark(marks, clock)
            if eval_fn is not None and (at_mark or (eval_every and done % eval_every == 0)):
                evaluate(done)
            if checkpoint_every and done % checkpoint_every == 0:
                save_training_state(checkpoint, model, opt, done, history, seed)
            if max_seconds is not None and clock >= max_seconds:
                break
    except KeyboardInterrupt:
        history.interrupted = True
        print(f"genedu: interrupted after {done} steps; returning the history so far.")
    except Exception:
        if checkpoint is not None:  # a crash keeps what was trained so far
            save_training_state(
                checkpoint, model, opt, done, history, seed, rng_before if in_step else None
            )
        raise
    finally:
        bar.close()
    if checkpoint is not None and (checkpoint_every or history.interrupted):
        # Interrupted inside a step: that step is redone on resume, from its starting RNG.
        save_training_state(
            checkpoint, model, opt, done, history, seed, rng_before if in_step else None
        )
    if (
        eval_fn is not None
        and not history.interrupted
        and not (history.evals and history.evals[-1]["step"] == done)
    ):
        evaluate(done)
    model.eval()
    return history
