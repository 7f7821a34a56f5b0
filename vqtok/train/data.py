"""Training data: the files of a folder, labels from sub-folders, and reproducible batches.

Batch ``step`` is a pure function of ``(seed, step)``: file choice and each example's random segment
come from generators seeded by them. So a resumed run sees exactly the batches an uninterrupted run
would, and under ``torchrun`` each rank takes its own slice of the same global batch.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import torch

from .. import distributed
from ..errors import UsageError, VqtokError
from ..plugin.modality import Modality, find_files


def read_example(path: Path, read: Callable[[], torch.Tensor]) -> torch.Tensor:
    """``read()`` of the example of ``path``; a plugin's unexpected failure still names the file."""
    try:
        return read()
    except VqtokError:
        raise
    except Exception as e:  # chained, so that --debug shows where in the plugin it broke
        from ..plugin.registry import blame

        plugin = blame(e)
        where = f" (in plugin {plugin.name!r}, {plugin.module})" if plugin else ""
        raise VqtokError(f"{path}: {type(e).__name__}: {e}{where}") from e


class TrainingSet:
    def __init__(self, root: Path, modality: Modality, options):
        self.root = Path(root)
        self.modality, self.options = modality, options
        self.files = find_files(self.root, modality)
        base = self.root if self.root.is_dir() else self.root.parent
        labels = [modality.example_label(p, base) for p in self.files]
        self.label_names = sorted({lab for lab in labels if lab is not None})
        self.labels = torch.tensor([self.label_names.index(lab) if lab is not None else -1 for lab in labels])

    def __len__(self) -> int:
        return len(self.files)

    def example(self, index: int, seed: int) -> torch.Tensor:
        g = torch.Generator().manual_seed(seed)
        path = self.files[index]
        return read_example(path, lambda: self.modality.training_example(path, self.options, g))

    def batch(
        self, step: int, size: int, seed: int, rank: int = 0, world: int = 1, multiple: int = 1
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The ``rank``-th slice of global batch ``step``: examples ``(size // world, C, *example_shape)``,
        each spatial axis cropped to a multiple of ``multiple`` (the model's hop), and their labels
        ``(size // world,)`` (indices into ``label_names``; -1 for a file outside any class folder)."""
        g = torch.Generator().manual_seed(seed * 1_000_003 + step)
        picks = torch.randint(len(self.files), (size,), generator=g)
        example_seeds = torch.randint(2**62, (size,), generator=g)
        mine = list(distributed.rows_of_rank(size, rank, world))
        x = torch.stack([self.example(int(picks[i]), int(example_seeds[i])) for i in mine])
        for axis in range(2, x.ndim):
            usable = x.shape[axis] - x.shape[axis] % multiple
            if usable == 0:
                raise UsageError(
                    f"training examples of size {x.shape[axis]} are shorter than the model's "
                    f"hop {multiple}; make the examples longer or the strides smaller"
                )
            x = x.narrow(axis, 0, usable)
        return x, self.labels[picks[mine]]

    def class_names(self) -> list[str | None]:
        """The class folder of each file (None for a file outside any)."""
        return [self.label_names[i] if i >= 0 else None for i in self.labels.tolist()]

    def require_labels(self) -> None:
        """For conditional families: every file must lie in a class sub-folder."""
        unlabelled = [f for f, lab in zip(self.files, self.labels.tolist()) if lab < 0]
        if not self.label_names or unlabelled:
            example = f" ({unlabelled[0]} is not)" if unlabelled and self.label_names else ""
            raise UsageError(
                f"{self.root}: a conditional model needs labelled data: put the files of each "
                f"class in a sub-folder named after the class{example}"
            )


def evaluation_batches(
    files: list[Path], modality: Modality, options, batch_size: int
) -> Iterator[tuple[list[int], torch.Tensor]]:
    """The evaluation examples (:meth:`Modality.evaluation_example`) of ``files`` in order, stacked into
    batches ``(B, C, *S)`` of at most ``batch_size`` consecutive files of equal shape, each with the
    indices of its files."""
    pending: list[tuple[int, torch.Tensor]] = []
    for i, path in enumerate(files):
        x = read_example(path, lambda path=path: modality.evaluation_example(path, options))
        if pending and (len(pending) == batch_size or pending[0][1].shape != x.shape):
            yield [j for j, _ in pending], torch.stack([t for _, t in pending])
            pending = []
        pending.append((i, x))
    if pending:
        yield [j for j, _ in pending], torch.stack([t for _, t in pending])
