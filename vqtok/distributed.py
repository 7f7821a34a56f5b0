"""The few collective operations vqtok needs; each is a no-op in a single process.

Under ``torchrun`` rank ``r`` of ``W`` trains on rows ``r * b .. (r + 1) * b - 1`` of each global batch of
``W * b`` examples, so a run equals one process with the whole batch (to float rounding): gradients are
averaged by DDP, codebook statistics (EMA counts and sums) pass through :func:`all_reduce_sum`, the
vectors k-means and dead-code restarts choose from are every rank's, in global order
(:func:`gather_rows`), and the noise of a training step is drawn for the global batch, each rank keeping
its rows (:func:`global_draw`), so every rank's random generator stays where one process's would be.
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


def rows_of_rank(size: int, rank: int, world: int) -> range:
    """The rows of a global batch of ``size`` that rank ``rank`` of ``world`` trains on: a contiguous
    share, so that the ranks' shares in rank order are the batch in one process's order."""
    share = size // world
    return range(rank * share, (rank + 1) * share)


def gather_rows(t: torch.Tensor) -> torch.Tensor:
    """Every rank's ``t`` ``(N, ...)`` (the same shape on all) in rank order: ``(W * N, ...)``; no gradient."""
    if not is_distributed():
        return t
    parts = [torch.empty_like(t) for _ in range(world_size())]
    dist.all_gather(parts, t.contiguous())
    return torch.cat(parts)


def global_draw(draw, like: torch.Tensor) -> torch.Tensor:
    """This rank's rows of one ``draw`` (``torch.randn``, ``torch.rand``) for the whole global batch, where
    ``like`` ``(b, ...)`` is this rank's share of it: what one process would draw for the same rows."""
    b = like.shape[0]
    full = draw((b * world_size(), *like.shape[1:]), device=like.device, dtype=like.dtype)
    return full[rank() * b : (rank() + 1) * b]


def collective_device() -> torch.device:
    """Where tensors must be for a collective: this rank's GPU under NCCL, else the CPU (gloo)."""
    if is_distributed() and dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def mean_over_ranks(t: torch.Tensor) -> torch.Tensor:
    """The mean of ``t`` (any device) over the ranks, on ``t``'s device; ``t`` itself in one process."""
    if not is_distributed():
        return t
    return all_reduce_sum(t.to(collective_device())).div_(world_size()).to(t.device)


def any_rank(flag: bool) -> bool:
    """True on every rank when ``flag`` is true on any (a stop request reaching only some of them)."""
    if not is_distributed():
        return flag
    return bool(all_reduce_sum(torch.tensor([float(flag)], device=collective_device())).item() > 0)


def broadcast(t: torch.Tensor, src: int = 0) -> torch.Tensor:
    """Overwrite ``t`` on every rank with rank ``src``'s value, in place; returns ``t``."""
    if is_distributed():
        dist.broadcast(t, src)
    return t
