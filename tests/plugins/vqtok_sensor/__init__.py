"""A third-party plugin as a test: a ``sensor`` modality for multichannel 1-D signals in .npy or .csv.

It imports nothing private from vqtok: only the public ``Modality`` contract and ``hookimpl``.
Files hold an array of shape (T, C): T time steps of C channels.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

import vqtok
from vqtok.errors import VqtokError
from vqtok.modality import Modality


@dataclass
class SensorOptions:
    channels: int = 3
    segment: int = 256  # time steps per training example


class SensorModality(Modality):
    name = "sensor"
    description = "multichannel sensor signals, (T, C) arrays in .npy or .csv"
    suffixes = (".npy", ".csv")
    dims = 1
    config_class = SensorOptions
    default_model = Path(__file__).parent / "default" / "sensor.safetensors"  # shipped with the package

    def channels(self, options):
        return options.channels

    def default_overrides(self):
        return {"model": {"strides": [2, 2], "width": 16, "max_width": 32, "latent_dim": 8, "codebook_size": 64}}

    def load(self, path: Path, options) -> torch.Tensor:
        try:
            if path.suffix == ".csv":
                a = np.loadtxt(path, delimiter=",", ndmin=2)
            else:
                a = np.load(path, allow_pickle=False)
        except Exception as e:
            raise VqtokError(f"{path}: not a sensor recording ({e})") from None
        if a.ndim != 2 or a.shape[1] != options.channels:
            raise VqtokError(f"{path}: expected shape (T, {options.channels}), found {a.shape}")
        return torch.from_numpy(a.astype(np.float32)).T.contiguous()

    def save(self, x: torch.Tensor, path: Path, options) -> None:
        a = x.T.numpy()
        if path.suffix == ".csv":
            np.savetxt(path, a, delimiter=",", fmt="%.6f")
        else:
            np.save(path, a, allow_pickle=False)

    def training_example(self, path, options, generator):
        x = self.load(path, options)
        start = int(torch.randint(0, max(1, x.shape[-1] - options.segment + 1), (1,), generator=generator))
        piece = x[:, start : start + options.segment]
        return torch.nn.functional.pad(piece, (0, options.segment - piece.shape[-1]))

    def quality(self, x_hat, x, options):
        """The default metrics (MSE, PSNR) and one of this plugin's own, per example ``(B,)``."""
        return {**super().quality(x_hat, x, options), "max_abs_error": (x_hat - x).abs().flatten(1).amax(1)}


@vqtok.hookimpl
def vqtok_modalities():
    return [SensorModality()]
