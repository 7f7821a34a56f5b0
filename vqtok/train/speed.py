"""Settings that change how fast a network runs, never what it computes: ``channels_last`` memory layout
for 2-D nets and ``torch.compile`` of the convolutional networks.

Only modules that declare ``COMPILABLE = True`` are compiled (vqtok's :class:`~vqtok.nn.conv.Encoder` and
:class:`~vqtok.nn.conv.Decoder`, and a plugin's nets that set it): pure tensor-in, tensor-out networks. The
quantizers, with their data-dependent restarts and k-means, and the families' Python control flow stay
eager, so a compiled run needs no recompilation from step to step. ``Module.compile`` works in place: the
state-dict names, and so checkpoints and model files, are those of an uncompiled run.
"""

from __future__ import annotations

import torch
from torch import nn


def compile_networks(model: nn.Module) -> list[str]:
    """Compile, in place, the outermost submodules of ``model`` with ``COMPILABLE = True``; returns their
    names."""
    done: list[str] = []
    for name, module in model.named_modules():
        if getattr(module, "COMPILABLE", False) and not any(name.startswith(d + ".") for d in done):
            module.compile()
            done.append(name)
    return done


def wants_channels_last(setting: str | bool, device: torch.device, model: nn.Module) -> bool:
    """Whether to run ``model`` in ``channels_last`` layout: ``"auto"`` picks it for 2-D nets on CUDA, where
    cuDNN's convolutions are fastest in it under bf16; ``True`` / ``False`` force it."""
    if setting == "auto":
        return device.type == "cuda" and getattr(model, "dims", 0) == 2
    return bool(setting)


def as_channels_last(x: torch.Tensor) -> torch.Tensor:
    """A 4-D batch ``(B, C, H, W)`` in ``channels_last`` layout (same values and shape); other tensors as
    they are."""
    return x.contiguous(memory_format=torch.channels_last) if x.ndim == 4 else x
