"""This process's place in a ``torchrun`` job (DDP), and the few collective calls training makes."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TypeVar

import torch
from torch import nn

T = TypeVar("T")


@dataclass(frozen=True)
class Dist:
    """This process's place in a ``torchrun`` job (rank 0 of 1 when run plainly)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0


def init_distributed(device: str) -> Dist:
    """Join the process group ``torchrun`` describes in the environment (nccl on CUDA, gloo on CPU)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist()
    import torch.distributed as dist

    rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    if device.startswith("cuda"):
        torch.cuda.set_device(local)  # before NCCL starts, so each rank talks from its own GPU
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.startswith("cuda") else "gloo")
    return Dist(rank, world, local)


def barrier(d: Dist) -> None:
    if d.world > 1:
        import torch.distributed as dist

        dist.barrier()


def leave(d: Dist) -> None:
    """Leave the process group together (a barrier, then its teardown) before a refusal ends every rank: a
    rank exiting with gloo's threads still up aborted in C++ ("terminate called without an active
    exception", SIGABRT) under load, and torchrun then killed the others before they said why."""
    if d.world > 1:
        import torch.distributed as dist

        if dist.is_initialized():
            dist.barrier()
            dist.destroy_process_group()


def broadcast_object(value: T, d: Dist) -> T:
    """Rank 0's ``value`` (picklable) on every process."""
    if d.world <= 1:
        return value
    import torch.distributed as dist

    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def broadcast_buffers(module: nn.Module, d: Dist) -> None:
    """Rank 0's buffers of ``module`` (BatchNorm's running statistics) on every process, in place.

    DDP sends rank 0's buffers only at the start of a training forward, and each rank then updates them with
    its own share of the batch: after an epoch the ranks hold different running statistics, so they would
    evaluate different models. Rank 0's are the ones the next epoch trains on (and that rank 0 saves)."""
    if d.world > 1:
        import torch.distributed as dist

        for b in module.buffers():
            dist.broadcast(b, src=0)


def all_reduce_sum(t: torch.Tensor, d: Dist) -> torch.Tensor:
    """``t`` summed over every process (in place)."""
    if d.world > 1:
        import torch.distributed as dist

        dist.all_reduce(t)
    return t


SINGLE_PROCESS = Dist()  # a plain run: rank 0 of 1
