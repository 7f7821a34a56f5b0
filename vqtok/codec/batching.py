"""Encoding many files, the short ones stacked into batches: what a corpus of clips or small images needs
to keep the cores (or a GPU) busy, where one file at a time leaves each pass of the network a sliver of work.

Files are read ahead a few dozen at a time. A file that the tokenizer encodes in one pass of the network
(it fits one chunk or one tile: :meth:`~vqtok.codec.long_inputs.LongInputs.one_pass_window`) waits for others
whose window has the same shape; each group goes through the network as one batch. Only windows of one
shape are stacked, never padded to a common size, so every file gets the code file that
:meth:`~vqtok.codec.Tokenizer.encode_file` would write for it alone, up to float rounding in the batched
convolutions (which can tip a near tie between two codebook entries). Longer files are encoded alone, in
chunks or tiles as usual.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import torch

from ..errors import UsageError, VqtokError
from ..files.codes import CodeFile
from .long_inputs import CHUNK_SAMPLES

READ_AHEAD = 64  # files read before the batches of the ones read are encoded
MAX_BATCH_FILES = 32  # the default of ``vqtok encode --batch``
MAX_BATCH_ELEMENTS = CHUNK_SAMPLES  # input elements per channel in one batch: the memory of one streamed chunk


def encode_files(
    tok, paths: list[Path], n_q: int | None = None, label: str | None = None, max_batch: int = MAX_BATCH_FILES
) -> Iterator[tuple[int, CodeFile | None, VqtokError | None]]:
    """For each of ``paths``, its index with its code file or with the error that file gave (a corrupt or
    unreadable file does not stop the others), in an order that keeps files of one size together. A wrong
    ``n_q`` or ``label`` is a :class:`UsageError`, raised before any file is read. ``max_batch`` 1 encodes
    each file alone (bit for bit :meth:`~vqtok.codec.Tokenizer.encode_file`'s codes; a batch's agree with
    them up to float rounding: a position whose two nearest codebook entries are equally near within it
    may get the other one)."""
    n_q, labels = tok.check_n_q(n_q), tok.labels(label)
    for start in range(0, len(paths), READ_AHEAD):
        groups: dict[tuple[int, ...], list[tuple[int, torch.Tensor, list[int]]]] = {}
        for i, path in enumerate(paths[start : start + READ_AHEAD], start):
            try:
                x, window = _read(tok, path)
                if window is None:  # long: in chunks or tiles, alone
                    size = list(x.shape[1:]) if x is not None else None
                    alone = (
                        tok.encode_file(path, n_q, label)
                        if x is None
                        else tok.code_file(tok.encode_input(x, n_q, labels), size, n_q, label)
                    )
            except UsageError:
                raise
            except VqtokError as e:
                yield i, None, e
                continue
            if window is None:
                yield i, alone, None
            else:
                groups.setdefault(tuple(window.shape), []).append((i, window, list(x.shape[1:])))
        for shape, members in groups.items():
            per_batch = max(1, min(max_batch, MAX_BATCH_ELEMENTS // math.prod(shape[1:])))
            for first in range(0, len(members), per_batch):
                yield from _encode_batch(tok, members[first : first + per_batch], n_q, labels, label)


def _read(tok, path: Path) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """The input ``(C, *S)`` of ``path`` and its one-pass window (None when it is encoded in pieces); a
    streamed modality's long file is not read at all (None, None): it is streamed when encoded."""
    opts = tok.config.options
    tok.check_supported(path)
    if tok.modality.long_inputs == "stream" and not tok.fits_one_pass(tok.modality.length(path, opts)):
        return None, None
    x = tok.modality.load(path, opts)
    return x, tok.one_pass_window(x)


def _encode_batch(tok, batch, n_q, labels, label) -> Iterator[tuple[int, CodeFile, None]]:
    """``batch``: (index, window ``(C, *S')``, input size) of windows of one shape -> each file's code file."""
    stacked = torch.stack([window for _, window, _ in batch])
    latents = tok.encode_batch(stacked, n_q, None if labels is None else labels.expand(len(batch)))
    for row, (i, _, size) in enumerate(batch):
        yield i, tok.code_file({k: v[row] for k, v in latents.items()}, size, n_q, label), None
