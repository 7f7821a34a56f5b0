"""Pillow images <-> tensors in [-1, 1]."""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image


def to_tensor(img: Image.Image) -> torch.Tensor:
    """Pillow image (mode L or RGB) -> ``(C, H, W)`` float32 in [-1, 1]. One float tensor is allocated
    (a 24-megapixel photo: 288 MB), converted in place."""
    a = np.array(img, dtype=np.uint8)  # (H, W) or (H, W, C), a copy we own
    pixels = torch.from_numpy(a[..., None] if a.ndim == 2 else a).permute(2, 0, 1)
    x = torch.empty(pixels.shape, dtype=torch.float32)
    x.copy_(pixels)
    return x.div_(127.5).sub_(1.0)


def to_pil(x: torch.Tensor) -> Image.Image:
    """``(C, H, W)`` in [-1, 1] -> Pillow image (L for C = 1, RGB for C = 3); one float copy at most."""
    y = x.detach().float().cpu().clamp(-1, 1)  # a new tensor: the caller's is left alone
    a = y.add_(1).mul_(127.5).round_().to(torch.uint8).numpy()
    return Image.fromarray(a[0]) if a.shape[0] == 1 else Image.fromarray(a.transpose(1, 2, 0))


def to_8bit(img: Image.Image) -> Image.Image:
    """Scale 16- and 32-bit integer images (modes I;16*, I) to 8 bits; Pillow's convert would clip them."""
    if not img.mode.startswith("I"):
        return img
    a = np.asarray(img, dtype=np.float64)
    top = 65535.0 if img.mode.startswith("I;16") or a.max(initial=0) <= 65535 else float(a.max())
    return Image.fromarray(np.clip(a / top * 255.0 + 0.5, 0, 255).astype(np.uint8))
