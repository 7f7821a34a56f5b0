"""``Tokenizer``: a trained model with its modality, turning tensors and files into codes and back."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

from . import config as config_mod
from .atomic import atomic_path
from .chunking import decode_stream, encode_stream
from .errors import UsageError, VqtokError
from .families import build_model
from .formats import CodeFile, code_dtype, read_model
from .plugins import get_modality

CHUNK_SAMPLES = 2**17  # samples per chunk when streaming 1-D signals (~8 s at 16 kHz)


class Tokenizer:
    def __init__(self, model, config, modality, meta: dict, device: str = "cpu"):
        self.model = model.to(device).eval()
        self.config, self.modality, self.meta, self.device = config, modality, meta, torch.device(device)

    @classmethod
    def load(cls, path: Path, device: str = "cpu") -> "Tokenizer":
        mf = read_model(path)
        name = mf.meta.get("modality", "?")
        try:
            modality = get_modality(name)
        except VqtokError as e:
            raise VqtokError(f"{path}: needs modality {name!r}: {e}") from None
        try:
            cfg = config_mod.from_dict(mf.meta["config"], get_modality)
        except (KeyError, TypeError) as e:
            raise VqtokError(f"{path}: incomplete vqtok metadata (its config lacks {e})") from e
        model = build_model(cfg, modality)
        try:
            model.load_state_dict(mf.section("model"), strict=True)
        except RuntimeError as e:
            raise VqtokError(f"{path}: weights do not match the stored config ({str(e).splitlines()[0]})") from None
        return cls(model, cfg, modality, mf.meta, device)

    # ---- facts about the model ----
    @property
    def model_hash(self) -> str:
        return self.meta["model_hash"]

    @property
    def codebook_sizes(self) -> list[int]:
        return self.model.quantizer.sizes

    @property
    def hop(self) -> int:
        return self.model.hop

    @property
    def dims(self) -> int:
        return self.modality.dims

    def _n_q(self, n_q: int | None) -> int:
        n = self.model.quantizer.n_q if n_q is None else n_q
        if not 1 <= n <= self.model.quantizer.n_q:
            raise UsageError(f"--n-q {n}: this model has {self.model.quantizer.n_q} codebook(s); "
                             f"use 1 to {self.model.quantizer.n_q}")
        return n

    # ---- codes layout: model (n_q, *G) <-> file ----
    def to_file_layout(self, codes: torch.Tensor) -> np.ndarray:
        """``(n_q, *G)`` -> the stored array: images drop the n_q axis when it is 1."""
        arr = codes.cpu().numpy().astype(code_dtype(self.codebook_sizes))
        return arr[0] if self.dims >= 2 and arr.shape[0] == 1 else arr

    def from_file_layout(self, arr: np.ndarray, name: str) -> torch.Tensor:
        """Check a stored code array against this model and return ``(n, *G)`` int64."""
        if not np.issubdtype(arr.dtype, np.integer):
            raise VqtokError(f"{name}: codes must be integers, found {arr.dtype}")
        if arr.ndim == self.dims:
            arr = arr[None]
        if arr.ndim != self.dims + 1:
            expected = "(n_q, T)" if self.dims == 1 else "(H, W) or (n_q, H, W)"
            raise VqtokError(f"{name}: codes of shape {arr.shape} do not fit this {self.modality.name} "
                             f"model, which expects {expected}")
        if not 1 <= arr.shape[0] <= self.model.quantizer.n_q or min(arr.shape[1:], default=0) < 1:
            raise VqtokError(f"{name}: codes of shape {arr.shape} do not fit this model "
                             f"({self.model.quantizer.n_q} codebook(s), non-empty grid)")
        for i, size in enumerate(self.codebook_sizes[: arr.shape[0]]):
            lo, hi = int(arr[i].min()), int(arr[i].max())
            if lo < 0 or hi >= size:
                raise VqtokError(f"{name}: code {hi if hi >= size else lo} in codebook {i} lies outside "
                                 f"0..{size - 1}; were these codes made by another model?")
        return torch.from_numpy(arr.astype(np.int64))

    # ---- tensors ----
    @torch.no_grad()
    def encode_tensor(self, x: torch.Tensor, n_q: int | None = None) -> torch.Tensor:
        """``(C, *S)`` -> codes ``(n_q, *ceil(S / hop))``; the end of each axis is padded to the hop."""
        n_q = self._n_q(n_q)
        pad = []
        for size in reversed(x.shape[1:]):
            pad += [0, -size % self.hop]
        mode = "replicate" if self.dims == 2 else "constant"
        x = F.pad(x[None].to(self.device), pad, mode=mode) if any(pad) else x[None].to(self.device)
        return self.model.encode(x, n_q)[0].cpu()

    @torch.no_grad()
    def decode_tensor(self, codes: torch.Tensor) -> torch.Tensor:
        """Codes ``(n, *G)`` -> ``(C, *G * hop)``."""
        return self.model.decode(codes[None].to(self.device))[0].float().cpu()

    # ---- the public API ----
    def encode(self, x, n_q: int | None = None) -> np.ndarray:
        """A tensor ``(C, *S)`` or a file path -> codes in the file layout (see ``vqtok.formats``)."""
        if isinstance(x, (str, Path)):
            return self.encode_file(Path(x), n_q).codes
        return self.to_file_layout(self.encode_tensor(x, n_q))

    def decode(self, codes) -> torch.Tensor:
        """Codes (array in the file layout, or a ``CodeFile``) -> ``(C, *S)``."""
        cf = codes if isinstance(codes, CodeFile) else CodeFile(np.asarray(codes), None)
        return self._crop(self.decode_tensor(self.check(cf, "codes")), cf.meta)

    def check(self, cf: CodeFile, name: str) -> torch.Tensor:
        """Refuse codes from another model or modality; return them as ``(n, *G)`` int64."""
        meta = cf.meta or {}
        if meta.get("modality", self.modality.name) != self.modality.name:
            raise VqtokError(f"{name}: {meta['modality']} codes, but this is a {self.modality.name} model")
        if meta.get("model_hash", self.model_hash) != self.model_hash:
            raise VqtokError(f"{name}: made by model {meta['model_hash']}, not by this one ({self.model_hash})")
        return self.from_file_layout(cf.codes, name)

    def _crop(self, x: torch.Tensor, meta: dict | None) -> torch.Tensor:
        size = (meta or {}).get("size")
        return x[(slice(None), *(slice(0, s) for s in size))] if size else x

    def _context(self) -> tuple[int, int, int]:
        chunk = max(1, CHUNK_SAMPLES // self.hop)
        return chunk, self.model.encoder_context, self.model.decoder_context

    def encode_file(self, path: Path, n_q: int | None = None) -> CodeFile:
        """Encode one file; 1-D signals stream in chunks with bounded memory."""
        n_q = self._n_q(n_q)
        opts = self.config.options
        if self.dims == 1:
            chunk, enc_ctx, _ = self._context()
            length = self.modality.length(path, opts)
            pieces = self.modality.stream(path, opts, block=chunk * self.hop)
            codes = encode_stream(pieces, lambda w: self.encode_tensor(w, n_q), self.hop, enc_ctx, chunk)
            size = [length]
        else:
            x = self.modality.load(path, opts)
            codes, size = self.encode_tensor(x, n_q), list(x.shape[1:])
        meta = {"model_hash": self.model_hash, "modality": self.modality.name, "size": size,
                "n_q": n_q, **self.modality.describe(opts)}
        return CodeFile(self.to_file_layout(codes), meta)

    def decode_to_file(self, cf: CodeFile, out: Path, name: str = "codes") -> None:
        """Decode to ``out`` (written atomically); 1-D signals stream in chunks."""
        codes = self.check(cf, name)
        opts = self.config.options
        with atomic_path(out) as tmp:
            if self.dims == 1:
                chunk, _, dec_ctx = self._context()
                length = (cf.meta or {}).get("size", [None])[0]
                with self.modality.writer(tmp, opts) as w:
                    for piece in decode_stream(codes, self.decode_tensor, self.hop, dec_ctx, chunk, length):
                        w.write(piece)
            else:
                self.modality.save(self._crop(self.decode_tensor(codes), cf.meta), tmp, opts)
