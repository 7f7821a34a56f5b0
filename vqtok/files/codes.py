"""The code files (``.npy`` / ``.npz``).

Code files hold a model's latents: integer codes (int16 when every codebook has at most 32768 entries,
else int32) or, for the continuous families (VAE, CVAE), float32 posterior means. ``.npy``: one array
alone, ``(n_q, T)`` codes for 1-D signals, ``(H, W)`` for images (``(n_q, H, W)`` when n_q > 1),
``(D, T)`` / ``(D, H, W)`` means. ``.npz``: each latent array under its name (``codes``, ``mean``, or
VQ-VAE-2's ``top`` and ``bottom``) and ``meta``, a 0-d string array of JSON (model hash, modality,
original length or size, sample rate, label). Never pickled, never read with ``allow_pickle=True``.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass

import numpy as np

from ..errors import UsageError, VqtokError, first_line


@dataclass
class CodeFile:
    """The arrays of a code file by name (a bare ``.npy`` holds one, named ``BARE``) and its meta."""

    arrays: dict[str, np.ndarray]
    meta: dict | None  # None for a bare .npy

    @classmethod
    def bare(cls, array: np.ndarray) -> CodeFile:
        return cls({BARE: array}, None)


BARE = ""  # the name of the one array of a bare .npy


def code_dtype(codebook_sizes: list[int]) -> np.dtype:
    return np.dtype(np.int16) if max(codebook_sizes) <= 32768 else np.dtype(np.int32)


def code_bytes(cf: CodeFile, as_npz: bool) -> bytes:
    """The bytes of a ``.npz`` (every array and the meta) or of a ``.npy`` (the one array)."""
    buf = io.BytesIO()
    if as_npz:
        np.savez(buf, **cf.arrays, meta=np.array(json.dumps(cf.meta or {}, sort_keys=True)))
    elif len(cf.arrays) == 1:
        np.save(buf, next(iter(cf.arrays.values())), allow_pickle=False)
    else:
        raise UsageError(
            f"these latents have {len(cf.arrays)} arrays ({', '.join(cf.arrays)}), which a .npy "
            "cannot hold: write .npz (-o codes.npz or --format npz)"
        )
    return buf.getvalue()


def parse_codes(data: bytes, name: str) -> CodeFile:
    """Read ``.npy`` or ``.npz`` bytes (the format is recognised by content, not by name)."""
    try:
        if data[:4] == b"PK\x03\x04":
            with np.load(io.BytesIO(data), allow_pickle=False) as z:
                arrays = {k: z[k] for k in z.files if k != "meta"}
                if not arrays:
                    raise VqtokError(f"{name}: an .npz without code arrays")
                meta = json.loads(str(z["meta"][()])) if "meta" in z.files else None
                return CodeFile(arrays, meta)
        if data[:6] != b"\x93NUMPY":  # else np.load guesses a pickle and says so, misleadingly
            raise VqtokError(f"{name}: not a vqtok code file (.npy/.npz)" + ("; it is empty" if not data else ""))
        return CodeFile.bare(np.load(io.BytesIO(data), allow_pickle=False))
    except VqtokError:
        raise
    except Exception as e:  # numpy raises ValueError, OSError, EOFError, zipfile errors ...
        raise VqtokError(f"{name}: not a vqtok code file (.npy/.npz): {first_line(e)}") from None
