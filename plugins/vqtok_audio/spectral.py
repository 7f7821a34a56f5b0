"""Short-time magnitude spectra, shared by the loss and the preview."""

from __future__ import annotations

import math

import torch

EPS = 1e-5  # magnitudes are clamped to this, so that silence has a finite logarithm


def fft_size(sample_rate: int, seconds: float) -> int:
    """The power of two nearest (in log scale) to ``seconds`` of samples."""
    return 2 ** round(math.log2(sample_rate * seconds))


def magnitudes(x: torch.Tensor, n_fft: int, hop: int) -> torch.Tensor:
    """``(..., T)`` -> ``(..., n_fft // 2 + 1, frames)`` float32 STFT magnitudes, at least ``EPS``.

    Hann window; the signal is zero-padded by ``n_fft // 2`` at both ends (frame ``i`` is centred on
    sample ``i * hop``), so any length works.
    """
    flat = x.reshape(-1, x.shape[-1]).float()
    window = torch.hann_window(n_fft, device=x.device)
    spec = torch.stft(flat, n_fft, hop, window=window, pad_mode="constant", return_complex=True)
    power = torch.view_as_real(spec).pow(2).sum(-1)  # |.|^2 without abs(), whose gradient at 0 is NaN
    return power.clamp_min(EPS**2).sqrt().reshape(*x.shape[:-1], *power.shape[-2:])
