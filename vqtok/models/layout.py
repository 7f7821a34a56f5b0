"""Moving between feature maps ``(B, D, *G)`` and the rows ``(B * prod(G), D)`` a quantizer works on."""

from __future__ import annotations

import torch


def flatten_grid(z: torch.Tensor) -> torch.Tensor:
    """``(B, D, *G)`` -> ``(B * prod(G), D)``."""
    return z.movedim(1, -1).reshape(-1, z.shape[1])


def unflatten_grid(v: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """``(B * prod(G), E)`` -> ``(B, E, *G)``, with ``B`` and ``G`` taken from ``like`` ``(B, D, *G)``."""
    b, _, *grid = like.shape
    return v.reshape(b, *grid, v.shape[-1]).movedim(-1, 1)
