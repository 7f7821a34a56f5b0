"""Encode and decode long 1-D signals piece by piece, with memory bounded whatever the length.

Each chunk of ``chunk`` codes is processed together with ``context`` codes of real signal on each side,
and only its own part of the result is kept. With ``context`` at least the network's receptive radius,
the output equals encoding (or decoding) the whole signal at once: no seams, and the same codes for the
same file however it is cut. The signal's end is padded with zeros up to a multiple of the hop, as a
whole-signal encode does.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

import torch
from torch.nn import functional as F


def encode_stream(pieces: Iterable[torch.Tensor], encode: Callable, hop: int, context: int,
                  chunk: int) -> torch.Tensor:
    """Consecutive ``(C, n)`` pieces -> codes ``(n_q, ceil(T / hop))``.

    ``encode`` maps ``(C, L)`` (L a multiple of ``hop``) to ``(n_q, L / hop)``.
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
        window = buffer[:, lo - start: hi - start]
        window = F.pad(window, (0, -window.shape[-1] % hop))
        codes = encode(window)
        first = (a - lo) // hop
        out.append(codes[:, first: first + chunk])
        a += chunk * hop
        keep_from = max(a - context * hop, 0)
        buffer, start = buffer[:, keep_from - start:], keep_from
    return torch.cat(out, dim=-1) if out else torch.zeros(0, 0, dtype=torch.long)


def decode_stream(codes: torch.Tensor, decode: Callable, hop: int, context: int, chunk: int,
                  length: int | None = None) -> Iterator[torch.Tensor]:
    """Codes ``(n, T)`` -> consecutive ``(C, m)`` pieces of the signal, ``T * hop`` samples in all
    (or the first ``length``). ``decode`` maps ``(n, t)`` to ``(C, t * hop)``."""
    total = codes.shape[-1] * hop if length is None else min(length, codes.shape[-1] * hop)
    written = 0
    for a in range(0, codes.shape[-1], chunk):
        lo, hi = max(a - context, 0), min(a + chunk + context, codes.shape[-1])
        signal = decode(codes[:, lo:hi])
        piece = signal[:, (a - lo) * hop: (a - lo + min(chunk, codes.shape[-1] - a)) * hop]
        piece = piece[:, : total - written]
        written += piece.shape[-1]
        if piece.shape[-1]:
            yield piece
