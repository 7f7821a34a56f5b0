"""The audio formats the plugin reads and writes: file suffix -> libsndfile format and subtype."""

from __future__ import annotations

from pathlib import Path

from vqtok.errors import UsageError

# Written as 16-bit PCM, or Vorbis in an OGG container; read whatever the file holds.
FORMATS = {
    ".wav": ("WAV", "PCM_16"),
    ".flac": ("FLAC", "PCM_16"),
    ".ogg": ("OGG", "VORBIS"),
    ".oga": ("OGG", "VORBIS"),
    ".aiff": ("AIFF", "PCM_16"),
    ".aif": ("AIFF", "PCM_16"),
    ".au": ("AU", "PCM_16"),
    ".caf": ("CAF", "PCM_16"),
    ".w64": ("W64", "PCM_16"),
}

SUFFIXES = tuple(FORMATS)


def output_format(path: Path) -> tuple[str, str]:
    """``(format, subtype)`` for writing ``path``, chosen by its suffix."""
    try:
        return FORMATS[path.suffix.lower()]
    except KeyError:
        raise UsageError(
            f"{path}: cannot write audio as {path.suffix or 'a file without a suffix'!r}; "
            f"use one of {', '.join(SUFFIXES)}"
        ) from None
