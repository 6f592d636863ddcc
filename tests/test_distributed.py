"""`genedu.train.fit` under torchrun: 2 gloo processes on the CPU make the updates that
one process makes with the same global batch and seed, resume included, and every
`genedu train` command runs under ``torchrun -m genedu``."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from genedu import hub

ROOT = Path(__file__).resolve().parents[1]
WORKER = Path(__file__).with_name("ddp_worker.py")


def launch(ranks: int, *args, cwd=None, step: str = "") -> subprocess.CompletedProcess:
    """Run the worker (or with `-m`, a module) as one process, or under torchrun."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1",
           "GENEDU_TEST_STEP": step}  # fmt: skip
    env.pop("WORLD_SIZE", None)
    target = list(args) if args[0] == "-m" else [str(WORKER), *args]
    if ranks == 1:
        command = [sys.executable, *target]
    else:
        command = [sys.executable, "-m", "torch.distributed.run", "--standalone",
                   f"--nproc-per-node={ranks}", *target]  # fmt: skip
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300, cwd=cwd)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done


def result(out: Path, rank: int = 0) -> dict:
    return torch.load(f"{out}.rank{rank}.pt")


def assert_same_weights(a: dict, b: dict) -> None:
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=1e-5, atol=1e-6, msg=k)


def test_two_ranks_make_the_updates_of_one_process(tmp_path):
    launch(1, str(tmp_path / "one"), "6")
    launch(2, str(tmp_path / "two"), "6")
    one, two0 = result(tmp_path / "one"), result(tmp_path / "two")
    two1 = result(tmp_path / "two", rank=1)
    assert one["world"] == 1 and two0["world"] == 2
    assert_same_weights(one["weights"], two0["weights"])
    assert_same_weights(two0["weights"], two1["weights"])  # the replicas stayed equal
    # the logged loss is the global batch's: both ranks' halves averaged
    torch.testing.assert_close(torch.tensor(one["loss"]), torch.tensor(two0["loss"]))
    # and the test can fail: half as many steps is a different model
    launch(1, str(tmp_path / "short"), "3")
    with pytest.raises(AssertionError):
        assert_same_weights(one["weights"], result(tmp_path / "short")["weights"])


@pytest.mark.parametrize("step", ["clipped", "wrapped"])
def test_steps_built_on_loss_step_average_their_gradients_too(step, tmp_path):
    """With grad_clip, or a step of its own around loss_step (diffusion's, with its EMA),
    2 ranks still make the updates of one process."""
    launch(1, str(tmp_path / "one"), "6", step=step)
    launch(2, str(tmp_path / "two"), "6", step=step)
    assert_same_weights(result(tmp_path / "one")["weights"], result(tmp_path / "two")["weights"])


def test_a_resumed_two_rank_run_ends_where_an_uninterrupted_one_does(tmp_path):
    launch(1, str(tmp_path / "one"), "6")
    checkpoint = tmp_path / "state"
    launch(2, str(tmp_path / "first"), "3", str(checkpoint))  # stops at 3, saved at 3
    assert hub.exists(checkpoint)
    launch(2, str(tmp_path / "resumed"), "6", str(checkpoint))
    resumed = result(tmp_path / "resumed")["weights"]
    assert_same_weights(result(tmp_path / "one")["weights"], resumed)


def test_genedu_train_runs_under_torchrun_and_rank_0_alone_saves(tmp_path):
    out = tmp_path / "vae"
    done = launch(2, "-m", "genedu", "train", "vae", "--data", "mnist5k", "--steps", "4",
                  "--batch-size", "32", "--out", str(out), cwd=tmp_path)  # fmt: skip
    model = hub.load(out)
    assert model.config.latent_dim > 0
    assert done.stdout.count("saved") <= 1  # one rank printed
