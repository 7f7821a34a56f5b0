"""Fine-tuning: a training run that starts from the weights of a trained model (``init``).

``vqtok train --init speech.safetensors --data mine/`` (or ``init = "..."`` in a recipe, or
``--init @audio`` for a shipped default) takes the trained model's modality, signal options, ``[model]``
and family options as its defaults (:func:`inherited_settings`; a recipe or override still wins), builds
the model, then loads the trained weights, codebooks included, so no k-means restart
(:func:`start_from`). The two must agree on what the weights mean: the modality, its signal settings
(e.g. the sample rate, not the image size: ``Modality.bound_to_weights``), the family, the class
labels of a conditional family, and every ``[model]`` setting that shapes a weight. The data, the ``[train]``
settings (learning rate, steps) and a prior are the new run's own: a prior trained on the old codes is not
carried over.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING

from ..config.renamed import current_names
from ..errors import UsageError
from ..files.model import read_model
from ..models.base import Family
from ..plugin.defaults import model_path
from ..weights import check_weights

if TYPE_CHECKING:  # only named in annotations: vqtok.config imports this module, not the other way round
    from ..config import RunConfig


def inherited_settings(init: str) -> dict:
    """The settings a run starting from model ``init`` inherits (see :func:`inheritable`)."""
    return inheritable(read_model(model_path(init), tensors=False).meta.get("config", {}))


def inheritable(stored: dict) -> dict:
    """What a run inherits from a model's stored settings ``stored``, as a recipe would give them:
    ``{"modality": .., <modality>: {..}, "model": {..}, <family>: {..}}``."""
    stored = current_names(stored)
    name, arch = stored.get("modality"), stored.get("model", {}).get("arch")
    return {k: v for k, v in stored.items() if k in ("modality", name, "model", arch) and v is not None}


def start_from(model: Family, config: RunConfig, label_names: list[str], bound: dict) -> Path:
    """Load the weights of ``config.init`` (a model file or ``@MODALITY``) into ``model``, built from
    ``config`` for data with classes ``label_names``; ``bound`` holds the run's signal settings that
    weights are bound to (``Modality.bound_to_weights``, entries of what a model file records under
    ``decode``), which must equal the init model's. Returns the file read."""
    path = model_path(config.init)
    mf = read_model(path)
    meta, decode = mf.meta, mf.meta.get("decode", {})
    where = f"init {path}"
    if meta.get("modality") != config.modality:
        raise UsageError(f"{where}: its modality is {meta.get('modality')}; this run's is {config.modality}")
    if meta.get("family") != model.name:
        raise UsageError(f"{where}: its family is {meta.get('family')}; this run's model.arch is {model.name}")
    for key, value in bound.items():
        if decode.get(key) != value:
            raise UsageError(
                f"{where}: made for {key} = {decode.get(key)!r}, but this run's [{config.modality}] "
                f"options give {value!r} (set them to match)"
            )
    if model.conditional and (decode.get("label_names") or []) != label_names:
        raise UsageError(
            f"{where}: its classes ({', '.join(decode.get('label_names') or [])}) differ from "
            f"the class folders of the data ({', '.join(label_names)})"
        )
    check_weights(model, mf.section("model"), where)
    try:
        model.load_state_dict(mf.section("model"), strict=True)
    except RuntimeError:
        stored = meta.get("config", {}).get("model", {})
        differ = [
            f"{k} = {stored.get(k)!r} there, {v!r} here"
            for k, v in dataclasses.asdict(config.model).items()
            if stored.get(k) != v
        ]
        raise UsageError(
            f"{where}: its weights do not fit this run's model ([model] "
            f"{'; '.join(differ) or 'settings agree, the weights do not'}); use the same "
            "[model] settings as the model you start from"
        ) from None
    return path
