"""The few collective operations vqtok needs; each is a no-op in a single process.

Under ``torchrun`` every rank keeps an identical codebook because its statistics (EMA counts and sums,
k-means sums) pass through :func:`all_reduce_sum`, and random choices come from rank 0 via
:func:`broadcast`.
"""

from __future__ import annotations

import os

import torch
import torch.distributed as dist


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized()


def rank() -> int:
    return dist.get_rank() if is_distributed() else 0


def world_size() -> int:
    return dist.get_world_size() if is_distributed() else 1


def is_main() -> bool:
    return rank() == 0


def launched_by_torchrun() -> bool:
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def all_reduce_sum(t: torch.Tensor) -> torch.Tensor:
    """Sum ``t`` over all ranks, in place; returns ``t``."""
    if is_distributed():
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t


def broadcast(t: torch.Tensor, src: int = 0) -> torch.Tensor:
    """Overwrite ``t`` on every rank with rank ``src``'s value, in place; returns ``t``."""
    if is_distributed():
        dist.broadcast(t, src)
    return t
