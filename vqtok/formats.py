"""The model file (one ``.safetensors``) and the code files (``.npy`` / ``.npz``).

Model file: tensors under ``model.`` (and ``prior.`` once a prior is trained) and string metadata:

==================  ==============================================================================
``format``          ``"vqtok-model"``
``format_version``  ``"1"``
``vqtok_version``   the version that wrote it
``modality``        e.g. ``"audio"``
``family``          e.g. ``"vqvae"``
``config``          the full resolved :class:`vqtok.config.RunConfig` as JSON
``decode``          JSON: what decoding needs (hop, n_q, codebook sizes, sample rate or image size, labels)
``training``        JSON: a summary of the run (steps, final losses, time, data)
``model_hash``      sha256 of the ``model.`` tensors, first 16 hex digits; code files name it
``prior``           JSON, when a prior was trained (:mod:`vqtok.prior.store`); its tensors are ``prior.*``
``export``          JSON, in a file made by ``vqtok export`` (:mod:`vqtok.export`): storage dtype, source hash
==================  ==============================================================================

Code files hold a model's latents: integer codes (int16 when every codebook has at most 32768 entries,
else int32) or, for the continuous families (VAE, CVAE), float32 posterior means. ``.npy``: one array
alone, ``(n_q, T)`` codes for 1-D signals, ``(H, W)`` for images (``(n_q, H, W)`` when n_q > 1),
``(D, T)`` / ``(D, H, W)`` means. ``.npz``: each latent array under its name (``codes``, ``mean``, or
VQ-VAE-2's ``top`` and ``bottom``) and ``meta``, a 0-d string array of JSON (model hash, modality,
original length or size, sample rate, label). Never pickled, never read with ``allow_pickle=True``.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from . import __version__
from .atomic import atomic_path
from .errors import UsageError, VqtokError, first_line

FORMAT = "vqtok-model"
FORMAT_VERSION = "1"
JSON_KEYS = ("config", "decode", "training", "prior", "export")
CONTENT_HASH = "content_hash"  # metadata: tensor_hash of every tensor in the file (files before it have none)


def tensor_hash(tensors: dict[str, torch.Tensor]) -> str:
    h = hashlib.sha256()
    for key in sorted(tensors):
        t = tensors[key].detach().cpu().contiguous()
        h.update(f"{key}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()[:16]


@dataclass
class ModelFile:
    tensors: dict[str, torch.Tensor]
    meta: dict  # strings, with the JSON entries already parsed

    def section(self, prefix: str) -> dict[str, torch.Tensor]:
        """The tensors under ``prefix.``, with the prefix removed."""
        p = prefix + "."
        return {k[len(p):]: v for k, v in self.tensors.items() if k.startswith(p)}


def model_stem(path: Path) -> str:
    """``x`` for ``x.safetensors``: the name the files written beside a model file start with."""
    name = Path(path).name
    return name[: -len(".safetensors")] if name.endswith(".safetensors") else name


def write_tensors(path: Path, tensors: dict[str, torch.Tensor], strings: dict[str, str]) -> None:
    """Write a safetensors file atomically, with the hash of all its tensors in the metadata
    (``content_hash``), which :func:`read_safetensors` checks: a flipped bit or a bad copy is caught."""
    tensors = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
    strings = {**strings, CONTENT_HASH: tensor_hash(tensors)}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=strings)


def write_model(path: Path, tensors: dict[str, torch.Tensor], meta: dict) -> str:
    """Write tensors and metadata atomically; returns the model hash."""
    model_hash = tensor_hash({k: v for k, v in tensors.items() if k.startswith("model.")})
    strings = {"format": FORMAT, "format_version": FORMAT_VERSION, "vqtok_version": __version__,
               "model_hash": model_hash}
    for k, v in meta.items():
        strings[k] = json.dumps(v, sort_keys=True) if k in JSON_KEYS else str(v)
    write_tensors(path, tensors, strings)
    return model_hash


def read_safetensors(path: Path, tensors: bool = True) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Tensors (none when ``tensors`` is False: the metadata alone, without reading the weights) and raw
    metadata of any safetensors file; clear errors for missing or broken files."""
    path = Path(path)
    if not path.is_file():
        raise VqtokError(f"{path}: no such file")
    if not os.access(path, os.R_OK):  # safetensors would call it missing
        raise VqtokError(f"{path}: cannot read it (permission denied)")
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            loaded = {k: f.get_tensor(k) for k in f.keys()} if tensors else {}
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        raise VqtokError(f"{path}: not a readable safetensors file ({first_line(e)})") from None
    if tensors and CONTENT_HASH in meta and tensor_hash(loaded) != meta[CONTENT_HASH]:
        raise VqtokError(f"{path}: damaged: its tensors differ from the content hash recorded when it was written "
                         "(a flipped bit or a bad copy)")
    return loaded, meta


def read_model(path: Path, tensors: bool = True) -> ModelFile:
    """A vqtok model file; with ``tensors=False`` its metadata only (``ModelFile.tensors`` empty)."""
    loaded, meta = read_safetensors(path, tensors)
    if meta.get("format") != FORMAT:
        raise VqtokError(f"{path}: a safetensors file, but not a vqtok model (no vqtok metadata)")
    if meta.get("format_version") != FORMAT_VERSION:
        raise VqtokError(
            f"{path}: model format version {meta.get('format_version')!r}; this vqtok reads {FORMAT_VERSION!r}"
        )
    if "model_hash" not in meta:
        raise VqtokError(f"{path}: damaged vqtok metadata (no model_hash)")
    parsed = dict(meta)
    try:
        for k in JSON_KEYS:
            parsed[k] = json.loads(meta.get(k, "{}"))
    except json.JSONDecodeError:
        raise VqtokError(f"{path}: damaged vqtok metadata (invalid JSON)") from None
    return ModelFile(loaded, parsed)


# ---- code files -----------------------------------------------------------------------------------

@dataclass
class CodeFile:
    """The arrays of a code file by name (a bare ``.npy`` holds one, named ``BARE``) and its meta."""

    arrays: dict[str, np.ndarray]
    meta: dict | None  # None for a bare .npy

    @classmethod
    def bare(cls, array: np.ndarray) -> "CodeFile":
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
        raise UsageError(f"these latents have {len(cf.arrays)} arrays ({', '.join(cf.arrays)}), which a .npy "
                         "cannot hold: write .npz (-o codes.npz or --format npz)")
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
            raise VqtokError(f"{name}: not a vqtok code file (.npy/.npz)"
                             + ("; it is empty" if not data else ""))
        return CodeFile.bare(np.load(io.BytesIO(data), allow_pickle=False))
    except VqtokError:
        raise
    except Exception as e:  # numpy raises ValueError, OSError, EOFError, zipfile errors ...
        raise VqtokError(f"{name}: not a vqtok code file (.npy/.npz): {first_line(e)}") from None
