"""What every recipe shares: the budget flags, the command a checkpoint records, the
dataset it was trained on, and saving at the end of a run."""

from __future__ import annotations

import argparse
import dataclasses
import os
import shlex
from pathlib import Path

import torch

from .. import data, hub, train


def default(config_cls, field: str):
    """The default of one field of a family's config: the flag's default is the model's."""
    return next(f.default for f in dataclasses.fields(config_cls) if f.name == field)


def option(p, flag: str, config_cls, field: str, help: str = "", **kwargs) -> None:  # noqa: A002
    """A flag whose default (and type) is the default of `field` in the family's config."""
    value = default(config_cls, field)
    p.add_argument(flag, type=type(value), default=value, help=help, **kwargs)


def data_arguments(p: argparse.ArgumentParser, dataset: str) -> None:
    p.add_argument("--data", default=dataset, help=f"a dataset (default: {dataset})")
    p.add_argument("--fallback", default=None, help="a bundled set to use if --data is absent")


def run_arguments(
    p, *, steps: int, lr: float | str, batch: int | str, minutes: bool = True
) -> None:
    """--steps, --lr, --batch-size, --device, --seed and --out; with `minutes`, also the
    time budget (--minutes, --eval-minutes), which `budget` hands to `train.fit`."""
    alone = "; with --minutes alone, as many as the time allows" if minutes else ""
    p.add_argument("--steps", type=int, default=None,
                   help=f"training steps (default: {steps:,}{alone})")  # fmt: skip
    # a number is the default; a str says what the default depends on
    p.add_argument(
        "--lr",
        type=float,
        default=None if isinstance(lr, str) else lr,
        help="learning rate" + (f" (default: {lr})" if isinstance(lr, str) else ""),
    )
    p.add_argument(
        "--batch-size",
        type=int,
        default=None if isinstance(batch, str) else batch,
        help="examples per step" + (f" (default: {batch})" if isinstance(batch, str) else ""),
    )
    p.set_defaults(default_steps=steps)
    if minutes:
        p.add_argument(
            "--minutes",
            type=float,
            default=None,
            help="stop after this much training time (the clock leaves out measuring and saving)",
        )
        p.add_argument(
            "--eval-minutes",
            type=float,
            nargs="*",
            default=[],
            help="also measure the model when training has taken these minutes; "
            "the points land in the checkpoint's curve",
        )
    p.add_argument("--device", default="auto", help="auto (CUDA, MPS, else CPU), cpu, cuda, ...")
    p.add_argument("--seed", type=int, default=0, help="of everything random")
    p.add_argument("--out", required=True, help="checkpoint path, without extension")


def budget(args, *, checkpoint_every: int = 1000) -> dict:
    """`train.fit`'s budget and resume arguments from the flags: --steps (with --minutes
    alone, as many as the time allows; with neither, the recipe's default), --minutes, and
    --eval-minutes."""
    minutes, marks = getattr(args, "minutes", None), getattr(args, "eval_minutes", [])
    if minutes is not None and minutes <= 0:
        raise ValueError(f"--minutes must be > 0, got {minutes}")
    steps = args.steps if args.steps is not None else (None if minutes else args.default_steps)
    return {
        "steps": steps,
        "max_seconds": None if minutes is None else 60 * minutes,
        "eval_at_seconds": [60 * m for m in marks],
        "seed": args.seed,
        "checkpoint": f"{args.out}-training",
        "checkpoint_every": checkpoint_every,
        "resume": True,
    }


def device(args) -> torch.device:
    return train.device() if args.device == "auto" else torch.device(args.device)


def curve(history, *, drop_last: bool = False) -> list[dict]:
    """The measurements training made at its --eval-minutes marks, as minutes and numbers."""
    evals = history.evals[:-1] if drop_last else history.evals
    return [
        {"minutes": round(e["seconds"] / 60, 2), "step": e["step"], **numbers(e)} for e in evals
    ]


def numbers(record: dict) -> dict:
    """An evaluation record's measurements, without its step and time."""
    return {k: v for k, v in record.items() if k not in ("step", "seconds")}


class Interrupted(Exception):
    """Ctrl-C stopped a recipe's training: nothing is measured or saved as finished, and
    the resumable training state (saved by `train.fit` when it was interrupted) stays."""


def stop_if_interrupted(history) -> None:
    """Called by every recipe right after `train.fit`: a run stopped by Ctrl-C goes no
    further, so its half-trained model is neither measured nor saved as finished."""
    if history is not None and history.interrupted:
        steps = history.steps[-1] + 1 if history.steps else 0
        raise Interrupted(
            f"training was interrupted after {steps} steps; nothing was saved as finished. "
            "Its state is kept: run the same command again to resume where it stopped."
        )


def trained(history) -> dict:
    """The steps and seconds a run took."""
    return {
        "steps": history.steps[-1] + 1 if history.steps else 0,
        "train_seconds": round(history.seconds[-1], 1) if history.seconds else 0.0,
    }


def finish(model, args, found: dict, *, half: bool = False) -> Path:
    """Save the trained model with its metrics (and the dataset, for `genedu eval`) and
    the command that made it; the resumable training state is then spent."""
    found = {"dataset": args.data, **found}
    saved = hub.save(model, args.out, metrics=found, command=command_line(args), half=half)
    train.discard_training_state(f"{args.out}-training")
    return saved


def command_line(args) -> str:
    """How this run was invoked, as `genedu ...`, with no path of this machine in it: an
    absolute path keeps only its last part (an absolute ``--out`` becomes the checkpoint's
    name)."""

    def portable(arg: str) -> str:
        flag, eq, value = arg.rpartition("=") if arg.startswith("--") else ("", "", arg)
        return f"{flag}{eq}{Path(value).name}" if os.path.isabs(value) else arg

    return " ".join(["genedu", *(shlex.quote(portable(a)) for a in args.argv)])


def recorded_dataset(name) -> str | None:
    """The dataset a checkpoint was trained on, as its metrics record it: the `dataset`
    field, or (older checkpoints) the first word of `data` when that names a dataset."""
    found = hub.info(name).get("metrics") or {}
    named = found.get("dataset") or str(found.get("data", "")).split(" ")[0]
    return named if named in data.REGISTRY else None


def binarised_digits(dataset: str) -> bool:
    """Whether a family's default likelihood for `dataset` is Bernoulli on binarised pixels:
    the MNIST digits only (Fashion-MNIST's grey levels carry the garment's texture)."""
    return dataset in ("mnist", "mnist5k")


def test_images(images: torch.Tensor, likelihood: str, seed: int):
    """The test images as a model with this likelihood reads them: binarised with a
    generator seeded by `seed` (Bernoulli), or grey levels in [0, 1]; and that generator,
    to go on drawing from, so that training's measurement and `genedu eval` agree."""
    g = torch.Generator().manual_seed(seed)
    x = data.binarize(images, generator=g) if likelihood == "bernoulli" else data.to_unit(images)
    return x, g
