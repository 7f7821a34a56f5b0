"""``Tokenizer``: a trained model with its modality, turning tensors and files into latents and back:
loading a model file, the facts about it, encode, decode and sample.

Latents are what a family's ``encode`` returns (see :mod:`vqtok.models.base`): a dict of named arrays,
integer codes or float32 means. In a code file (:mod:`vqtok.files.codes`) each goes under its name; a
family with a single latent array may also write it alone as a bare ``.npy``.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

from .. import config as config_mod
from ..device import pick_device
from ..errors import UsageError, VqtokError, first_line
from ..files.atomic import atomic_path
from ..files.codes import CodeFile
from ..files.model import ModelFile, read_model
from ..models.base import Family, LatentSpec
from ..plugin.families import build_model
from ..plugin.registry import get_modality
from ..prior.model import Prior
from ..prior.store import build_prior, read_prior_file
from ..weights import check_weights
from .arrays import FileArrays, Latents
from .long_inputs import LongInputs


class Tokenizer(FileArrays, LongInputs):
    """A trained model with its modality and prior: files and tensors to latents and back
    (:class:`~vqtok.codec.arrays.FileArrays`: code file arrays; :class:`~vqtok.codec.long_inputs.LongInputs`:
    inputs of any size in bounded memory)."""

    def __init__(self, model: Family, config, modality, meta: dict, device: str = "cpu"):
        self.device = pick_device(str(device))  # a clear error, not a driver traceback, for CUDA without one
        self.model = model.to(self.device).eval()
        self.config, self.modality, self.meta = config, modality, meta
        self.specs: dict[str, LatentSpec] = model.latents()
        self._prior: Prior | None = None  # the learned prior over the codes, built on first use
        self._prior_source: tuple[dict[str, torch.Tensor], str] | None = None  # its tensors and file, until then
        self.prior_info: dict = {}  # its description, when one was trained

    @classmethod
    def load(cls, path: Path, device: str = "cpu", prior: Path | None = None) -> Tokenizer:
        """The model in ``path`` with its prior: the one stored in it, or the prior file ``prior``."""
        return cls.from_model_file(read_model(path), path, device, prior)

    @classmethod
    def from_model_file(cls, mf: ModelFile, path: Path, device: str = "cpu", prior: Path | None = None) -> Tokenizer:
        """As :meth:`load`, from the model file ``path`` already read as ``mf``."""
        name = mf.meta.get("modality", "?")
        try:
            modality = get_modality(name)
            cfg = config_mod.from_dict(mf.meta["config"], get_modality)
        except (KeyError, TypeError) as e:
            raise VqtokError(f"{path}: incomplete vqtok metadata (its config lacks {e})") from e
        except VqtokError as e:
            raise VqtokError(f"{path}: needs {e}") from None
        model = build_model(cfg, modality, mf.meta["decode"].get("label_names") or [])
        check_weights(model, mf.section("model"), str(path))
        try:
            model.load_state_dict(mf.section("model"), strict=True)
        except RuntimeError as e:
            raise VqtokError(f"{path}: weights do not match the stored config ({first_line(e)})") from None
        tok = cls(model, cfg, modality, mf.meta, device)
        if prior is not None:
            tok.attach_prior(*read_prior_file(prior, tok.model_hash), str(prior))
        elif mf.meta.get("prior"):
            tok.attach_prior(mf.tensors, mf.meta["prior"], str(path))
        return tok

    def attach_prior(self, tensors: dict[str, torch.Tensor], info: dict, where: str) -> None:
        """Give the model the prior stored as ``tensors`` (described by ``info``); it is built when first
        used, so commands that need no prior (encode, decode) do not pay for it."""
        self._prior, self._prior_source, self.prior_info = None, (tensors, where), info

    @property
    def prior(self) -> Prior | None:
        if self._prior is None and self._prior_source is not None:
            tensors, where = self._prior_source
            self._prior = build_prior(self.prior_info, tensors, self.dims, self.specs, where).to(self.device)
            self._prior_source = None
        return self._prior

    @prior.setter
    def prior(self, prior: Prior | None) -> None:
        self._prior, self._prior_source = prior, None

    @property
    def has_prior(self) -> bool:
        """Whether a prior was trained for the model (without building it)."""
        return self._prior is not None or self._prior_source is not None

    # ---- facts about the model ----
    @property
    def model_hash(self) -> str:
        return self.meta["model_hash"]

    @property
    def family(self) -> str:
        return self.model.name

    @property
    def label_names(self) -> list[str]:
        return list(self.meta.get("decode", {}).get("label_names") or [])

    @property
    def hop(self) -> int:
        return self.model.hop

    @property
    def dims(self) -> int:
        return self.modality.dims

    def labels(self, label: str | None, n: int = 1) -> torch.Tensor | None:
        """The label tensor ``(n,)`` a conditional model needs; refuses a label an unconditional model
        cannot use, a missing one, and names it does not know."""
        if not self.model.conditional:
            if label is not None:
                raise UsageError(f"--label: this {self.family} model is not conditional and takes no label")
            return None
        if label is None:
            raise UsageError(f"this {self.family} model needs --label, one of: {', '.join(self.label_names)}")
        return _label_tensor(self.label_names, label, n)

    def check_n_q(self, n_q: int | None) -> int | None:
        """``--n-q``: None, or a number of codebooks this residual model has; anything else is refused."""
        if n_q is None:
            return None
        residual = [s for s in self.specs.values() if s.discrete and s.depth > 1]
        if len(self.specs) != 1 or not next(iter(self.specs.values())).discrete:
            raise UsageError(f"--n-q applies to residual VQ models; this is a {self.family} model")
        n = next(iter(self.specs.values())).depth
        if not 1 <= n_q <= n:
            hint = "" if residual else " (train with model.n_q=N for a residual quantizer)"
            raise UsageError(f"--n-q {n_q}: this model has {n} codebook(s); use 1 to {n}{hint}")
        return n_q

    # ---- tensors ----
    def pad_to_hop(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C, *S)`` -> ``(B, C, *ceil(S / hop) * hop)``: the end of each axis padded as the modality
        says (``Modality.pad_mode``: zeros, the edge repeated, or reflected)."""
        pad = []
        for size in reversed(x.shape[2:]):
            pad += [0, -size % self.hop]
        return F.pad(x, pad, mode=self.modality.pad_mode) if any(pad) else x

    @torch.no_grad()
    def encode_batch(
        self, x: torch.Tensor, n_q: int | None = None, labels: torch.Tensor | None = None
    ) -> dict[str, torch.Tensor]:
        """``(B, C, *S)`` -> latents ``{name: (B, depth, *ceil(S / hop_name))}`` on the CPU; the end of
        each axis is padded to a multiple of the hop."""
        x = self.pad_to_hop(x.to(self.device))
        labels = labels.to(self.device) if labels is not None else None
        return {k: v.cpu() for k, v in self.model.encode(x, labels, n_q).items()}

    def encode_tensor(self, x: torch.Tensor, n_q: int | None = None, labels: torch.Tensor | None = None) -> Latents:
        """``(C, *S)`` -> latents ``{name: (depth, *ceil(S / hop_name))}``."""
        labels = labels[:1] if labels is not None else None
        return {k: v[0] for k, v in self.encode_batch(x[None], n_q, labels).items()}

    @torch.no_grad()
    def decode_tensor(self, latents: Latents, labels: torch.Tensor | None = None) -> torch.Tensor:
        """Latents ``{name: (depth, *G)}`` -> ``(C, *G * hop)``."""
        batch = {k: v[None].to(self.device) for k, v in latents.items()}
        labels = labels[:1].to(self.device) if labels is not None else None
        return self.model.decode(batch, labels)[0].float().cpu()

    # ---- the public API ----
    def encode(self, x, n_q: int | None = None, label: str | None = None):
        """A tensor ``(C, *S)`` or a file path -> the file arrays: one array when the family has a
        single latent (codes ``(n_q, T)`` / ``(H, W)``, or means ``(D, *G)``), else a dict by name."""
        if isinstance(x, (str, Path)):
            arrays = self.encode_file(Path(x), n_q, label).arrays
        else:
            arrays = self.to_file_arrays(self.encode_input(x, self.check_n_q(n_q), self.labels(label)))
        return next(iter(arrays.values())) if len(arrays) == 1 else arrays

    def decode(self, codes, label: str | None = None) -> torch.Tensor:
        """Latents (an array, a dict of arrays by name, or a ``CodeFile``) -> ``(C, *S)``."""
        if isinstance(codes, CodeFile):
            cf = codes
        elif isinstance(codes, dict):
            cf = CodeFile({k: np.asarray(v) for k, v in codes.items()}, None)
        else:
            cf = CodeFile.bare(np.asarray(codes))
        latents = self.check(cf, "codes")
        return self._crop(self.decode_latents(latents, self._decode_labels(cf, label)), (cf.meta or {}).get("size"))

    def check(self, cf: CodeFile, name: str) -> Latents:
        """Refuse latents from another model or modality; return them as ``{name: (depth, *G)}``."""
        meta = cf.meta or {}
        if meta.get("modality", self.modality.name) != self.modality.name:
            raise VqtokError(f"{name}: {meta['modality']} codes, but this is a {self.modality.name} model")
        if meta.get("model_hash", self.model_hash) != self.model_hash:
            raise VqtokError(f"{name}: made by model {meta['model_hash']}, not by this one ({self.model_hash})")
        return self.from_file_arrays(cf, name)

    def _decode_labels(self, cf: CodeFile, label: str | None) -> torch.Tensor | None:
        """A conditional model decodes with ``label``, or else the label the code file records."""
        if label is None and self.model.conditional:
            label = (cf.meta or {}).get("label")
        return self.labels(label)

    @staticmethod
    def _crop(x: torch.Tensor, size: list[int] | None) -> torch.Tensor:
        """``(C, *S)`` cut to its first ``size`` elements along each axis of ``S`` (None: as it is)."""
        return x[(slice(None), *(slice(0, s) for s in size))] if size else x

    def encode_file(self, path: Path, n_q: int | None = None, label: str | None = None) -> CodeFile:
        """Encode one file, in bounded memory where the modality splits long inputs (streamed from the
        file in chunks, or in tiles). :func:`vqtok.codec.batching.encode_files` encodes many, short ones
        stacked in batches, into the same code files."""
        self.check_supported(path)
        n_q = self.check_n_q(n_q)
        labels = self.labels(label)
        opts = self.config.options
        if self.modality.long_inputs == "stream":
            chunk, _, _ = self._context()
            pieces = iter(self.modality.stream(path, opts, block=chunk * self.hop))
            first = next(pieces, None)  # its shape gives the other axes' sizes
            latents = self.encode_stream(pieces if first is None else itertools.chain([first], pieces), n_q, labels)
            size = [*(first.shape[1:-1] if first is not None else ()), self.modality.length(path, opts)]
        else:
            x = self.modality.load(path, opts)
            latents, size = self.encode_input(x, n_q, labels), list(x.shape[1:])
        return self.code_file(latents, size, n_q, label)

    def check_supported(self, path: Path, nor: str = "") -> None:
        """Refuse a file whose suffix this model's modality does not read; ``nor`` names what else the
        caller would have taken (e.g. "a code file (.npy/.npz)")."""
        if not self.modality.is_supported(path):
            raise VqtokError(
                f"{path}: not a file this {self.modality.name} model reads ({', '.join(self.modality.suffixes)})"
                + (f" nor {nor}" if nor else "")
            )

    def code_file(self, latents: Latents, size: list[int], n_q: int | None, label: str | None) -> CodeFile:
        """The code file of an input of ``size`` elements per axis encoded into ``latents``."""
        opts = self.config.options
        meta = {
            "model_hash": self.model_hash,
            "modality": self.modality.name,
            "family": self.family,
            "size": size,
            **self.modality.describe(opts),
        }
        if n_q is not None:
            meta["n_q"] = n_q
        if label is not None:
            meta["label"] = label
        return CodeFile(self.to_file_arrays(latents), meta)

    def decode_to_file(self, cf: CodeFile, out: Path, name: str = "codes", label: str | None = None) -> None:
        """Decode to ``out`` (written atomically); 1-D signals stream in chunks, images go in tiles."""
        latents = self.check(cf, name)
        labels = self._decode_labels(cf, label)
        opts = self.config.options
        with atomic_path(out) as tmp:
            if self.modality.long_inputs == "stream":
                with self.modality.writer(tmp, opts) as w:
                    for piece in self.decode_stream(latents, labels, (cf.meta or {}).get("size")):
                        w.write(piece)
            else:
                self.modality.save(
                    self._crop(self.decode_latents(latents, labels), (cf.meta or {}).get("size")), tmp, opts
                )

    def sample_labels(self, label: str | None, n: int) -> tuple[torch.Tensor | None, list[str]]:
        """The labels ``(n,)`` of ``n`` samples and their names: a conditional model's or a class-conditional
        prior's; without ``label``, every class in turn."""
        if self.model.conditional:
            names = self.label_names
        elif self.prior is not None and self.prior.conditional:
            names = list(self.prior_info["label_names"])
        elif label is not None:
            what = "prior" if self.prior is not None else f"{self.family} model"
            raise UsageError(
                f"--label: this {what} is not class-conditional (train-prior on data in "
                "class sub-folders makes one that is)"
            )
        else:
            return None, [""] * n
        if label is None:
            return torch.arange(n) % len(names), [names[i % len(names)] for i in range(n)]
        return _label_tensor(names, label, n), [label] * n

    @torch.no_grad()
    def sample(
        self,
        n: int,
        size: list[int] | None = None,
        label: str | None = None,
        temperature: float = 1.0,
        seed: int = 0,
        top_k: int = 0,
    ) -> torch.Tensor:
        """``n`` samples ``(n, C, *size)`` (``size`` per axis in input elements, default the training
        examples' size): from the family's own prior (vae, cvae) or through the learned prior over its
        codes (vqvae, vqvae2; ``top_k`` keeps the k likeliest codes at each step). Without ``label``, a
        conditional model cycles through its labels."""
        if not self.model.can_sample and self.prior is None:
            raise VqtokError(
                f"this {self.family} model has no prior over its codes yet; train one with "
                "`vqtok train-prior --model MODEL --data DIR`, then sample"
            )
        if n < 1 or temperature < 0 or top_k < 0:
            raise UsageError("-n must be at least 1, --temperature and --top-k at least 0")
        if top_k and self.model.can_sample:
            raise UsageError(
                f"--top-k applies to sampling codes through a prior; a {self.family} model samples continuous latents"
            )
        labels, _ = self.sample_labels(label, n)
        size = size or self.modality.example_size(self.config.options)
        if not size or len(size) != self.dims or min(size) < 1:
            raise UsageError(f"give the size of the samples ({self.dims} number(s) of input elements)")
        grid = [-(-s // self.hop) for s in size]
        g = torch.Generator().manual_seed(seed)
        labels = labels.to(self.device) if labels is not None else None
        if self.model.can_sample:
            x = self.model.sample(n, grid, labels, temperature, g)
        else:
            codes = self.prior.sample(n, grid, labels, temperature, top_k, g)
            x = self.model.decode(codes, labels if self.model.conditional else None)
        x = x.float().cpu()
        return crop_batch(x, size)


def crop_batch(x: torch.Tensor, size) -> torch.Tensor:
    """``(B, C, *S)`` cropped to its first ``size`` elements along each axis of ``S``."""
    return x[(slice(None), slice(None), *(slice(0, s) for s in size))]


def _label_tensor(names: list[str], label: str, n: int) -> torch.Tensor:
    """``(n,)`` copies of the index of ``label`` in ``names``; an unknown label lists the known ones."""
    if label not in names:
        raise UsageError(f"--label {label!r} is not a label of this model; known labels: {', '.join(names)}")
    return torch.full((n,), names.index(label), dtype=torch.long)
