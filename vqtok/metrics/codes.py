"""How a codebook is used: perplexity and the share of its entries that occur."""

from __future__ import annotations

import torch


def perplexity(counts: torch.Tensor) -> float:
    """``exp(-sum p log p)`` of the code histogram ``counts`` ``(K,)``: the number of equally likely
    codes with the same entropy (K when all are used alike, 1 when one code takes everything)."""
    p = counts.double() / counts.sum().clamp_min(1)
    return float(torch.exp(-(p * torch.log(p.clamp_min(1e-300))).sum()))


def used_share(counts: torch.Tensor) -> float:
    """Share of the ``K`` entries that occur at least once in ``counts`` ``(K,)``."""
    return float((counts > 0).double().mean())


def code_counts(codes: torch.Tensor, sizes: list[int]) -> list[torch.Tensor]:
    """Codes ``(B, n_q, *G)`` -> one histogram ``(K_q,)`` per codebook ``q``."""
    return [torch.bincount(codes[:, q].reshape(-1), minlength=k) for q, k in enumerate(sizes[: codes.shape[1]])]
