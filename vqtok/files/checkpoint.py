"""Training checkpoints as safetensors: model, optimizer and RNG state, never pickled.

Adam's per-parameter state is stored as tensors ``optim.<param index>.<name>``, a run's own extra tensors
as ``kept.<name>``; the param groups, the step and the rest go into the JSON metadata.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from ..errors import VqtokError
from .model import read_safetensors, write_tensors

KIND = "vqtok-checkpoint"


def optimizer_tensors(optimizer, prefix: str) -> tuple[dict[str, torch.Tensor], str]:
    """An optimizer's per-parameter state as tensors ``<prefix>.<param index>.<name>``, and its param
    groups as JSON: what :func:`load_optimizer` takes back."""
    state = optimizer.state_dict()
    tensors = {
        f"{prefix}.{idx}.{name}": torch.as_tensor(value).detach().cpu().contiguous()
        for idx, st in state["state"].items()
        for name, value in st.items()
    }
    return tensors, json.dumps(state["param_groups"])


def load_optimizer(optimizer, tensors: dict[str, torch.Tensor], prefix: str, param_groups: str) -> None:
    state: dict = {}
    for key, value in tensors.items():
        if key.startswith(prefix + "."):
            _, idx, name = key.split(".", 2)
            state.setdefault(int(idx), {})[name] = value
    optimizer.load_state_dict({"state": state, "param_groups": json.loads(param_groups)})


def save_checkpoint(
    path: Path, model, optimizer, step: int, extra: dict, kept: dict[str, torch.Tensor] | None = None
) -> None:
    """``kept``: further tensors a run needs back on resume (e.g. its best weights so far)."""
    tensors = {f"model.{k}": v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    tensors.update({f"kept.{k}": v.detach().cpu().contiguous() for k, v in (kept or {}).items()})
    optim, param_groups = optimizer_tensors(optimizer, "optim")
    tensors.update(optim)
    tensors["rng.torch"] = torch.get_rng_state()
    meta = {"format": KIND, "step": str(step), "param_groups": param_groups, "extra": json.dumps(extra)}
    write_tensors(path, tensors, meta)


def checkpoint_extra(path: Path) -> dict:
    """The ``extra`` a checkpoint was saved with (its run's settings among them), read without its tensors."""
    _, meta = read_safetensors(path, tensors=False)
    if meta.get("format") != KIND:
        raise VqtokError(f"{path}: not a vqtok training checkpoint")
    return json.loads(meta["extra"])


def load_checkpoint(path: Path, model, optimizer) -> tuple[int, dict, dict[str, torch.Tensor]]:
    """Restore model, optimizer and RNG from ``path``; returns ``(step, extra, kept)``."""
    tensors, meta = read_safetensors(path)
    if meta.get("format") != KIND:
        raise VqtokError(f"{path}: not a vqtok training checkpoint")
    model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
    load_optimizer(optimizer, tensors, "optim", meta["param_groups"])
    torch.set_rng_state(tensors["rng.torch"])
    kept = {k[len("kept.") :]: v for k, v in tensors.items() if k.startswith("kept.")}
    return int(meta["step"]), json.loads(meta["extra"]), kept
