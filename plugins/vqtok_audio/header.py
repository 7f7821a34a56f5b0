"""Checks libsndfile leaves out: a WAV or AIFF file whose sample chunk was cut short.

libsndfile opens such a file without complaint and simply reports fewer frames than the header
declares, so a half-copied recording would otherwise train or decode as if it were whole.
"""

from __future__ import annotations

import struct
from pathlib import Path

from vqtok.errors import VqtokError

# container id -> (byte order of chunk sizes, id of the chunk holding the samples)
_SAMPLE_CHUNKS = {b"RIFF": ("<", b"data"), b"RIFX": (">", b"data"), b"FORM": (">", b"SSND")}
_UNKNOWN_SIZE = 0xFFFFFFFF  # written by recorders that stream before they know the length


def check_complete(path: Path) -> None:
    """Raise ``VqtokError`` if ``path`` is empty, or is a RIFF/AIFF file whose sample chunk claims
    more bytes than the file holds. Other formats are left to libsndfile."""
    size = path.stat().st_size
    if size == 0:
        raise VqtokError(f"{path}: empty file")
    with open(path, "rb") as f:
        layout = _SAMPLE_CHUNKS.get(f.read(4))
        if layout is None:
            return
        byte_order, sample_chunk = layout
        f.seek(12)  # after the container id, its size and the form type ("WAVE", "AIFF")
        while len(header := f.read(8)) == 8:
            chunk_id, chunk_size = header[:4], struct.unpack(byte_order + "I", header[4:])[0]
            if chunk_id == sample_chunk:
                available = size - f.tell()
                if chunk_size != _UNKNOWN_SIZE and chunk_size > available:
                    raise VqtokError(
                        f"{path}: truncated: its {chunk_id.decode()!r} chunk declares {chunk_size} bytes "
                        f"but only {available} are there"
                    )
                return
            f.seek(chunk_size + chunk_size % 2, 1)  # chunks are padded to an even length
