"""One training loop for every family, plus budgets and seeding.

`fit` walks seeded batches and hands each to a *step*: by default `loss_step`, which
computes ``model.loss(batch)["loss"]``, steps back and steps the optimiser; a GAN
passes `genedu.gan.train_step` (D, then G). Everything around the step lives here, once,
so a learner loses nothing: a NaN guard that names the step, Ctrl-C that returns the
history so far, checkpoints that resume to exactly the numbers an uninterrupted run
gives, and the same code under ``torchrun`` with DistributedDataParallel (see
`distributed`): rank 0 alone logs, evaluates and saves.
"""

from __future__ import annotations

import functools
import itertools
import math
import os
import random
import time
from collections.abc import Callable, Mapping, Sequence

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from . import hub
from .data import ImageSet, to_unit
from .distributed import Replica, agree, distributed
from .resume import (  # noqa: F401 - train.History etc., as the chapters call them
    TRAINING_STATE,
    History,
    discard_training_state,
    history_file,
    load_training_state,
    save_training_state,
)

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
    """The best device here: CUDA (under torchrun, this rank's GPU), then Apple's MPS,
    then the CPU."""
    if torch.cuda.is_available():
        return torch.device(f"cuda:{os.environ.get('LOCAL_RANK', '0')}")
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


class TrainingDiverged(FloatingPointError):
    """The loss became NaN or infinite. `.history` holds everything up to that step."""

    def __init__(self, message: str, history: History):
        super().__init__(message)
        self.history = history


def _as_tensors(data) -> tuple[torch.Tensor, ...]:
    if isinstance(data, ImageSet):
        return (data.images,)
    tensors = (data,) if isinstance(data, torch.Tensor) else tuple(data)
    if not tensors or not all(isinstance(t, torch.Tensor) for t in tensors):
        raise ValueError("fit: data must be a Tensor, a tuple of Tensors or an ImageSet")
    if len({len(t) for t in tensors}) != 1:
        raise ValueError(f"fit: tensors in data differ in length: {[len(t) for t in tensors]}")
    if len(tensors[0]) == 0:
        raise ValueError("fit: data is empty; expected at least one example")
    return tensors


def _default_transform(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    return to_unit(x) if x.dtype == torch.uint8 else x


# ----------------------------------------------------------------------------- the step


def loss_step(
    model: nn.Module,
    batch: Batch,
    optimizers: Mapping[str, torch.optim.Optimizer],
    *,
    step: int,
    generator: torch.Generator,
    grad_clip: float | None = None,
) -> dict[str, torch.Tensor]:
    """The default step: ``model.loss(batch)["loss"]``, backward, one optimiser step.

    Returns what `model.loss` returned, for the log. A NaN or inf loss raises
    TrainingDiverged before the weights change.
    """
    out = model.loss(batch)
    if not isinstance(out, dict) or "loss" not in out:
        raise ValueError("model.loss(batch) must return a dict with the key 'loss'")
    if len(optimizers) != 1:
        raise ValueError(
            f"loss_step steps one optimiser, and this model has {sorted(optimizers)}: pass "
            "its own step, for a GAN step=genedu.gan.train_step"
        )
    (opt,) = optimizers.values()
    loss = out["loss"]
    if not torch.isfinite(loss):
        raise TrainingDiverged(
            f"the loss became {loss.item()} at step {step}; lower the learning rate "
            f"(now {opt.param_groups[0]['lr']}) or clip gradients (grad_clip=)",
            History(),
        )
    opt.zero_grad(set_to_none=True)
    loss.backward()
    if grad_clip is not None:
        nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    opt.step()
    return out


def warmup_cosine(warmup: float = 0.05, floor: float = 0.1) -> Callable[[float], float]:
    """A learning-rate factor for `fit`'s lr_schedule, as a function of the progress p in
    [0, 1]: a linear rise over the first `warmup` of training, then a cosine fall to
    `floor` at the end. `fit` measures p in steps or, under max_seconds, in training time,
    so a run limited by minutes still ends its decay when its time is up."""

    def factor(progress: float) -> float:
        if progress < warmup:
            return max(progress, 1e-3) / warmup
        done = min(1.0, (progress - warmup) / max(1e-9, 1 - warmup))
        return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * done))

    return factor


def passed_mark(marks: list[float], clock: float) -> bool:
    """Whether the training clock has reached the next of the sorted `marks` (seconds);
    every mark it has reached is removed, so a slow step triggers one evaluation."""
    passed = bool(marks) and clock >= marks[0]
    while marks and clock >= marks[0]:
        marks.pop(0)
    return passed


def _optimizers(model, optimizer, lr: float, betas) -> dict[str, torch.optim.Optimizer]:
    """The optimisers `fit` steps, by name: what the caller passed, else the model's own
    (`model.optimizers(lr=, betas=)`, as a GAN has one per player), else one Adam."""
    if isinstance(optimizer, torch.optim.Optimizer):
        return {"model": optimizer}
    if optimizer is not None:
        return dict(optimizer)
    if hasattr(model, "optimizers"):
        return dict(model.optimizers(lr=lr, betas=betas))
    return {"model": torch.optim.Adam(model.parameters(), lr=lr, betas=betas or (0.9, 0.999))}


