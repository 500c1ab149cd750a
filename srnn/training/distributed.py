"""One run over several processes: ``torchrun`` and DistributedDataParallel.

    torchrun --nproc-per-node 4 -m srnn.experiment music --dataset jsb --name ddp4

Every process (rank) builds the same model, reads the same batches and trains on its own
share of each batch's rows, carrying its own rows' state from window to window. Gradients
are summed across ranks during the backward pass, so every rank takes the same step: the
combined update is the update of one process on the whole batch. The latent noise of the
whole batch is drawn from one generator that every rank keeps in step, and each rank uses
its own rows of it, so a run on W processes computes the same numbers as one on a single
process (``--nproc-per-node 1``) up to the order of floating-point sums; dropout masks come
from each rank's own generator. Rank 0 validates, writes the checkpoints (with every
rank's random state and the state of every row) and the record; the others wait for it.

Without ``torchrun`` (no process group) nothing here is used and training is exactly the
single-process code path, draw for draw.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from ..datasets.batching import Batch
from ..errors import UserError


class DistributedError(UserError, ValueError):
    """A multi-process setting that cannot work."""


@dataclass(frozen=True)
class World:
    """This process's place among the processes of one run: ``rank`` of ``size``."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def active(self) -> bool:
        """Whether a process group is running (also one of size 1, under torchrun)."""
        return dist.is_available() and dist.is_initialized()

    @property
    def main(self) -> bool:
        return self.rank == 0

    def rows(self, batch: Batch) -> Batch:
        """This rank's share of the batch's rows."""
        return batch.rows(self.row_slice(batch.x.shape[0]))

    def row_slice(self, rows: int) -> slice:
        """This rank's share of ``rows`` rows."""
        n = rows // self.size
        return slice(self.rank * n, (self.rank + 1) * n)

    def rows_of(self, tensor: torch.Tensor) -> torch.Tensor:
        """This rank's rows of a tensor of the whole batch's rows (along dim 0)."""
        return tensor[self.row_slice(tensor.shape[0])]

    def least(self, tensor: torch.Tensor) -> float:
        """The smallest value of a scalar over the ranks (one synchronization)."""
        tensor = tensor.detach().double().clone()
        if self.active:
            dist.all_reduce(tensor, op=dist.ReduceOp.MIN)
        return tensor.item()

    def gather(self, obj) -> list:
        """Every rank's ``obj``, in rank order (on every rank)."""
        if not self.active:
            return [obj]
        out = [None] * self.size
        dist.all_gather_object(out, obj)
        return out

    def from_main(self, obj):
        """Rank 0's ``obj``, on every rank."""
        if not self.active:
            return obj
        box = [obj]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def total(self, tensor: torch.Tensor) -> torch.Tensor:
        """The sum of ``tensor`` over the ranks (a new tensor)."""
        tensor = tensor.clone()
        if self.active:
            dist.all_reduce(tensor)
        return tensor


def current_world() -> World:
    """The process group this process belongs to, or a world of one."""
    if not (dist.is_available() and dist.is_initialized()):
        return World()
    return World(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", dist.get_rank())))


def start_from_environment(device_name: str, batch_size: int | None = None) -> World:
    """Join the process group that ``torchrun`` describes in the environment (RANK,
    WORLD_SIZE, MASTER_ADDR, ...): NCCL between GPUs, gloo on CPUs. Without torchrun, a
    world of one and no process group. A ``batch_size`` that the processes cannot share is
    refused first, before any process waits for another: the first process of each node
    says so in one line, the others leave without a word."""
    if "RANK" not in os.environ or "WORLD_SIZE" not in os.environ:
        return World()
    local = int(os.environ.get("LOCAL_RANK", 0))
    if batch_size is not None and batch_size % int(os.environ["WORLD_SIZE"]):
        if local:
            raise SystemExit(2)
        check_batch_size(World(size=int(os.environ["WORLD_SIZE"])), batch_size)
    gpu = device_name.startswith("cuda") or (device_name == "auto" and torch.cuda.is_available())
    if gpu:
        if local >= torch.cuda.device_count():
            raise DistributedError(f"local rank {local} has no GPU: this machine has {torch.cuda.device_count()}; "
                                   f"start at most that many processes per node (--nproc-per-node)")
        torch.cuda.set_device(local)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if gpu else "gloo")
    return current_world()


def device_of(world: World, device: torch.device) -> torch.device:
    """Each rank's own GPU (its local rank); the CPU is shared."""
    return torch.device("cuda", world.local_rank) if world.active and device.type == "cuda" else device


def check_batch_size(world: World, batch_size: int) -> None:
    """Each process trains batch_size / processes rows: refuse a batch that does not split evenly."""
    if batch_size % world.size:
        divisors = [n for n in range(1, min(batch_size, 64) + 1) if batch_size % n == 0]
        raise DistributedError(f"batch_size={batch_size} does not split over {world.size} processes: start a "
                               f"number of processes that divides it ({', '.join(map(str, divisors))}, over all nodes "
                               f"together), or set another batch_size "
                               f"(--set batch_size=N, a multiple of {world.size})")
