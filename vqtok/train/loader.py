"""Training batches through ``torch.utils.data.DataLoader``: worker processes, prefetch, pinned memory.

A run's batch of step ``s`` is a pure function of ``(seed, s)`` (:meth:`vqtok.train.data.TrainingSet.batch`,
:meth:`vqtok.prior.data.CodeSet.batch`), so the loader's dataset is indexed by step: the sampler lists
the steps still to run, each worker builds whole batches, and the loader hands them back in step order.
The batches are therefore the same for any number of workers, and a resumed run starts the sequence at
its checkpoint's step.

A plugin's error inside a worker comes back to the main process as the same one-line error naming the
file (not the loader's re-raised traceback), and a worker that dies (killed, out of memory) ends the run
with :class:`LoaderDied`, which the loop turns into a checkpoint and a clean message.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset

from ..errors import UsageError, VqtokError

PREFETCH = 4  # batches each worker builds ahead of the step that needs them


class LoaderDied(VqtokError):
    """A data-loading worker process ended without returning its batch."""


@dataclass
class _Failure:
    """A batch that raised a vqtok error in a worker: its message and whether it was a usage error."""

    message: str
    usage: bool

    def reraise(self):
        raise (UsageError if self.usage else VqtokError)(self.message)


class StepBatches(Dataset):
    """Item ``step`` is ``make(step)``, the CPU batch of that step; in a worker, a vqtok error is
    returned as a :class:`_Failure` so that the main process can raise it unchanged."""

    def __init__(self, make: Callable[[int], Any], steps: int):
        self.make, self.steps = make, steps

    def __len__(self) -> int:
        return self.steps

    def __getitem__(self, step: int):
        try:
            return self.make(step)
        except VqtokError as e:
            if torch.utils.data.get_worker_info() is None:
                raise
            return _Failure(str(e), isinstance(e, UsageError))


def auto_workers(device: torch.device, cpus: int | None = None) -> int:
    """``train.workers = "auto"``: on CUDA, a worker per spare core up to 8, so that decoding and
    resampling keep up with the GPU; on the CPU none below 4 cores (the model's own threads use them all;
    measured in bench/bench_loader.py), else a quarter of the cores up to 4."""
    if cpus is None:
        cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    if device.type == "cuda":
        return max(1, min(8, cpus - 1))
    return 0 if cpus < 4 else min(4, cpus // 4)


def resolve_workers(setting: int | str, device: torch.device) -> int:
    """The worker count of ``train.workers`` (a count, or ``"auto"``: :func:`auto_workers`)."""
    return auto_workers(device) if setting == "auto" else int(setting)


def batch_stream(
    make: Callable[[int], Any], start: int, stop: int, workers: int, pin_memory: bool = False
) -> Iterator[Any]:
    """The batches ``make(start)``, ..., ``make(stop - 1)`` in order, built by ``workers`` processes
    (0: in this process, as they are needed)."""
    if workers == 0:
        for step in range(start, stop):
            yield make(step)
        return
    loader = DataLoader(
        StepBatches(make, stop),
        batch_size=None,
        sampler=range(start, stop),
        num_workers=workers,
        prefetch_factor=PREFETCH,
        pin_memory=pin_memory,
        persistent_workers=True,
        generator=torch.Generator(),
    )  # its workers' seeds: not drawn from the run's random state
    batches = iter(loader)
    try:
        with _worker_deaths_found_by_the_loader():
            while (batch := _next_or_death(batches)) is not _END:
                if isinstance(batch, _Failure):
                    batch.reraise()
                yield batch
    finally:  # the workers end now, even while a traceback holds this frame
        batch = batches = loader = None


_END = object()


def _next_or_death(batches: Iterator[Any]) -> Any:
    """The loader's next batch (``_END`` after the last); a dead worker raises :class:`LoaderDied`, whose
    traceback holds none of the loader's frames (they would keep its workers alive)."""
    try:
        return next(batches)
    except StopIteration:
        return _END
    except RuntimeError as e:
        if "DataLoader worker" not in str(e):
            raise
        message = str(e).splitlines()[0].rstrip(". ")
    raise LoaderDied(
        f"a data-loading worker died ({message}); if it ran out of memory, lower train.workers or train.batch_size"
    )


@contextlib.contextmanager
def _worker_deaths_found_by_the_loader():
    """While the stream runs, a worker's death is found by the loader itself (it checks its workers when
    waiting on a batch: ``next`` raises), not by the SIGCHLD handler torch installs, which raises at
    whatever line the main process is on: in the middle of an optimizer step, it would leave nothing
    whole to checkpoint."""
    if not hasattr(signal, "SIGCHLD") or threading.current_thread() is not threading.main_thread():
        yield
        return
    torch_handler = signal.signal(signal.SIGCHLD, lambda signum, frame: None)
    try:
        yield
    finally:
        signal.signal(signal.SIGCHLD, torch_handler)
