"""The model file: one ``.safetensors`` file, its tensors and metadata.

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
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from .. import __version__
from ..errors import VqtokError, first_line
from .atomic import atomic_path

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
        return {k[len(p) :]: v for k, v in self.tensors.items() if k.startswith(p)}


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
    strings = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "vqtok_version": __version__,
        "model_hash": model_hash,
    }
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
        raise VqtokError(
            f"{path}: damaged: its tensors differ from the content hash recorded when it was written "
            "(a flipped bit or a bad copy)"
        )
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
