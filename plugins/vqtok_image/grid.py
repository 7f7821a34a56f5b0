"""Tile a batch of images into one picture."""

from __future__ import annotations

import math

import torch
from PIL import Image

from .convert import to_pil


def image_grid(batch: torch.Tensor, columns: int | None = None, gap: int = 2) -> Image.Image:
    """``(N, C, H, W)`` in [-1, 1] -> one image with ``columns`` per row, ``gap`` pixels apart."""
    n, c, h, w = batch.shape
    columns = columns or math.ceil(math.sqrt(n))
    rows = math.ceil(n / columns)
    canvas = torch.ones(c, rows * (h + gap) - gap, columns * (w + gap) - gap)
    for i in range(n):
        r, col = divmod(i, columns)
        canvas[:, r * (h + gap) : r * (h + gap) + h, col * (w + gap) : col * (w + gap) + w] = batch[i]
    return to_pil(canvas)
