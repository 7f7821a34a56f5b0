"""Reconstruction loss for waveforms: L1 plus a multi-resolution STFT distance."""

from __future__ import annotations

import torch

from .spectral import fft_size, magnitudes

WINDOW_SECONDS = (0.032, 0.064, 0.128)  # one STFT resolution each, rounded to a power of two


def log_spectral_l1(s_hat: torch.Tensor, s: torch.Tensor, range_db: float | None = None) -> torch.Tensor:
    """Mean L1 distance of the log magnitudes ``(B, ..., F, frames)`` of a reconstruction and its reference.

    ``range_db``: each example's spectra count down to this many dB under the loudest bin of its
    reference ``s``; a quieter bin of either one counts as that level, so the loss neither asks for the
    exact noise floor of silence nor follows the steep gradient of the logarithm there. None: every
    bin, down to the magnitude floor ``EPS`` (what a metric wants).
    """
    if range_db is not None:
        floor = s.amax(dim=tuple(range(1, s.dim())), keepdim=True) * 10 ** (-range_db / 20)
        s_hat, s = torch.maximum(s_hat, floor), torch.maximum(s, floor)
    return (s_hat.log() - s.log()).abs().mean()


def stft_distance(x_hat: torch.Tensor, x: torch.Tensor, n_fft: int, range_db: float | None = None) -> torch.Tensor:
    """Spectral convergence plus :func:`log_spectral_l1` at one resolution (hop ``n_fft // 4``);
    ``x_hat``, ``x``: ``(B, ..., T)``, the whole batch at once. Returns a scalar."""
    s_hat, s = magnitudes(x_hat, n_fft, n_fft // 4), magnitudes(x, n_fft, n_fft // 4)
    convergence = torch.linalg.vector_norm(s - s_hat) / torch.linalg.vector_norm(s)
    return convergence + log_spectral_l1(s_hat, s, range_db)


def multi_resolution_stft_distance(
    x_hat: torch.Tensor, x: torch.Tensor, sample_rate: int, range_db: float | None = None
) -> torch.Tensor:
    """:func:`stft_distance` averaged over windows of about 32, 64 and 128 ms; ``(B, 1, T)`` -> scalar.

    0 for identical signals; finite when either one is silent.
    """
    sizes = [fft_size(sample_rate, seconds) for seconds in WINDOW_SECONDS]
    return sum(stft_distance(x_hat, x, n_fft, range_db) for n_fft in sizes) / len(sizes)


def waveform_loss(
    x_hat: torch.Tensor, x: torch.Tensor, sample_rate: int, range_db: float | None = None
) -> dict[str, torch.Tensor]:
    """``{"recon": l1 + stft, "l1", "stft"}`` for a batch ``(B, 1, T)``, computed in float32; ``range_db``
    as in :func:`stft_distance`."""
    x_hat, x = x_hat.float(), x.float()
    l1 = (x_hat - x).abs().mean()
    stft = multi_resolution_stft_distance(x_hat, x, sample_rate, range_db)
    return {"recon": l1 + stft, "l1": l1, "stft": stft}
