"""One training process among several (torchrun) or alone: rank, world size and device."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass
class DistInfo:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0


def init_distributed(device: str = "auto") -> DistInfo:
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return DistInfo()
    backend = "nccl" if torch.cuda.is_available() and device != "cpu" else "gloo"
    dist.init_process_group(backend)
    info = DistInfo(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))
    if backend == "nccl":
        torch.cuda.set_device(info.local_rank)
    return info


def pick_device(device: str, info: DistInfo) -> torch.device:
    if device == "auto":
        return torch.device(f"cuda:{info.local_rank}" if torch.cuda.is_available() else "cpu")
    return torch.device(device)
