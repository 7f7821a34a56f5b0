"""Latents in the model's form, ``{name: (depth, *G)}`` tensors, and as the arrays of a code file:
integer codes (int16 / int32; a 2-D model's single codebook axis dropped) or float32 means, and every
check that arrays read from a file fit the model (:mod:`vqtok.files.codes` reads and writes the files)."""

from __future__ import annotations

import numpy as np
import torch

from ..errors import VqtokError
from ..files.codes import BARE, CodeFile, code_dtype
from ..models.base import LatentSpec

Latents = dict[str, torch.Tensor]  # name -> (depth, *grid), no batch axis


class FileArrays:
    """What :class:`vqtok.codec.Tokenizer` does with code file arrays; it provides ``specs``, ``dims``,
    ``family`` and ``modality``."""

    specs: dict[str, LatentSpec]
    dims: int

    def to_file_arrays(self, latents: Latents) -> dict[str, np.ndarray]:
        """Discrete codes as int16/int32 (images drop the codebook axis when it is 1); means as float32."""
        out = {}
        for name, t in latents.items():
            spec = self.specs[name]
            if spec.discrete:
                arr = t.cpu().numpy().astype(code_dtype(spec.codebook_sizes))
                out[name] = arr[0] if self.dims >= 2 and arr.shape[0] == 1 else arr
            else:
                out[name] = t.cpu().numpy().astype(np.float32)
        return out

    def from_file_arrays(self, cf: CodeFile, where: str) -> Latents:
        """Check a code file's arrays against this model; return them as ``(depth, *G)`` tensors."""
        arrays = dict(cf.arrays)
        if BARE in arrays:
            if len(self.specs) != 1:
                raise VqtokError(
                    f"{where}: a bare .npy, but a {self.family} model's latents are "
                    f"{' and '.join(self.specs)}: decode the .npz that encode wrote"
                )
            arrays = {next(iter(self.specs)): arrays[BARE]}
        if set(arrays) != set(self.specs):
            raise VqtokError(
                f"{where}: holds {', '.join(sorted(arrays))}, but this {self.family} model's "
                f"latents are {', '.join(self.specs)}; were they made by another model?"
            )
        latents = {name: self._check_array(arrays[name], self.specs[name], f"{where} [{name}]") for name in self.specs}
        self._check_grids_fit(latents, where)
        return latents

    def _check_array(self, arr: np.ndarray, spec: LatentSpec, where: str) -> torch.Tensor:
        kind = "codes" if spec.discrete else "latent means"
        if spec.discrete and not np.issubdtype(arr.dtype, np.integer):
            raise VqtokError(f"{where}: codes must be integers, found {arr.dtype}")
        if not spec.discrete and not np.issubdtype(arr.dtype, np.floating):
            raise VqtokError(
                f"{where}: this {self.family} model takes float latent means, found {arr.dtype}"
                " codes; were they made by another model?"
            )
        if spec.discrete and arr.ndim == self.dims:
            arr = arr[None]
        grid = "T" if self.dims == 1 else "H, W"
        if arr.ndim != self.dims + 1:
            raise VqtokError(
                f"{where}: {kind} of shape {arr.shape} do not fit this {self.modality.name} "
                f"model, which expects ({'n_q' if spec.discrete else 'D'}, {grid})"
            )
        fits = 1 <= arr.shape[0] <= spec.depth if spec.discrete else arr.shape[0] == spec.depth
        if not fits or min(arr.shape[1:], default=0) < 1:
            have = f"{spec.depth} codebook(s)" if spec.discrete else f"latent dimension {spec.depth}"
            raise VqtokError(f"{where}: {kind} of shape {arr.shape} do not fit this model ({have}, non-empty grid)")
        if not spec.discrete:
            if not np.isfinite(arr).all():
                raise VqtokError(f"{where}: latent means contain NaN or infinity")
            return torch.from_numpy(arr.astype(np.float32))
        for i, size in enumerate(spec.codebook_sizes[: arr.shape[0]]):
            lo, hi = int(arr[i].min()), int(arr[i].max())
            if lo < 0 or hi >= size:
                raise VqtokError(
                    f"{where}: code {hi if hi >= size else lo} in codebook {i} lies outside "
                    f"0..{size - 1}; were these codes made by another model?"
                )
        return torch.from_numpy(arr.astype(np.int64))

    def _check_grids_fit(self, latents: Latents, where: str) -> None:
        """Arrays at several rates must cover the same input: grid sizes in the ratio of their hops."""
        coarse = max(self.specs, key=lambda k: self.specs[k].hop)
        base = latents[coarse].shape[1:]
        for name, t in latents.items():
            ratio = self.specs[coarse].hop // self.specs[name].hop
            if tuple(t.shape[1:]) != tuple(s * ratio for s in base):
                shapes = ", ".join(f"{k} {tuple(v.shape[1:])}" for k, v in latents.items())
                raise VqtokError(
                    f"{where}: the latent grids do not fit together ({shapes}); each must be {coarse}'s times its rate"
                )
