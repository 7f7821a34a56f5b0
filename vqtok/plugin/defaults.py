"""Which model a command uses: ``--model``, then ``$VQTOK_MODEL``, then a modality's shipped default.

A modality plugin may ship a trained model with its package (``Modality.default_model``). ``@NAME``
names the default of modality ``NAME`` (``--model @audio``, ``vqtok info @image``), or one of the other
models a plugin ships by name (``Modality.named_models``: ``@digits``). When no model is given at all,
the files a command reads or writes pick it: ``vqtok encode talk.wav`` uses the audio modality's
default, ``vqtok decode codes.npy -o photo.png`` the image one's.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from ..errors import UsageError, VqtokError

MODEL_ENV = "VQTOK_MODEL"
PREFIX = "@"


def installed_defaults() -> dict[str, Path]:
    """Modality name -> its shipped default model file, for every installed modality that has one."""
    from .registry import registry

    return {name: m.default_model for name, m in sorted(registry().modalities.items()) if m.default_model is not None}


def installed_models() -> dict[str, Path]:
    """Every shipped model by its ``@`` name: the modalities' defaults, then the plugins' named models
    (a named model that takes a modality's name, or another's name, is left out)."""
    from .registry import registry

    models = installed_defaults()
    for _, m in sorted(registry().modalities.items()):
        for name, path in sorted(m.named_models.items()):
            models.setdefault(name, path)
    return models


def _named(text: str) -> Path:
    """The shipped model ``text[1:]``: a modality's default (``@audio``) or a named one (``@digits``)."""
    name = text[len(PREFIX) :]
    models = installed_models()
    if name not in models:
        known = ", ".join(PREFIX + n for n in models) or "none installed"
        raise UsageError(f"{text}: no shipped model of that name (shipped: {known})")
    if not models[name].is_file():
        kind = f"default {name}" if name in installed_defaults() else "shipped"
        raise VqtokError(f"{text}: the {kind} model {models[name]} is missing from the installation")
    return models[name]


def model_path(model: Path | str | None, files: Iterable[Path] = ()) -> Path:
    """The model file a command uses.

    ``model`` (``--model``) wins, then ``$VQTOK_MODEL``; either may be ``@MODALITY``. Without both,
    ``files`` (the inputs, or the output to write) pick the default of the one modality that reads
    them; a usage error says what to pass when they pick none or several.
    """
    chosen = model if model is not None else os.environ.get(MODEL_ENV) or None
    if chosen is not None:
        return _named(str(chosen)) if str(chosen).startswith(PREFIX) else Path(chosen)
    defaults = installed_defaults()
    suffixes = set().union(*(_suffixes_of(f) for f in files)) - {""}
    from .registry import registry

    modalities = registry().modalities
    matching = sorted(n for n in defaults if any(s in modalities[n].suffixes for s in suffixes))
    if len(matching) == 1:
        return _named(PREFIX + matching[0])
    offer = ", ".join(f"{PREFIX}{n} ({p.stem})" for n, p in defaults.items()) or "none installed"
    why = (
        "these files belong to several modalities"
        if matching
        else "no default model reads these files"
        if suffixes
        else "nothing to pick a default model by"
    )
    raise UsageError(
        f"no model given and {why}: pass --model FILE.safetensors, --model @MODALITY or set "
        f"{MODEL_ENV} (default models: {offer})"
    )


def model_by_hash(model_hash: str) -> Path | None:
    """The shipped model whose hash is ``model_hash`` (the one that made a code file or a .vqz), if any."""
    from ..files.model import read_model

    for path in installed_models().values():
        try:
            if path.is_file() and read_model(path, tensors=False).meta.get("model_hash") == model_hash:
                return path
        except VqtokError:
            continue
    return None


def _suffixes_of(path: Path) -> set[str]:
    """A file's lower-case suffix; for a folder, those of the files under it."""
    path = Path(path)
    if path.is_dir():
        return {p.suffix.lower() for p in path.rglob("*") if p.is_file()}
    return {path.suffix.lower()}
