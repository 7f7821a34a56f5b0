"""Distances between a reconstruction and its original, one value per example.

Inputs are batches ``(B, C, *S)`` in the modality's value range (the built-ins use [-1, 1]); every
function returns ``(B,)`` float32, computed in float32 whatever the input dtype.
"""

from __future__ import annotations

import math

import torch

PEAK_TO_PEAK = 2.0  # the span of data in [-1, 1]: PSNR's peak
TOP_DB = 80.0  # log-mel levels below the reference's loudest bin minus this are floored there


def _per_example(t: torch.Tensor) -> torch.Tensor:
    return t.float().flatten(1)


def mse(est: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """Mean squared error over every element of each example."""
    return (_per_example(est) - _per_example(ref)).square().mean(1)


def psnr(est: torch.Tensor, ref: torch.Tensor, peak: float = PEAK_TO_PEAK) -> torch.Tensor:
    """Peak signal-to-noise ratio in dB, ``10 log10(peak^2 / MSE)``; for [-1, 1] data ``peak = 2``
    gives the same figure as 8-bit images on [0, 255]. Infinite for identical inputs."""
    return 10 * torch.log10(peak**2 / mse(est, ref))


def si_sdr(est: torch.Tensor, ref: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """Scale-invariant signal-to-distortion ratio in dB (Le Roux et al. 2019): both zero-mean,
    ``alpha = <est, ref> / ||ref||^2``, ``10 log10(||alpha ref||^2 / ||est - alpha ref||^2)``.
    Indifferent to the estimate's gain; a scaled copy scores very high (capped by ``eps``)."""
    est, ref = _per_example(est), _per_example(ref)
    est, ref = est - est.mean(1, keepdim=True), ref - ref.mean(1, keepdim=True)
    alpha = (est * ref).sum(1, keepdim=True) / ref.square().sum(1, keepdim=True).clamp_min(eps)
    target = alpha * ref
    return 10 * torch.log10(target.square().sum(1).clamp_min(eps) / (est - target).square().sum(1).clamp_min(eps))


def log_mel_db(
    x: torch.Tensor, sample_rate: int, n_mels: int = 64, window_seconds: float = 0.064, hops_per_window: int = 8
) -> torch.Tensor:
    """Mel power spectrogram in dB: ``(B, 1, T)`` -> ``(B, n_mels, frames)``, Hann windows of about
    ``window_seconds`` (rounded to a power of two of samples), ``hops_per_window`` frames per window,
    the signal zero-padded by half a window at both ends."""
    import torchaudio  # here, so that importing the metrics stays light

    n_fft = 2 ** round(math.log2(sample_rate * window_seconds))
    flat = x.float().reshape(x.shape[0], -1)
    spec = torch.stft(
        flat,
        n_fft,
        n_fft // hops_per_window,
        window=torch.hann_window(n_fft, device=x.device),
        pad_mode="constant",
        return_complex=True,
    )
    power = torch.view_as_real(spec).square().sum(-1)  # (B, n_fft // 2 + 1, frames)
    banks = torchaudio.functional.melscale_fbanks(
        n_fft // 2 + 1, f_min=0.0, f_max=sample_rate / 2, n_mels=n_mels, sample_rate=sample_rate
    ).to(x.device)
    return 10 * torch.einsum("bft,fm->bmt", power, banks).clamp_min(1e-20).log10()


def log_mel_distance(est: torch.Tensor, ref: torch.Tensor, sample_rate: int) -> torch.Tensor:
    """Mean absolute difference in dB between the log-mel spectrograms (:func:`log_mel_db`) of ``est``
    and ``ref`` ``(B, 1, T)``. Both are floored at ``TOP_DB`` below the reference's loudest bin, so
    that silence, where any two signals differ by arbitrary dB, does not dominate. A copy scaled by
    ``g`` everywhere above the floor scores ``|20 log10 g|``."""
    e, r = log_mel_db(est, sample_rate), log_mel_db(ref, sample_rate)
    floor = r.amax(dim=(1, 2), keepdim=True) - TOP_DB
    return (e.maximum(floor) - r.maximum(floor)).abs().mean(dim=(1, 2))
