"""Encode and decode large images tile by tile, with memory bounded by the tile, not the image.

The 2-D counterpart of :mod:`vqtok.codec.chunking`: the code grid is cut into tiles of ``tile x tile``
positions; each tile is encoded (decoded) inside a window that reaches ``context`` positions further on
every side where the image goes on, and only the tile's own part of the result is kept. With ``context``
at least the network's receptive radius the result equals processing the whole image at once, so no
seam can show, and the memory a network needs is that of one window.

Latents are one tensor ``(c, H, W)`` or a dict of them at several rates (VQ-VAE-2's top and bottom
codes): ``tile`` and ``context`` count positions of the coarsest grid, and an array with ``r`` times as
many positions along an axis is cut at ``r`` times the indices.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import torch

from .chunking import Latents

Span = tuple[int, int, int, int]  # (lo, a, b, hi): window [lo, hi) around the tile's own [a, b)


def spans(n: int, tile: int, context: int) -> list[Span]:
    """The tiles of an axis of ``n`` positions, each with its window clipped to ``[0, n)``."""
    return [(max(a - context, 0), a, min(a + tile, n), min(a + tile + context, n)) for a in range(0, n, tile)]


def grid_size(latents: Latents) -> tuple[int, int]:
    """``(H, W)`` positions of the coarsest array."""
    arrays = latents.values() if isinstance(latents, dict) else [latents]
    return min(v.shape[-2] for v in arrays), min(v.shape[-1] for v in arrays)


def _scaled(v: torch.Tensor, grid: tuple[int, int], rows: tuple[int, int], cols: tuple[int, int]):
    """The index of ``v`` for coarsest-grid ``rows`` and ``cols`` (grid: the coarsest grid's size)."""
    ry, rx = v.shape[-2] // grid[0], v.shape[-1] // grid[1]
    return (..., slice(rows[0] * ry, rows[1] * ry), slice(cols[0] * rx, cols[1] * rx))


def cut(latents: Latents, rows: tuple[int, int], cols: tuple[int, int]) -> Latents:
    """Coarsest-grid ``rows`` x ``cols`` of every array."""
    grid = grid_size(latents)
    if isinstance(latents, dict):
        return {k: v[_scaled(v, grid, rows, cols)] for k, v in latents.items()}
    return latents[_scaled(latents, grid, rows, cols)]


def windows(shape: tuple[int, int], tile: int, context: int) -> Iterator[tuple[Span, Span]]:
    """Every tile of a ``shape`` grid, as (row span, column span)."""
    for row in spans(shape[0], tile, context):
        for col in spans(shape[1], tile, context):
            yield row, col


def encode_tiled(
    x: torch.Tensor, encode: Callable[[torch.Tensor], Latents], hop: int, context: int, tile: int
) -> Latents:
    """``(C, H, W)`` -> latents on the ``(ceil(H / hop), ceil(W / hop))`` grid. ``encode`` maps a ``(C, h, w)``
    window to the latents of its ``(ceil(h / hop), ceil(w / hop))`` grid, padding its end as a whole-image
    encode pads the image's (only windows at the image's end are not whole hops), so no padded copy of
    the whole image is made."""
    shape = (-(-x.shape[-2] // hop), -(-x.shape[-1] // hop))
    out: Latents | None = None
    for (y0, ya, yb, y1), (x0, xa, xb, x1) in windows(shape, tile, context):
        part = encode(x[:, y0 * hop : y1 * hop, x0 * hop : x1 * hop])
        own = cut(part, (ya - y0, yb - y0), (xa - x0, xb - x0))
        if out is None:  # now the arrays' shapes and types are known
            out = _like(part, shape, (y1 - y0, x1 - x0))
        _place(out, own, shape, (ya, yb), (xa, xb))
    return out


def decode_tiled(
    latents: Latents, decode: Callable[[Latents], torch.Tensor], hop: int, context: int, tile: int
) -> torch.Tensor:
    """Latents on an ``(H, W)`` grid -> ``(C, H * hop, W * hop)``. ``decode`` maps a window's latents to
    ``(C, h * hop, w * hop)``; the result has its dtype."""
    shape = grid_size(latents)
    out: torch.Tensor | None = None
    for (y0, ya, yb, y1), (x0, xa, xb, x1) in windows(shape, tile, context):
        piece = decode(cut(latents, (y0, y1), (x0, x1)))
        piece = piece[:, (ya - y0) * hop : (yb - y0) * hop, (xa - x0) * hop : (xb - x0) * hop]
        if out is None:
            out = piece.new_empty(piece.shape[0], shape[0] * hop, shape[1] * hop)
        out[:, ya * hop : yb * hop, xa * hop : xb * hop] = piece
    return out


def _like(part: Latents, shape: tuple[int, int], window: tuple[int, int]) -> Latents:
    """Empty arrays like ``part`` (the latents of a window of ``window`` positions) for a ``shape`` grid."""

    def grow(v: torch.Tensor) -> torch.Tensor:
        ry, rx = v.shape[-2] // window[0], v.shape[-1] // window[1]
        return v.new_empty(*v.shape[:-2], shape[0] * ry, shape[1] * rx)

    return {k: grow(v) for k, v in part.items()} if isinstance(part, dict) else grow(part)


def _place(out: Latents, own: Latents, shape: tuple[int, int], rows: tuple[int, int], cols: tuple[int, int]):
    if isinstance(out, dict):
        for k, v in out.items():
            v[_scaled(v, shape, rows, cols)] = own[k]
    else:
        out[_scaled(out, shape, rows, cols)] = own
