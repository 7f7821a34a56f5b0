"""``vqtok sample``: where the samples go (one file, one grid picture, or a folder of files)."""

from __future__ import annotations

from pathlib import Path

import torch

from ..errors import UsageError
from ..files.atomic import atomic_path
from ..plugin.modality import Modality


def sample_targets(out: Path, n: int, modality: Modality, names: list[str]) -> tuple[Path | None, list[Path]]:
    """``(one file for the whole batch or None, [one file per sample])`` for ``-o out``.

    ``out`` with a suffix the modality writes is one file: a single sample, or a grid of them where
    the modality draws grids (images); anything else is a folder of ``sample-000<suffix>`` files.
    ``names`` (one per sample, may be empty strings) are added to the file names, e.g. the label."""
    if out.suffix and not out.is_dir():
        if not modality.can_write(out):
            raise UsageError(
                f"-o {out}: not a suffix this {modality.name} model writes "
                f"({', '.join(modality.writes())}); or give a folder"
            )
        return out, []
    if out.exists() and not out.is_dir():
        raise UsageError(f"-o {out}: exists and is not a folder")
    suffix = modality.output_suffix()
    return None, [out / f"sample-{i:03d}{'-' + name if name else ''}{suffix}" for i, name in enumerate(names)]


def write_samples(x: torch.Tensor, one: Path | None, files: list[Path], modality: Modality, options) -> None:
    """Write ``x`` ``(N, C, *S)``: into ``one`` file (a single sample or a batch picture) or ``files``."""
    if one is not None:
        with atomic_path(one) as tmp:
            if x.shape[0] == 1:
                modality.save(x[0], tmp, options)
            elif not modality.save_batch(x, tmp, options):
                raise UsageError(
                    f"-o {one}: {x.shape[0]} {modality.name} samples do not fit in one file; "
                    "give a folder (-o DIR) or -n 1"
                )
        return
    files[0].parent.mkdir(parents=True, exist_ok=True)
    for sample, path in zip(x, files):
        with atomic_path(path) as tmp:
            modality.save(sample, tmp, options)
