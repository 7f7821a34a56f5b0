"""Checks on the weights a model file holds, before they are loaded into a network."""

from __future__ import annotations

import torch
from torch import nn

from .errors import VqtokError


def check_weights(model: nn.Module, tensors: dict[str, torch.Tensor], where: str) -> None:
    """Refuse ``tensors`` (a model file's ``model.`` section, prefix removed) that ``model`` would load
    silently but wrongly: a tensor of another dtype than the model's (``load_state_dict`` converts, so int8
    weights would load as floats), and NaN or Inf values (codes computed from them are garbage). One
    conversion is allowed: a narrower float (bfloat16 / float16, as ``vqtok export`` stores weights) into a
    float32 tensor, which widens the stored values exactly.
    Missing, extra and misshapen tensors are ``load_state_dict(strict=True)``'s to report."""
    expected = model.state_dict()
    for name, t in tensors.items():
        if name in expected and t.dtype != expected[name].dtype and not _widens(t.dtype, expected[name].dtype):
            raise VqtokError(f"{where}: tensor model.{name} is {t.dtype}; the model needs {expected[name].dtype}")
        if t.is_floating_point() and not bool(torch.isfinite(t).all()):
            raise VqtokError(f"{where}: damaged: tensor model.{name} holds NaN or Inf values")


def _widens(stored: torch.dtype, needed: torch.dtype) -> bool:
    """Whether every value of ``stored`` is exactly a value of ``needed`` (float16/bfloat16 -> float32)."""
    return stored in (torch.bfloat16, torch.float16) and needed == torch.float32
