"""Fuzz targets: every reader of outside input, fed arbitrary bytes.

Each target takes ``bytes`` and must either read them or refuse them with a ``VqtokError`` (the one-line
errors the CLI prints); any other exception is a bug the fuzzer reports. ``SEEDS`` gives each target a few
valid inputs to start from, so that mutations reach past the first header check.

Run them with ``python fuzz/run.py`` (coverage-guided by atheris where it is installed, else hypothesis);
``tests/test_fuzz.py`` runs each for a short, fixed-seed budget in the test suite.
"""

from __future__ import annotations

import io
import json
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from vqtok import config
from vqtok.errors import VqtokError
from vqtok.files.codes import CodeFile, code_bytes, parse_codes
from vqtok.files.model import read_model, write_model

_TMP = Path(tempfile.mkdtemp(prefix="vqtok-fuzz-"))


def _as_file(data: bytes, name: str) -> Path:
    path = _TMP / name
    path.write_bytes(data)
    return path


def codes(data: bytes) -> None:
    parse_codes(data, "fuzz.npz")


def model_file(data: bytes) -> None:
    read_model(_as_file(data, "fuzz.safetensors"))


def audio(data: bytes) -> None:
    from vqtok_audio import reading

    for suffix in (".wav", ".flac"):
        reading.load(_as_file(data, "fuzz" + suffix), 8000)


def image(data: bytes) -> None:
    from vqtok_image import ImageModality, ImageOptions

    ImageModality().load(_as_file(data, "fuzz.png"), ImageOptions())


def recipe(data: bytes) -> None:
    from vqtok.plugin.registry import get_modality

    path = _as_file(data, "fuzz.toml")
    config.resolve(config.read_recipe(path), get_modality=get_modality)


def override(data: bytes) -> None:
    from vqtok.plugin.registry import get_modality

    text = data.decode("utf-8", errors="replace")
    config.resolve({"modality": "audio", "data": "x"}, [text], get_modality=get_modality)


TARGETS: dict[str, Callable[[bytes], None]] = {
    "codes": codes,
    "model": model_file,
    "audio": audio,
    "image": image,
    "recipe": recipe,
    "override": override,
}


def load_readers(target: str) -> None:
    """Import everything ``target`` reads with, by reading one of its seeds (lazy imports and PIL's format
    plugins included), so that a coverage-instrumenting engine sees all of it."""
    from PIL import Image

    Image.init()  # every format plugin PIL has
    for seed in seeds(target):
        check(target, seed)


def check(target: str, data: bytes) -> None:
    """Run ``target`` on ``data``: returns, or raises the VqtokError's absence as the bug it is."""
    try:
        TARGETS[target](data)
    except VqtokError:
        pass


def seeds(target: str) -> list[bytes]:
    """A few valid inputs of ``target``'s kind."""
    if target == "codes":
        arrays = {"codes": np.arange(12, dtype=np.int16).reshape(2, 6)}
        return [code_bytes(CodeFile(arrays, {"size": [480], "modality": "audio"}), as_npz) for as_npz in (True, False)]
    if target == "model":
        import torch

        path = _TMP / "seed.safetensors"
        write_model(path, {"model.w": torch.ones(2, 3)}, {"modality": "audio", "config": {"modality": "audio"}})
        return [path.read_bytes()]
    if target == "audio":
        import soundfile as sf

        out = []
        for fmt in ("WAV", "FLAC"):
            buffer = io.BytesIO()
            sf.write(buffer, np.sin(np.arange(400) * 0.1).astype(np.float32), 8000, format=fmt)
            out.append(buffer.getvalue())
        return out
    if target == "image":
        from PIL import Image

        buffer = io.BytesIO()
        Image.fromarray(np.arange(48, dtype=np.uint8).reshape(4, 4, 3)).save(buffer, "PNG")
        return [buffer.getvalue()]
    if target == "recipe":
        return [b'modality = "audio"\ndata = "x"\n[model]\nstrides = [2, 4]\ncodebook_size = 64\n[train]\nsteps = 5\n']
    if target == "override":
        return [b"model.codebook_size=64", b"train.lr=1e-3", b"audio.speed=[0.9, 1.1]"]
    raise KeyError(target)


def describe(data: bytes) -> str:
    return json.dumps(data[:200].decode("latin-1"))
