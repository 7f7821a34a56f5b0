"""Reconstruction loss for waveforms: L1 plus a multi-resolution STFT distance."""

from __future__ import annotations

import torch

from .spectral import fft_size, magnitudes

WINDOW_SECONDS = (0.032, 0.064, 0.128)  # one STFT resolution each, rounded to a power of two


def stft_distance(x_hat: torch.Tensor, x: torch.Tensor, n_fft: int) -> torch.Tensor:
    """Spectral convergence plus mean L1 of log magnitudes at one resolution (hop ``n_fft // 4``);
    ``x_hat``, ``x``: ``(..., T)``, the whole batch at once. Returns a scalar."""
    s_hat, s = magnitudes(x_hat, n_fft, n_fft // 4), magnitudes(x, n_fft, n_fft // 4)
    convergence = torch.linalg.vector_norm(s - s_hat) / torch.linalg.vector_norm(s)
    log_l1 = (s_hat.log() - s.log()).abs().mean()
    return convergence + log_l1


def multi_resolution_stft_distance(x_hat: torch.Tensor, x: torch.Tensor, sample_rate: int) -> torch.Tensor:
    """:func:`stft_distance` averaged over windows of about 32, 64 and 128 ms; ``(B, 1, T)`` -> scalar.

    0 for identical signals; finite when either one is silent.
    """
    sizes = [fft_size(sample_rate, seconds) for seconds in WINDOW_SECONDS]
    return sum(stft_distance(x_hat, x, n_fft) for n_fft in sizes) / len(sizes)


def waveform_loss(x_hat: torch.Tensor, x: torch.Tensor, sample_rate: int) -> dict[str, torch.Tensor]:
    """``{"recon": l1 + stft, "l1", "stft"}`` for a batch ``(B, 1, T)``, computed in float32."""
    x_hat, x = x_hat.float(), x.float()
    l1 = (x_hat - x).abs().mean()
    stft = multi_resolution_stft_distance(x_hat, x, sample_rate)
    return {"recon": l1 + stft, "l1": l1, "stft": stft}
