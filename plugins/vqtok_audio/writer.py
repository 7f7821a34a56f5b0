"""Writing a mono signal piece by piece."""

from __future__ import annotations

from pathlib import Path

import soundfile as sf
import torch

from vqtok.errors import VqtokError
from vqtok.files.atomic import DISK_FULL, NOT_ALLOWED
from vqtok.modality import SignalWriter

from .sound_formats import output_format


class AudioWriter(SignalWriter):
    """Takes consecutive ``(1, n)`` pieces in [-1, 1] (clipped) and writes them to ``path`` as they come,
    in the format its suffix names. Atomicity is the caller's: the core writes to a temporary name
    (``vqtok.atomic.atomic_path``) and renames it."""

    def __init__(self, path: Path, sample_rate: int):
        self.path = Path(path)
        file_format, subtype = output_format(self.path)
        try:
            self.path.touch()  # so that a missing folder or permission fails with the OS's own reason
            self.file = sf.SoundFile(self.path, "w", sample_rate, 1, subtype, format=file_format)
        except (sf.SoundFileError, OSError) as e:
            raise _write_error(self.path, e) from None

    def write(self, piece: torch.Tensor) -> None:
        if piece.dim() != 2 or piece.shape[0] != 1:
            raise ValueError(f"expected a (1, n) mono piece, got shape {tuple(piece.shape)}")
        self.file.write(piece.detach()[0].float().clamp(-1.0, 1.0).cpu().numpy())

    def close(self) -> None:
        self.file.close()

    def __exit__(self, *exc):
        self.close()  # after an error too, so that no file handle is left open


def _write_error(path: Path, error: Exception) -> Exception:
    """libsndfile's failure as one line naming ``path``; the system's (permissions, a full disk) as they are,
    for the atomic write around this one to name the file it stands for."""
    if isinstance(error, OSError) and error.errno in DISK_FULL + NOT_ALLOWED:
        return error
    if isinstance(error, sf.LibsndfileError):
        reason = error.error_string
    else:
        reason = error.strerror if isinstance(error, OSError) and error.strerror else str(error)
    return VqtokError(f"{path}: cannot write ({' '.join(reason.split())})")
