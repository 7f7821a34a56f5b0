"""The prior's data: the codes of a folder of files, encoded once with the model, and batches of them.

Files are encoded whole, as ``vqtok encode`` does (audio streamed in chunks, photos in tiles), where the
modality's models take files at their own size (:meth:`Modality.sees_whole_files`: audio, and images
trained on random crops); otherwise the modality's evaluation example (an image resized and cropped to
``image.size``, as trained) is encoded, in batches. Training batches crop each grid along every axis
to at most ``prior.window`` positions of the finest level (aligned to the coarsest), pad to the longest in the
batch and mask the padding out of the loss. Like the autoencoder's, batch ``step`` is a pure function of
``(seed, step)``.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
from rich.console import Console
from rich.progress import Progress

from .. import distributed
from ..codec import Tokenizer
from ..train.data import evaluation_batches
from .model import CodeBatch

Codes = dict[str, torch.Tensor]  # name -> (n_q, *G) int64, one example


@dataclass
class CodeSet:
    items: list[Codes]
    labels: torch.Tensor  # (N,) class indices, -1 for none
    files: list[Path]

    def __len__(self) -> int:
        return len(self.items)

    @classmethod
    def encode(
        cls, tok: Tokenizer, files: list[Path], labels: torch.Tensor, console: Console, batch_size: int = 32
    ) -> CodeSet:
        items: list[Codes] = []
        with Progress(console=console, transient=True) as progress:
            task = progress.add_task(f"encode {len(files)} file(s)", total=len(files))
            if tok.modality.sees_whole_files(tok.config.options):  # codes as `vqtok encode` writes them
                for path in files:
                    items.append(tok.from_file_arrays(tok.encode_file(path), str(path)))
                    progress.advance(task)
            else:
                for indices, x in evaluation_batches(files, tok.modality, tok.config.options, batch_size):
                    codes = tok.encode_batch(x)
                    items += [{k: v[i] for k, v in codes.items()} for i in range(len(indices))]
                    progress.advance(task, len(indices))
        return cls(items, labels, list(files))

    def subset(self, indices: list[int]) -> CodeSet:
        return CodeSet([self.items[i] for i in indices], self.labels[indices], [self.files[i] for i in indices])

    def batch(
        self,
        step: int,
        size: int,
        seed: int,
        hops: dict[str, int],
        window: int,
        rank: int = 0,
        world: int = 1,
        label_dropout: float = 0.0,
        no_label: int = -1,
        balance: str = "files",
    ) -> tuple[CodeBatch, torch.Tensor]:
        """The ``rank``-th slice of batch ``step``: ``size // world`` of ``size`` random examples, each
        cropped at a random place (see the module), and their labels ``(size // world,)``, each replaced
        by ``no_label`` with probability ``label_dropout``. ``balance``: every file equally likely
        (``files``), or every label, then a file of it (``labels``)."""
        g = torch.Generator().manual_seed(seed * 1_000_003 + step)
        picks = self._picks(size, g, balance)
        coarse = max(hops.values())
        finest = coarse // min(hops.values())  # finest positions per coarse position
        span = max(1, window // finest)  # the crop, in coarse positions
        crops = []
        for i in picks:
            item = self.items[i]
            name = max(item, key=lambda k: hops[k])
            starts = [int(torch.randint(max(1, n - span + 1), (), generator=g)) for n in item[name].shape[1:]]
            crops.append({k: _crop(v, starts, span, coarse // hops[k]) for k, v in item.items()})
        labels = self.labels[picks]
        if label_dropout:
            labels = torch.where(torch.rand(size, generator=g) < label_dropout, no_label, labels)
        mine = list(distributed.rows_of_rank(size, rank, world))
        return collate([crops[i] for i in mine]), labels[mine]

    def _picks(self, size: int, g: torch.Generator, balance: str) -> list[int]:
        if balance == "files":
            return torch.randint(len(self.items), (size,), generator=g).tolist()
        groups = [torch.nonzero(self.labels == label).flatten() for label in torch.unique(self.labels).tolist()]
        which = torch.randint(len(groups), (size,), generator=g).tolist()
        within = torch.rand(size, generator=g).tolist()
        return [int(groups[w][int(u * len(groups[w]))]) for w, u in zip(which, within)]

    def batches(self, size: int, hops: dict[str, int], window: int):
        """Every code once, in order: ``(CodeBatch, labels)`` of up to ``size`` tiles, each example cut into
        tiles of at most ``window`` positions of the finest level per axis, as the training crops are (so
        that a whole photo's codes are measured in bounded memory)."""
        tiles, labels = [], []
        for item, label in zip(self.items, self.labels.tolist()):
            for tile in _tiles(item, hops, window):
                tiles.append(tile)
                labels.append(label)
                if len(tiles) == size:
                    yield collate(tiles), torch.tensor(labels)
                    tiles, labels = [], []
        if tiles:
            yield collate(tiles), torch.tensor(labels)

    def counts(self, name: str, codebook_sizes: list[int]) -> list[torch.Tensor]:
        """How often each code of each codebook of latent ``name`` occurs: ``[(K_q,)]``."""
        return [
            sum(torch.bincount(item[name][q].reshape(-1), minlength=k) for item in self.items)
            for q, k in enumerate(codebook_sizes)
        ]


def _tiles(item: Codes, hops: dict[str, int], window: int) -> Iterator[Codes]:
    """``item`` cut into tiles of at most ``window`` finest positions per axis, aligned to the coarsest grid,
    row by row."""
    span = tile_span(hops, window)
    for starts in tile_starts(item, hops, window):
        yield crop_tile(item, starts, span, hops)


def tile_span(hops: dict[str, int], window: int) -> int:
    """The side of a tile in positions of the coarsest grid: ``window`` positions of the finest."""
    return max(1, window // (max(hops.values()) // min(hops.values())))


def tile_starts(item: Codes, hops: dict[str, int], window: int) -> list[tuple[int, ...]]:
    """Where each tile of ``item`` starts, in positions of the coarsest grid, row by row."""
    span = tile_span(hops, window)
    name = max(item, key=lambda k: hops[k])
    return list(itertools.product(*(range(0, n, span) for n in item[name].shape[1:])))


def crop_tile(item: Codes, starts: tuple[int, ...], span: int, hops: dict[str, int]) -> Codes:
    """The tile of ``item`` at ``starts`` (coarse positions), ``span`` coarse positions per axis or up to
    the edge; each level ``(n_q, *G_tile)``."""
    coarse = max(hops.values())
    return {k: _crop(v, list(starts), span, coarse // hops[k]) for k, v in item.items()}


def _crop(codes: torch.Tensor, starts: list[int], span: int, factor: int) -> torch.Tensor:
    """``codes`` ``(n_q, *G)`` cropped to ``span`` coarse positions from ``starts`` along each axis,
    at ``factor`` positions of this grid per coarse position."""
    for axis, start in enumerate(starts, start=1):
        codes = codes.narrow(axis, start * factor, min(span * factor, codes.shape[axis] - start * factor))
    return codes


def collate(items: list[Codes]) -> CodeBatch:
    """Examples of different sizes -> per name ``(codes (B, n_q, *G_max), mask (B, *G_max))``, padded at
    the end of each axis (a causal prior never looks at what comes after a position)."""
    out: CodeBatch = {}
    for name in items[0]:
        arrays = [item[name] for item in items]
        shape = [max(a.shape[d] for a in arrays) for d in range(arrays[0].dim())]
        codes = torch.zeros((len(arrays), *shape), dtype=torch.long)
        mask = torch.zeros((len(arrays), *shape[1:]), dtype=torch.bool)
        for i, a in enumerate(arrays):
            codes[(i, *(slice(0, s) for s in a.shape))] = a
            mask[(i, *(slice(0, s) for s in a.shape[1:]))] = True
        out[name] = (codes, mask)
    return out
