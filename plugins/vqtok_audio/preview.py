"""Spectrogram pictures: log-mel spectrograms of originals above those of their reconstructions."""

from __future__ import annotations

from pathlib import Path

import torch
from PIL import Image, ImageDraw

from vqtok.metrics import log_mel_db

MAX_EXAMPLES = 4
N_MELS = 64
DYNAMIC_RANGE_DB = 80.0  # shown below each original's loudest mel bin; quieter is drawn as the floor
TILE_WIDTH, TILE_HEIGHT, GAP, LABEL_HEIGHT = 256, 128, 6, 14
BACKGROUND, TEXT = (255, 255, 255), (0, 0, 0)


def log_mel(x: torch.Tensor, sample_rate: int) -> torch.Tensor:
    """``(B, 1, T)`` -> ``(B, N_MELS, frames)`` power in dB (64 ms windows, 8 ms hops at any rate)."""
    return log_mel_db(x.detach().float().cpu(), sample_rate, n_mels=N_MELS)


def tile(levels: torch.Tensor) -> Image.Image:
    """``(N_MELS, frames)`` levels in [0, 1] -> a ``TILE_WIDTH x TILE_HEIGHT`` picture, low pitch at
    the bottom."""
    from matplotlib import colormaps  # imported when a picture is drawn

    rgb = colormaps["viridis"](levels.flip(0).numpy(), bytes=True)[..., :3]
    return Image.fromarray(rgb, "RGB").resize((TILE_WIDTH, TILE_HEIGHT), Image.Resampling.BILINEAR)


def save_preview(originals: torch.Tensor, reconstructions: torch.Tensor, path: Path, sample_rate: int) -> None:
    """Write a PNG: up to ``MAX_EXAMPLES`` originals ``(B, 1, T)`` in the top row, their reconstructions
    below, each pair on the original's dB scale so that lost or added energy shows."""
    count = min(len(originals), MAX_EXAMPLES)
    rows = [log_mel(batch[:count], sample_rate) for batch in (originals, reconstructions)]
    loudest = rows[0].amax(dim=(1, 2), keepdim=True)
    row_height = LABEL_HEIGHT + TILE_HEIGHT + GAP
    canvas = Image.new("RGB", (GAP + count * (TILE_WIDTH + GAP), GAP + 2 * row_height), BACKGROUND)
    draw = ImageDraw.Draw(canvas)
    for r, (label, db) in enumerate(zip(("original", "reconstruction"), rows)):
        top = GAP + r * row_height
        draw.text((GAP, top), label, fill=TEXT)
        levels = ((db - loudest) / DYNAMIC_RANGE_DB + 1).clamp(0, 1)
        for c in range(count):
            canvas.paste(tile(levels[c]), (GAP + c * (TILE_WIDTH + GAP), top + LABEL_HEIGHT))
    canvas.save(path, format="PNG")
