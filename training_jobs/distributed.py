"""Data-parallel training when torchrun starts several processes (SageMaker's distributed launcher does).

Run as one plain process, every helper here is a no-op, so `train.py` has a single code path.
Each rank trains on its own share of the same shuffled batches; DistributedDataParallel averages the
gradients, so the global batch is `train_batch_size * world_size`. Only rank 0 validates and writes.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel


@dataclass(frozen=True)
class Distributed:
    rank: int
    world_size: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def shard(self, batches: list[list[int]]) -> list[list[int]]:
        """This rank's batches; every rank gets the same count so the gradient all-reduces pair up."""
        usable = len(batches) - len(batches) % self.world_size
        return batches[self.rank:usable:self.world_size]

    def wrap(self, model: nn.Module) -> nn.Module:
        """The module to call in the training step: DDP across ranks, the model itself alone."""
        if self.world_size == 1:
            return model
        # static_graph: the same parameters take part in every step, and BERT's unused pooler (we pool the first
        # token ourselves) is found once instead of stalling the gradient reducer.
        return DistributedDataParallel(model, device_ids=[self.device.index] if self.device.type == "cuda" else None,
                                       static_graph=True)

    def close(self) -> None:
        if self.world_size > 1:
            dist.destroy_process_group()


def init_distributed() -> Distributed:
    """Join the process group torchrun describes in WORLD_SIZE/RANK/LOCAL_RANK: NCCL on GPUs, Gloo on CPUs."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size == 1:
        return Distributed(0, 1, torch.device("cuda" if torch.cuda.is_available() else "cpu"))
    if torch.cuda.is_available():
        device = torch.device("cuda", int(os.environ["LOCAL_RANK"]))
        torch.cuda.set_device(device)
        dist.init_process_group("nccl")
    else:
        device = torch.device("cpu")
        dist.init_process_group("gloo")
    return Distributed(dist.get_rank(), world_size, device)
