"""The built-in audio modality: every file libsndfile reads, mixed to mono, at one sample rate, in [-1, 1].

Files at other rates are resampled (torchaudio's windowed sinc). Long files stream in bounded memory,
piece by piece, with exactly the samples a whole-file read would give; training draws random
fixed-length segments, reading only that part of the file. The loss is L1 plus a multi-resolution STFT
distance; previews are log-mel spectrograms.
"""

from __future__ import annotations

from vqtok.hookspecs import hookimpl

from .loss import multi_resolution_stft_distance
from .modality import AudioModality, AudioOptions

__all__ = ["AudioModality", "AudioOptions", "multi_resolution_stft_distance", "vqtok_modalities"]


@hookimpl
def vqtok_modalities():
    return [AudioModality()]
