"""Where a trained prior lives: inside the model file, or in a prior file that names the model's hash.

In the model file its tensors go under ``prior.`` and its description under the metadata key
``prior`` (JSON); the model hash covers only the ``model.`` tensors, so codes encoded before the
prior was added still decode. A separate prior file is a safetensors file with the same ``prior.``
tensors and metadata ``format = "vqtok-prior"``, ``model_hash`` and ``prior``; it is refused beside
any other model.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from ..errors import VqtokError, first_line
from ..files.model import CONTENT_HASH, model_stem, read_model, read_safetensors, write_model, write_tensors
from ..models.base import LatentSpec
from .model import Prior, PriorOptions

PRIOR_FORMAT = "vqtok-prior"
PREFIX = "prior."
RESERVED = ("format", "format_version", "vqtok_version", "model_hash", CONTENT_HASH)  # write_model sets these


def save_prior(prior: Prior, info: dict, model_path: Path, model_hash: str, out: Path | None = None) -> Path:
    """Store ``prior``, trained on the codes of the model ``model_hash``, and its description ``info`` in
    the model file (``out`` None) or in ``out``; returns where it went. If the model file no longer holds
    that model (it was retrained meanwhile), the prior goes to ``NAME.prior.safetensors`` beside it."""
    tensors = {PREFIX + k: v for k, v in prior.state_dict().items()}
    info = {**info, "model_hash": model_hash}
    if out is None or Path(out).resolve() == Path(model_path).resolve():
        mf = read_model(model_path)
        if mf.meta["model_hash"] == model_hash:
            kept = {k: v for k, v in mf.tensors.items() if not k.startswith(PREFIX)}
            meta = {k: v for k, v in mf.meta.items() if k not in RESERVED}
            write_model(model_path, {**kept, **tensors}, {**meta, "prior": info})
            return Path(model_path)
        out = model_path.with_name(model_stem(model_path) + ".prior.safetensors")
    strings = {"format": PRIOR_FORMAT, "model_hash": model_hash, "prior": json.dumps(info, sort_keys=True)}
    write_tensors(Path(out), tensors, strings)
    return Path(out)


def read_prior_file(path: Path, model_hash: str) -> tuple[dict[str, torch.Tensor], dict]:
    """The tensors and description of a separate prior file made for the model ``model_hash``."""
    tensors, meta = read_safetensors(path)
    if meta.get("format") != PRIOR_FORMAT:
        raise VqtokError(f"{path}: not a vqtok prior file (a prior is made by `vqtok train-prior -o FILE`)")
    if meta.get("model_hash") != model_hash:
        raise VqtokError(
            f"{path}: a prior for model {meta.get('model_hash')}, not for this model ({model_hash}); "
            "use the prior trained on this model's codes"
        )
    try:
        return tensors, json.loads(meta["prior"])
    except (KeyError, json.JSONDecodeError):
        raise VqtokError(f"{path}: damaged prior metadata") from None


def build_prior(
    info: dict, tensors: dict[str, torch.Tensor], dims: int, specs: dict[str, LatentSpec], where: str
) -> Prior:
    """Rebuild a stored prior and load its weights; a prior that does not fit the model is an error."""
    try:
        options = PriorOptions(**info["options"])
        prior = Prior(dims, specs, options, len(info.get("label_names") or []))
        prior.load_state_dict({k[len(PREFIX) :]: v for k, v in tensors.items() if k.startswith(PREFIX)}, strict=True)
    except (KeyError, TypeError, RuntimeError) as e:
        raise VqtokError(f"{where}: the stored prior does not fit this model ({first_line(e)})") from None
    return prior.eval()
