"""Shipping a model: a copy of a model file whose network weights are stored in a narrower float.

A trained model file keeps every tensor in float32. For a file people download, half the bytes do: the
convolution and linear weights of the networks (and of the prior) are stored in bfloat16, while the
codebooks and the statistics beside them (buffers, and parameters of modules that set
``KEEPS_FLOAT32 = True``) stay float32, since the nearest-code search must find the same codes on every
machine. Loading widens the stored values back to float32 exactly (:func:`vqtok.weights.check_weights`
allows that one conversion), so a loaded model computes in float32 as before, with weights rounded to 8
bits of mantissa. The model hash covers the stored tensors, so code files name the exported model, and
the file records what it was exported from under the metadata key ``export``. The facts the modality
records about its data (:func:`vqtok.modality.stored_facts`) are written in this version's form.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from .errors import UsageError
from .files.model import read_model, write_model
from .plugin.modality import stored_facts
from .prior.store import PREFIX as PRIOR_PREFIX
from .prior.store import RESERVED

STORAGE_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}


def narrowable(module: nn.Module, prefix: str) -> set[str]:
    """State-dict names (``prefix`` + name) of the floating parameters of ``module`` that may be stored
    narrower: every parameter except those of submodules that keep float32 (codebooks)."""
    kept = {name for name, m in module.named_modules() if getattr(m, "KEEPS_FLOAT32", False)}
    names = set()
    for name, p in module.named_parameters():
        owner = name.rsplit(".", 1)[0] if "." in name else ""
        if p.is_floating_point() and not any(owner == k or owner.startswith(k + ".") for k in kept if k):
            names.add(prefix + name)
    return names


def export_model(path: Path, out: Path, dtype: str) -> dict:
    """Write ``out``: the model file ``path`` with its network weights stored as ``dtype``; returns what
    changed (``bytes_before``, ``bytes_after``, ``tensors_narrowed``, ``model_hash``)."""
    from .codec import Tokenizer

    if dtype not in STORAGE_DTYPES:
        raise UsageError(f"--dtype {dtype}: use one of {', '.join(STORAGE_DTYPES)}")
    if Path(out).resolve() == Path(path).resolve():
        raise UsageError(f"-o {out}: is the model being exported; name another file")
    mf = read_model(path)
    tok = Tokenizer.from_model_file(mf, path)  # checks the file and tells which tensors are network weights
    names = narrowable(tok.model, "model.")
    if tok.prior is not None:
        names |= narrowable(tok.prior, PRIOR_PREFIX)
    target = STORAGE_DTYPES[dtype]
    tensors = {k: v.to(target) if k in names else v for k, v in mf.tensors.items()}
    meta = {k: v for k, v in mf.meta.items() if k not in RESERVED}
    meta["export"] = {"dtype": dtype, "from_model_hash": mf.meta["model_hash"], "from_file": Path(path).name}
    meta["decode"] = {**meta["decode"], **stored_facts(tok.modality, tok.config.options)}  # in this version's form
    model_hash = write_model(out, tensors, meta)
    return {
        "bytes_before": Path(path).stat().st_size,
        "bytes_after": Path(out).stat().st_size,
        "tensors_narrowed": len(names),
        "model_hash": model_hash,
    }