def _floats(out: dict) -> dict[str, float]:
    """A step's numbers for the log: scalars as floats, anything else as NaN."""
    return {
        k: float(v.detach()) if isinstance(v, torch.Tensor) and v.dim() == 0
        else float(v) if isinstance(v, int | float) else math.nan
        for k, v in out.items()
    }  # fmt: skip


def fit(
    model: nn.Module,
    data: torch.Tensor | tuple[torch.Tensor, ...] | ImageSet,
    *,
    steps: int | None,
    step: Callable[..., dict] = loss_step,
    lr: float = 1e-3,
    betas: tuple[float, float] | None = None,
    batch_size: int = 128,
    transform: Callable[..., torch.Tensor] | None = None,
    optimizer: torch.optim.Optimizer | Mapping[str, torch.optim.Optimizer] | None = None,
    seed: int = 0,
    device: str | torch.device | None = None,
    grad_clip: float | None = None,
    lr_schedule: Callable[[float], float] | None = None,
    checkpoint: str | os.PathLike | None = None,
    checkpoint_every: int | None = None,
    resume: bool = False,
    eval_fn: Callable[[nn.Module], dict[str, float]] | None = None,
    eval_every: int | None = None,
    eval_at_seconds: Sequence[float] = (),
    max_seconds: float | None = None,
    progress: bool = True,
) -> History:
    """Train `model` for `steps` steps of `step` on seeded batches of `data` (None: until
    `max_seconds` of training).

    data: a Tensor, a tuple of Tensors sharing their first dimension (for example
        ``(images, labels)``) or an ImageSet. The batch handed to the step is the
        Tensor, or the tuple, after `transform`.
    step: called as ``step(model, batch, optimizers, step=i, generator=g)`` and returns
        the numbers to log. The default, `loss_step`, minimises ``model.loss(batch)
        ["loss"]``; a GAN passes `genedu.gan.train_step`. `g` is seeded by `seed` and i.
        A step that calls `loss_step` (as diffusion's does, then updates an EMA) says so
        with ``step.replicate = True``, so that under torchrun its loss runs through DDP.
    lr / betas: for the optimisers `fit` builds: the model's own ``model.optimizers(lr=,
        betas=)`` when it has one (a GAN: one Adam per player), else one Adam; betas None
        means that optimiser's default. Or pass `optimizer` (one, or a dict by name).
    transform: applied to the first tensor of each batch as ``transform(x, generator=g)``;
        by default uint8 images become floats in [0, 1]. Pass `genedu.data.binarize` for
        dynamic binarisation: it draws from the step's seeded generator, so runs repeat.
    lr_schedule: a factor on the learning rate as a function of the progress in [0, 1],
        for example `warmup_cosine`: the step over `steps`, or under max_seconds the
        training time over it, whichever is further.
    Batches walk a fresh seeded permutation each epoch, so the order depends only on
    `seed` and the step: a resumed run sees exactly the batches it would have seen.
    checkpoint / checkpoint_every: save a resumable state there every N steps, at the
        end, on Ctrl-C and on a crash; `resume=True` continues from it when it exists,
        with this call's learning rate.
    eval_fn / eval_every: call ``eval_fn(model)`` (in eval mode, no grad) every N steps
        and at the end; its numbers land in ``history.evals`` with the training time.
    eval_at_seconds: also evaluate when the training clock passes each of these marks.
    max_seconds: stop once training has taken this long. The clock (``history.seconds``)
        counts training steps only, not evaluations or checkpoints.
    Under torchrun each of the N ranks takes 1/N of every batch (batch_size is the
    global batch), gradients are averaged, and rank 0 alone evaluates and saves.
    Returns the History. A NaN or inf loss raises TrainingDiverged naming the step and
    keeps the last checkpoint; Ctrl-C stops cleanly and returns the history so far with
    ``interrupted=True``.
    """
    tensors = _as_tensors(data)
    n = len(tensors[0])
    batch_size = min(batch_size, n)
    if steps is None and max_seconds is None:
        raise ValueError("fit: give steps, max_seconds, or both")
    if (steps is not None and steps < 0) or batch_size < 1:
        raise ValueError(f"fit: steps must be >= 0 and batch_size >= 1, got {steps}, {batch_size}")
    if max_seconds is not None and not max_seconds >= 0:
        raise ValueError(f"fit: max_seconds must be >= 0 (0: one step), got {max_seconds}")
    if checkpoint_every is not None and checkpoint is None:
        raise ValueError("fit: checkpoint_every needs a checkpoint path")
    rank, world = distributed()
    if batch_size % world:
        raise ValueError(f"fit: batch_size {batch_size} must divide among {world} processes")
    transform = transform or _default_transform
    replicate = getattr(step, "replicate", step is loss_step)  # under DDP, loss through it
    if grad_clip is not None:
        step = functools.partial(step, grad_clip=grad_clip)
    if device is None and world > 1 and torch.cuda.is_available():
        device = f"cuda:{os.environ.get('LOCAL_RANK', '0')}"
    dev = torch.device(device) if device is not None else next(model.parameters()).device
    model.to(dev)
    optimizers = _optimizers(model, optimizer, lr, betas)
    base_lrs = {k: [g["lr"] for g in o.param_groups] for k, o in optimizers.items()}

    seed_everything(seed)
    start, history, written = 0, History(), 0
    if resume and checkpoint is not None and hub.exists(checkpoint):
        start, history = load_training_state(checkpoint, model, optimizers)
        history.interrupted, written = False, len(history.steps)
        for name, opt in optimizers.items():  # this call's learning rate
            for group, base in zip(opt.param_groups, base_lrs[name], strict=True):
                group["lr"] = base
    if world > 1:  # every rank starts from rank 0's weights, and draws its own noise
        for t in model.state_dict().values():
            torch.distributed.broadcast(t, 0)
        torch.manual_seed(seed * 1_000_003 + 7919 * start + rank)
    runner = model
    if world > 1 and replicate and any(p.requires_grad for p in model.parameters()):
        runner = Replica(model)
    local = batch_size // world
    per_epoch = n // batch_size
    perm_epoch, perm = -1, None
    clock = history.seconds[-1] if history.seconds else 0.0  # training seconds so far
    marks = sorted(s for s in eval_at_seconds if s > clock)

    def done_share(index: int, clock: float) -> float:  # the schedule's progress
        by_time = clock / max_seconds if max_seconds else 0.0
        by_steps = index / max(steps, 1) if steps is not None else 0.0
        return min(1.0, max(by_steps, by_time))

    def evaluate(done: int) -> None:
        model.eval()
        with torch.no_grad():
            record = {"step": done, "seconds": clock, **eval_fn(model)}
        model.train()
        history.evals.append(record)

    def save(done: int, rng_state=None) -> None:
        nonlocal written
        if rank == 0:
            written = save_training_state(
                checkpoint, model, optimizers, done, history, seed, written, rng_state
            )

    indices = range(start, steps) if steps is not None else itertools.count(start)
    bar = tqdm(indices, initial=start, total=steps, leave=False,
               disable=not progress or rank > 0)  # fmt: skip
    evaluating = eval_fn is not None and rank == 0
    model.train()
    done = start  # steps completed: what a checkpoint resumes from
    in_step, rng_before = False, None  # a Ctrl-C mid-step resumes from the step's start
    try:
        for index in bar:
            in_step, rng_before = True, torch.get_rng_state()
            t = time.perf_counter()
            epoch, i = divmod(index, per_epoch)
            if epoch != perm_epoch:
                g = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
                perm_epoch, perm = epoch, torch.randperm(n, generator=g)
            idx = perm[i * batch_size : (i + 1) * batch_size]
            g_step = torch.Generator().manual_seed(seed * 1_000_003 + 7919 * index + 1)
            batch = [transform(tensors[0][idx], generator=g_step)] + [t[idx] for t in tensors[1:]]
            batch = [b[rank * local : (rank + 1) * local].to(dev) for b in batch]
            if lr_schedule is not None:
                for name, opt in optimizers.items():
                    for group, base in zip(opt.param_groups, base_lrs[name], strict=True):
                        group["lr"] = base * lr_schedule(done_share(index, clock))
            out = step(runner, batch[0] if len(batch) == 1 else tuple(batch), optimizers,
                       step=index, generator=g_step)  # fmt: skip
            done, in_step = index + 1, False
            clock += time.perf_counter() - t
            stop = max_seconds is not None and clock >= max_seconds
            logs, stop = agree(_floats(out), stop, world)
            watched = {"loss": logs["loss"]} if "loss" in logs else logs
            if not all(math.isfinite(v) for v in watched.values()):
                raise TrainingDiverged(
                    f"a loss became non-finite at step {index} ({logs}); lower the learning "
                    "rate or clip gradients",
                    history,
                )

            history.steps.append(index)
            history.seconds.append(clock)
            for k, v in logs.items():
                history.logs.setdefault(k, []).append(v)
            if index % 10 == 0:
                bar.set_postfix({k: f"{v:.4g}" for k, v in list(logs.items())[:2]})
            at_mark = passed_mark(marks, clock)
            if evaluating and (at_mark or (eval_every and done % eval_every == 0)):
                evaluate(done)
            if checkpoint_every and done % checkpoint_every == 0:
                save(done)
            if stop:
                break
    except KeyboardInterrupt:
        history.interrupted = True
        print(f"genedu: interrupted after {done} steps; returning the history so far.")
    except TrainingDiverged as err:
        err.history = history  # the weights may be NaN now: keep the last checkpoint
        raise
    except Exception:
        if checkpoint is not None:  # a crash keeps what was trained so far
            save(done, rng_before if in_step else None)
        raise
    finally:
        bar.close()
    if checkpoint is not None and (checkpoint_every or history.interrupted):
        # Interrupted inside a step: that step is redone on resume, from its starting RNG.
        save(done, rng_before if in_step else None)
    if evaluating and not history.interrupted:
        if not (history.evals and history.evals[-1]["step"] == done):
            evaluate(done)
    model.eval()
    return history
