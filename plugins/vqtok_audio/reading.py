"""Opening audio files and reading whole ones: mono, float32, at the model's sample rate."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from vqtok.errors import VqtokError

from .header import check_complete
from .resample import RatePlan, check_rates, resample


@contextlib.contextmanager
def open_audio(path: Path) -> Iterator[sf.SoundFile]:
    """``path`` opened for reading. Any failure to open or read it, here or in the ``with`` body,
    becomes a one-line ``VqtokError`` naming the file."""
    path = Path(path)
    try:
        check_complete(path)
        with sf.SoundFile(_native(path)) as f:
            if f.frames == 0:
                raise VqtokError(f"{path}: holds no audio samples")
            yield f
    except (sf.SoundFileError, OSError, ValueError) as e:  # ValueError: a rate we cannot resample from
        raise VqtokError(f"{path}: {_reason(e)}") from None


def _native(path: Path) -> str | bytes:
    """``path`` as libsndfile can open it: a name that is not valid in the file system's encoding (Python
    holds its bytes as surrogates) goes as bytes, which soundfile would fail to encode."""
    try:
        str(path).encode(sys.getfilesystemencoding())
        return str(path)
    except UnicodeEncodeError:
        return os.fsencode(path)


def _reason(error: Exception) -> str:
    if isinstance(error, sf.LibsndfileError):
        text = f"not readable as audio ({error.error_string.rstrip('.')})"
    elif isinstance(error, OSError) and error.strerror:
        text = error.strerror
    else:
        text = str(error)
    return " ".join(text.split())


READ_FRAMES = 1 << 20  # frames read at a time: memory follows the samples a file holds, not what it declares


def read_mono(f: sf.SoundFile, count: int) -> torch.Tensor:
    """The next ``count`` frames of ``f``, channels averaged: ``(1, count)`` float32. Read in pieces, so
    that a header declaring far more frames than the file holds (a FLAC can claim 2^36) is found
    truncated without allocating what it claims."""
    name = os.fsdecode(f.name)
    pieces, read = [], 0
    while read < count:
        at, want = f.tell(), min(count - read, READ_FRAMES)
        data = f.read(want, dtype="float32", always_2d=True)
        finite = np.isfinite(data).all(axis=1)
        if not finite.all():  # a float file can hold them; codes computed from them would be garbage
            raise VqtokError(f"{name}: holds NaN or Inf samples (the first at frame {at + int(np.argmin(finite))})")
        pieces.append(data.mean(axis=1, dtype=np.float32))
        read += len(data)
        if len(data) < want:
            break
    if read < count:
        raise VqtokError(f"{name}: truncated: it ends {count - read} samples before its header says")
    if len(pieces) != 1:  # none (count 0: a stream with nothing new) or several: one array
        pieces = [np.concatenate(pieces) if pieces else np.zeros(0, dtype=np.float32)]
    return torch.from_numpy(pieces[0])[None]


def load(path: Path, sample_rate: int) -> torch.Tensor:
    """The whole file as ``(1, T)`` at ``sample_rate``."""
    with open_audio(path) as f:
        check_rates(f.samplerate, sample_rate)  # before reading: a rate we cannot resample from is named
        x, source_rate = read_mono(f, f.frames), f.samplerate
    return resample(x, source_rate, sample_rate)


def length(path: Path, sample_rate: int) -> int:
    """``T`` of :func:`load`, from the header alone."""
    with open_audio(path) as f:
        return model_length(f, sample_rate)


def model_length(f: sf.SoundFile, sample_rate: int) -> int:
    """Samples of the open file once resampled to ``sample_rate``."""
    return RatePlan.between(f.samplerate, sample_rate).output_length(f.frames)
