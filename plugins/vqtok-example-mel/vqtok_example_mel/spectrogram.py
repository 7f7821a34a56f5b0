"""Sound <-> log-mel spectrograms in [-1, 1], with torchaudio."""

from __future__ import annotations

import functools

import torch
import torchaudio

FLOOR_DB = -100.0  # dB relative to full scale mapped to -1; 0 dBFS maps to +1


@functools.cache  # built once per setting, not for every file a training run reads
def transforms(sample_rate: int, n_fft: int, hop_length: int, n_mels: int):
    """The forward transform (waveform -> mel power) and its approximate inverse (mel power -> waveform)."""
    mel = torchaudio.transforms.MelSpectrogram(
        sample_rate, n_fft=n_fft, hop_length=hop_length, n_mels=n_mels, power=2.0
    )
    to_linear = torchaudio.transforms.InverseMelScale(n_fft // 2 + 1, n_mels=n_mels, sample_rate=sample_rate)
    griffin_lim = torchaudio.transforms.GriffinLim(n_fft=n_fft, hop_length=hop_length, power=2.0, n_iter=32)
    return mel, lambda power: griffin_lim(to_linear(power))


def to_unit(power: torch.Tensor) -> torch.Tensor:
    """Mel power -> dB over ``[FLOOR_DB, 0]`` -> [-1, 1]."""
    db = 10 * torch.log10(power.clamp_min(1e-12))
    return (db.clamp(FLOOR_DB, 0.0) / -FLOOR_DB * 2 + 1).float()


def from_unit(x: torch.Tensor) -> torch.Tensor:
    """The inverse of :func:`to_unit` (on its range)."""
    return 10 ** (((x.clamp(-1, 1) - 1) / 2 * -FLOOR_DB) / 10)
