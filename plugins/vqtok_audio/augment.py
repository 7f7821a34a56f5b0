"""Random perturbations of training segments, so that a codec trained on a few voices and studios
generalizes to other voices, levels and channels.

Each is off by default and drawn per segment from the data loader's generator (so a seeded run stays
reproducible):

- *speed*: the segment plays at a factor drawn log-uniformly from ``speed`` (Kaldi-style speed
  perturbation: pitch, formants and tempo move together, as between a smaller and a larger voice).
  It is done while reading (:func:`speed_factor` says how many samples to read, :func:`change_speed`
  resamples them to the segment's length).
- *gain*: a level drawn uniformly from ``gain_db`` (in dB), kept under full scale.
- *band limits*: with probability ``band_limit``, a high-pass at 50-400 Hz and a low-pass at
  60-95 % of the Nyquist frequency (telephone and cheap-microphone channels).
- *noise*: with probability ``noise``, white noise at a signal-to-noise ratio drawn from
  ``noise_snr_db``.
"""

from __future__ import annotations

import math

import torch
import torchaudio

from .resample import resample

SPEED_STEPS = 100  # speed factors are rounded to 1/100, which keeps the resampling kernel small
HIGH_PASS_HZ = (50.0, 400.0)
LOW_PASS_NYQUIST = (0.6, 0.95)
PEAK = 0.99  # a gain never pushes a segment's peak over this


def _uniform(low: float, high: float, generator: torch.Generator) -> float:
    return low + (high - low) * float(torch.rand((), generator=generator))


def _chance(p: float, generator: torch.Generator) -> bool:
    return p > 0 and float(torch.rand((), generator=generator)) < p


def speed_factor(speed: list[float], generator: torch.Generator) -> float:
    """A factor drawn log-uniformly from ``[speed[0], speed[1]]``, rounded to 1/SPEED_STEPS (1.0 if
    the range is [1, 1]). A factor s means reading ``s`` times the segment's samples."""
    low, high = speed
    if low == high == 1.0:
        return 1.0
    factor = math.exp(_uniform(math.log(low), math.log(high), generator))
    return max(round(factor * SPEED_STEPS), 1) / SPEED_STEPS


def change_speed(x: torch.Tensor, factor: float) -> torch.Tensor:
    """``(C, n)`` played ``factor`` times faster: ``(C, ceil(n / factor))``."""
    if factor == 1.0:
        return x
    return resample(x, round(factor * SPEED_STEPS), SPEED_STEPS)


def perturb(
    x: torch.Tensor,
    sample_rate: int,
    gain_db: list[float],
    band_limit: float,
    noise: float,
    noise_snr_db: list[float],
    generator: torch.Generator,
) -> torch.Tensor:
    """Band limits, noise, then gain on a ``(C, n)`` segment at ``sample_rate``, each as drawn."""
    if _chance(band_limit, generator):
        low_cut = math.exp(_uniform(*map(math.log, HIGH_PASS_HZ), generator))
        high_cut = _uniform(*LOW_PASS_NYQUIST, generator) * sample_rate / 2
        x = torchaudio.functional.highpass_biquad(x, sample_rate, low_cut)
        x = torchaudio.functional.lowpass_biquad(x, sample_rate, high_cut)
    power = float(x.square().mean())
    if _chance(noise, generator) and power > 0:
        snr_db = _uniform(*noise_snr_db, generator)
        sigma = math.sqrt(power / 10 ** (snr_db / 10))
        x = x + sigma * torch.randn(x.shape, generator=generator)
    if gain_db[0] != 0.0 or gain_db[1] != 0.0:
        x = x * 10 ** (_uniform(*gain_db, generator) / 20)
    peak = float(x.abs().max()) if x.numel() else 0.0
    return x * (PEAK / peak) if peak > PEAK else x
