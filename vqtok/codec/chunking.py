"""Encode and decode long inputs piece by piece along their last axis (time), memory bounded whatever the
length: 1-D signals ``(C, T)``, or maps with a time axis ``(C, ..., T)`` (a spectrogram).

Each chunk of ``chunk`` codes is processed together with ``context`` codes of real signal on each side,
and only its own part of the result is kept. With ``context`` at least the network's receptive radius,
the output equals encoding (or decoding) the whole signal at once: no seams, and the same codes for the
same file however it is cut. The signal's end is padded with zeros up to a multiple of the hop, as a
whole-signal encode does.

Latents are one tensor ``(c, T)`` or a dict of them at several rates (VQ-VAE-2's top and bottom codes):
``hop``, ``chunk`` and ``context`` count positions of the coarsest one, and an array with ``r`` times
as many positions is cut at ``r`` times the indices.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

import torch
from torch.nn import functional as F

Latents = torch.Tensor | dict[str, torch.Tensor]


def positions(latents: Latents) -> int:
    """Positions of the coarsest array (its last axis)."""
    if isinstance(latents, dict):
        return min(v.shape[-1] for v in latents.values())
    return latents.shape[-1]


def cut(latents: Latents, a: int, b: int, unit: int | None = None) -> Latents:
    """Positions ``[a, b)`` of the coarsest array (with ``unit`` of them in all), the same span of
    every finer one."""
    if not isinstance(latents, dict):
        return latents[..., a:b]
    unit = unit or positions(latents)
    return {k: v[..., a * (v.shape[-1] // unit) : b * (v.shape[-1] // unit)] for k, v in latents.items()}


def join(parts: list[Latents]) -> Latents:
    if isinstance(parts[0], dict):
        return {k: torch.cat([p[k] for p in parts], dim=-1) for k in parts[0]}
    return torch.cat(parts, dim=-1)


def encode_stream(pieces: Iterable[torch.Tensor], encode: Callable, hop: int, context: int, chunk: int) -> torch.Tensor:
    """Consecutive ``(C, ..., n)`` pieces -> codes ``(n_q, ..., ceil(T / hop))`` (or a dict of latents).

    ``encode`` maps ``(C, ..., L)`` (L a multiple of ``hop``) to ``(n_q, ..., L / hop)`` (or a dict of
    latents whose coarsest array has ``L / hop`` positions on its last axis).
    """
    pieces = iter(pieces)
    buffer: torch.Tensor | None = None
    start = 0  # absolute sample index of buffer[:, 0]
    ended, out, a = False, [], 0  # a: first sample of the current chunk
    while True:
        want = a + (chunk + context) * hop  # window end needed, in samples
        while not ended and (buffer is None or start + buffer.shape[-1] < want):
            piece = next(pieces, None)
            if piece is None:
                ended = True
            else:
                buffer = piece if buffer is None else torch.cat([buffer, piece], dim=-1)
        if buffer is None:
            break
        end = start + buffer.shape[-1]
        if a >= end:
            break
        lo = max(a - context * hop, 0)
        hi = min(want, end)
        window = buffer[..., lo - start : hi - start]
        window = F.pad(window, (0, -window.shape[-1] % hop))
        codes = encode(window)
        first = (a - lo) // hop
        out.append(cut(codes, first, first + chunk, window.shape[-1] // hop))
        a += chunk * hop
        keep_from = max(a - context * hop, 0)
        buffer, start = buffer[..., keep_from - start :], keep_from
    return join(out) if out else torch.zeros(0, 0, dtype=torch.long)


def decode_stream(
    codes: Latents, decode: Callable, hop: int, context: int, chunk: int, length: int | None = None
) -> Iterator[torch.Tensor]:
    """Codes ``(n, ..., T)`` (or a dict of latents) -> consecutive ``(C, ..., m)`` pieces of the signal,
    ``T * hop`` samples in all (or the first ``length``). ``decode`` maps ``(n, ..., t)`` to
    ``(C, ..., t * hop)``."""
    n = positions(codes)
    total = n * hop if length is None else min(length, n * hop)
    written = 0
    for a in range(0, n, chunk):
        lo, hi = max(a - context, 0), min(a + chunk + context, n)
        signal = decode(cut(codes, lo, hi, n))
        piece = signal[..., (a - lo) * hop : (a - lo + min(chunk, n - a)) * hop]
        piece = piece[..., : total - written]
        written += piece.shape[-1]
        if piece.shape[-1]:
            yield piece
