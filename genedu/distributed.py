"""Training on N processes with torchrun: the few lines `genedu.train.fit` needs.

    torchrun --nproc-per-node 2 -m genedu train vae --data mnist --steps 2000

Each process (a *rank*) holds a full copy of the model, takes 1/N of every batch and
averages its gradients with the others, so N ranks make the same updates as one
process with the whole batch. The averaging is torch's DistributedDataParallel
(`Replica`), over gloo on CPUs and NCCL on GPUs; rank 0 alone logs, evaluates and saves.
"""

from __future__ import annotations

import os

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel


def distributed() -> tuple[int, int]:
    """(rank, world size), joining the process group when ``torchrun`` started us.

    ``torchrun --nproc-per-node N -m genedu train ...`` sets WORLD_SIZE and friends; the
    first call then joins with gloo on CPU or NCCL on GPUs. A plain run is (0, 1).
    """
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return 0, 1
    dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    if torch.cuda.is_available():
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    return dist.get_rank(), dist.get_world_size()


def is_main() -> bool:
    """Whether this process logs and saves: always in a plain run, rank 0 under torchrun."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank() == 0
    return int(os.environ.get("RANK", "0")) == 0


def average_gradients(module: nn.Module) -> None:
    """Average `module`'s gradients over the ranks (a no-op in one process).

    DistributedDataParallel does this for `loss_step`; the GAN's step, whose two players
    each take one backward pass into half of the model, calls it for each player.
    """
    if distributed()[1] == 1:
        return
    world = dist.get_world_size()
    for p in module.parameters():
        if p.grad is not None:
            dist.all_reduce(p.grad)
            p.grad /= world


class Replica:
    """The model as a step sees it under DDP: `loss` runs through DistributedDataParallel
    (which averages the gradients as they are computed); every other attribute is the
    model's own."""

    class _Loss(nn.Module):
        def __init__(self, model: nn.Module):
            super().__init__()
            self.model = model

        def forward(self, batch):
            return self.model.loss(batch)

    def __init__(self, model: nn.Module):
        self._model = model
        self._ddp = DistributedDataParallel(self._Loss(model))

    def loss(self, batch):
        return self._ddp(batch)

    def __getattr__(self, name):
        return getattr(self._model, name)


def agree(logs: dict[str, float], stop: bool, world: int) -> tuple[dict[str, float], bool]:
    """Under torchrun: every rank's logs averaged, and whether any rank wants to stop
    (its clock reached max_seconds), so that all stop at the same step."""
    if world == 1:
        return logs, stop
    packed = torch.tensor([*logs.values(), float(stop)], dtype=torch.float64)
    dist.all_reduce(packed)
    *values, stops = packed.tolist()
    return {k: v / world for k, v in zip(logs, values, strict=True)}, stops > 0
