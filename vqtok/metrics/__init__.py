"""Metrics in one place: likelihoods (nats, bits per dimension), signal distances, codebook usage."""

from .codes import code_counts, perplexity, used_share
from .likelihood import (
    LikelihoodEstimate,
    bits_per_dim,
    importance_log_weights,
    importance_sampled_likelihood,
    importance_sampled_nll,
    kl_normal,
    log_normal,
)
from .signal import log_mel_db, log_mel_distance, mse, psnr, si_sdr

__all__ = [
    "LikelihoodEstimate",
    "bits_per_dim",
    "code_counts",
    "importance_log_weights",
    "importance_sampled_likelihood",
    "importance_sampled_nll",
    "kl_normal",
    "log_mel_db",
    "log_mel_distance",
    "log_normal",
    "mse",
    "perplexity",
    "psnr",
    "si_sdr",
    "used_share",
]
