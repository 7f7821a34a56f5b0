"""A perceptually uniform colour map (viridis, from 11 reference colours) for spectrogram pictures."""

from __future__ import annotations

import numpy as np

_VIRIDIS_ANCHORS = np.array(
    [
        (68, 1, 84), (72, 36, 117), (65, 68, 135), (53, 95, 141), (42, 120, 142), (33, 145, 140),
        (34, 168, 132), (68, 191, 112), (122, 209, 81), (189, 223, 38), (253, 231, 37),
    ],
    dtype=np.float64,
)  # viridis at 0, 0.1, ..., 1


def _lookup_table(size: int = 256) -> np.ndarray:
    """``(size, 3)`` uint8: the anchors interpolated linearly."""
    where = np.linspace(0.0, 1.0, size)
    anchors = np.linspace(0.0, 1.0, len(_VIRIDIS_ANCHORS))
    channels = [np.interp(where, anchors, _VIRIDIS_ANCHORS[:, c]) for c in range(3)]
    return np.stack(channels, axis=1).round().astype(np.uint8)


VIRIDIS = _lookup_table()


def colorize(levels: np.ndarray) -> np.ndarray:
    """``(H, W)`` levels in [0, 1] -> ``(H, W, 3)`` uint8 RGB."""
    return VIRIDIS[np.clip(np.round(levels * 255), 0, 255).astype(np.intp)]
