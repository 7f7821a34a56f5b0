"""Reading parts of a file, in memory bounded by the part: consecutive pieces, or one segment.

Both give exactly the samples of :func:`reading.load` (see :mod:`resample` for why).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import soundfile as sf
import torch

from .reading import model_length, open_audio, read_mono
from .resample import RatePlan

MIN_STEP = 4096  # output samples resampled at once, however small the pieces asked for


def stream(path: Path, sample_rate: int, block: int) -> Iterator[torch.Tensor]:
    """Consecutive ``(1, block)`` pieces of the file at ``sample_rate``; the last may be shorter.

    The file is read once, front to back, in steps of about ``max(block, MIN_STEP)`` output samples;
    the input samples that two steps share (the filter's margin) are kept rather than read again.
    """
    if block < 1:
        raise ValueError(f"block must be at least 1 sample, got {block}")
    with open_audio(path) as f:
        yield from _rechunk(_steps(f, sample_rate, max(block, MIN_STEP)), block)


def _steps(f: sf.SoundFile, sample_rate: int, size: int) -> Iterator[torch.Tensor]:
    """The open file at ``sample_rate`` in consecutive ``(1, n)`` steps of whole frames, ``n`` about
    ``size``."""
    plan = RatePlan.between(f.samplerate, sample_rate)
    total = model_length(f, sample_rate)
    step = max(size // plan.new, 1) * plan.new
    held, held_start = torch.zeros(1, 0), 0  # input samples [held_start, held_start + held width)
    for out_start in range(0, total, step):
        out_stop = min(out_start + step, total)
        start, stop = plan.input_span(out_start, out_stop, f.frames)
        fresh = read_mono(f, stop - held_start - held.shape[-1])
        held, held_start = torch.cat([held[..., start - held_start :], fresh], dim=-1), start
        yield plan.resample_span(held, start, out_start, out_stop)


def _rechunk(pieces: Iterator[torch.Tensor], block: int) -> Iterator[torch.Tensor]:
    """The samples of ``pieces`` ``(1, n)`` regrouped into ``(1, block)`` pieces and a shorter last one."""
    pending = torch.zeros(1, 0)
    for piece in pieces:
        pending = torch.cat([pending, piece], dim=-1)
        while pending.shape[-1] >= block:
            yield pending[..., :block]
            pending = pending[..., block:]
    if pending.shape[-1]:
        yield pending


def read_segment(f: sf.SoundFile, sample_rate: int, out_start: int, out_stop: int) -> torch.Tensor:
    """Samples ``[out_start, out_stop)`` of the open file at ``sample_rate``: ``(1, out_stop - out_start)``,
    reading only their input span (seeking there) plus the filter's margin."""
    plan = RatePlan.between(f.samplerate, sample_rate)
    start, stop = plan.input_span(out_start, out_stop, f.frames)
    f.seek(start)
    return plan.resample_span(read_mono(f, stop - start), start, out_start, out_stop)
