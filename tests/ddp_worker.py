"""Run by tests/test_distributed.py, as one process or under torchrun with N ranks:
train a small deterministic autoencoder with `genedu.train.fit` and save its weights.

    python tests/ddp_worker.py OUT STEPS [CHECKPOINT]

GENEDU_TEST_STEP=clipped trains with grad_clip; =wrapped with a step of its own that
calls loss_step and says so (``replicate = True``), as diffusion's does.
"""

import os
import sys

import torch
import torch.nn.functional as F
from torch import nn

from genedu import data, train


class Autoencoder(nn.Module):
    """No randomness of its own, so that N ranks and one process make equal updates."""

    def __init__(self):
        super().__init__()
        self.encode, self.decode = nn.Linear(16, 6), nn.Linear(6, 16)

    def loss(self, batch):
        x = batch.flatten(1)
        logits = self.decode(torch.tanh(self.encode(x)))
        nll = F.binary_cross_entropy_with_logits(logits, x, reduction="none").sum(1).mean()
        return {"loss": nll}


def wrapped(model, batch, optimizers, **kwargs):
    return train.loss_step(model, batch, optimizers, **kwargs)


wrapped.replicate = True


def main(out: str, steps: int, checkpoint: str | None = None) -> None:
    torch.set_num_threads(1)
    images = torch.randint(0, 256, (96, 1, 4, 4), generator=torch.Generator().manual_seed(0),
                           dtype=torch.uint8)  # fmt: skip
    torch.manual_seed(1)
    model = Autoencoder()
    how = os.environ.get("GENEDU_TEST_STEP", "")
    extra = {"clipped": {"grad_clip": 0.5}, "wrapped": {"step": wrapped}}.get(how, {})
    history = train.fit(model, images, steps=steps, batch_size=16, lr=1e-2, seed=3, **extra,
                        transform=data.binarize, checkpoint=checkpoint,
                        checkpoint_every=3 if checkpoint else None, resume=True,
                        progress=False)  # fmt: skip
    rank, world = train.distributed()
    torch.save({"weights": model.state_dict(), "loss": history["loss"], "world": world},
               f"{out}.rank{rank}.pt")  # fmt: skip


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), *sys.argv[3:])
