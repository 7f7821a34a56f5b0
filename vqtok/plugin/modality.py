"""What a modality provides: file I/O, a training set, a loss, and the facts the core needs about its data.

Tensors use the model's layout without a batch axis: ``(C, T)`` for 1-D signals (``dims == 1``) and
``(C, H, W)`` for 2-D maps (``dims == 2``), float32, in :attr:`Modality.value_range` (the built-ins use
[-1, 1]). A plugin subclasses :class:`Modality`, fills in the class attributes and the abstract methods,
and returns an instance from its ``vqtok_modalities`` hook. Everything else has a working default.

The core guesses nothing from a modality's name or number of dims: how long inputs are split
(:attr:`Modality.long_inputs`), how they are padded to the model's hop (:attr:`Modality.pad_mode`), what
decode may write (:attr:`Modality.output_suffixes`), the time axis that bitrates are counted on
(:meth:`Modality.time_axis`), what ``vqtok info`` shows (:meth:`Modality.facts`) and the quality metrics
``vqtok eval`` reports (:meth:`Modality.quality`, :meth:`Modality.quality_labels`) all come from here.
"""

from __future__ import annotations

import abc
import dataclasses
from collections.abc import Iterator
from pathlib import Path

import torch

from ..errors import VqtokError


@dataclasses.dataclass
class NoOptions:
    """For modalities without options of their own."""


class Modality(abc.ABC):
    name: str = ""
    description: str = ""
    suffixes: tuple[str, ...] = ()  # lower-case, with the dot: (".png", ".jpg")
    dims: int = 1  # 1: (C, T) signals; 2: (C, H, W) maps
    config_class: type = NoOptions  # dataclass of this modality's options (the recipe's [name] table)
    default_suffix: str = ""  # what vqtok names the files it writes for you (sample-000.png); "": suffixes[0]
    default_model: Path | None = None  # a trained model shipped with the plugin: used when no --model is given
    # Other trained models the plugin ships, by name: `--model @NAME` (e.g. {"digits": ...}). A name may
    # not be a modality's: `@image` always means the image modality's default.
    named_models: dict[str, Path] = {}
    output_suffixes: tuple[str, ...] = ()  # what decode and sample may write; (): the suffixes it reads
    value_range: tuple[float, float] = (-1.0, 1.0)  # of the tensors load returns and save takes
    # How inputs longer than a training example are encoded and decoded in bounded memory: "stream" (along
    # the last axis, in chunks with context, through stream() and writer()), "tiles" (2-D, in overlapping
    # tiles) or "whole" (at once). Every mode gives the codes a whole-input pass would.
    long_inputs: str = "whole"
    pad_mode: str = "constant"  # how inputs are padded at the end to a multiple of the hop: constant (zeros),
    #                             replicate (the edge repeated) or reflect

    # ---- required -------------------------------------------------------------------------------
    @abc.abstractmethod
    def channels(self, options) -> int:
        """Number of channels C of the model's input."""

    @abc.abstractmethod
    def load(self, path: Path, options) -> torch.Tensor:
        """Read one file into a ``(C, *spatial)`` float tensor; raise ``VqtokError`` naming the file."""

    @abc.abstractmethod
    def save(self, x: torch.Tensor, path: Path, options) -> None:
        """Write a ``(C, *spatial)`` tensor to ``path`` (the suffix picks the format)."""

    @abc.abstractmethod
    def training_example(self, path: Path, options, generator: torch.Generator) -> torch.Tensor:
        """One fixed-shape training example from ``path`` (a random segment or crop drawn with
        ``generator``), ``(C, *example_shape)``; every example of a run has the same shape."""

    # ---- defaults a modality may override ----------------------------------------------------------
    def default_overrides(self) -> dict:
        """Defaults for other sections, e.g. ``{"model": {"strides": [4, 4]}, "train": {...}}``."""
        return {}

    def loss(self, x_hat: torch.Tensor, x: torch.Tensor, options) -> dict[str, torch.Tensor]:
        """Reconstruction loss of a batch ``(B, C, *spatial)``: a dict whose ``"recon"`` entry is
        minimised; further entries are logged. Default: mean squared error."""
        return {"recon": torch.nn.functional.mse_loss(x_hat, x)}

    def discriminator(self, options, width: int) -> torch.nn.Module | None:
        """A discriminator for the optional adversarial loss (``[adversarial]``, :mod:`vqtok.adversarial`),
        ``width`` channels wide: it maps a batch ``(B, C, *S)`` to a list, one per sub-discriminator, of its
        feature maps, the last being its logits (any shape). Default None: no adversarial training."""
        return None

    def describe(self, options) -> dict:
        """What decoding needs to know, stored in the model file's metadata (e.g. the sample rate)."""
        return {}

    def time_axis(self, options) -> float | None:
        """Input elements per second along the last axis (a sample rate; a spectrogram's frames per
        second), so that bitrates are in bit/s; None when the data has no time axis and bits are counted
        per item (per image, of :meth:`example_size`). Default None."""
        return None

    def facts(self, options) -> dict[str, str]:
        """What ``vqtok info`` shows about the data a model of ``options`` takes, ``{label: text}`` (stored
        in the model file, so ``info`` shows it without the plugin). Default: the :meth:`describe` entries."""
        return {k.replace("_", " "): str(v) for k, v in self.describe(options).items()}

    def bound_to_weights(self, options) -> dict:
        """The entries of :meth:`describe` that trained weights are bound to: fine-tuning (``--init``)
        refuses a run whose options give another value for one. Default: all of them. A setting the
        networks do not depend on (the image size, for fully convolutional ones) can be left out."""
        return self.describe(options)

    def example_size(self, options) -> list[int] | None:
        """The size per axis of a training example (what ``vqtok sample`` makes unless told); None:
        the user must say."""
        return None

    def sees_whole_files(self, options) -> bool:
        """Whether models of ``options`` take files whole, at their own size (fully convolutional, trained on
        crops or segments of them): ``train-prior`` then learns from the codes ``vqtok encode`` writes for
        each file, in random windows of ``prior.window``. False: from each file's :meth:`evaluation_example`.
        Default: True."""
        return True

    def evaluation_example(self, path: Path, options) -> torch.Tensor:
        """The whole of ``path`` as the model is evaluated on it (``vqtok eval``, ``train-prior``'s codes),
        ``(C, *S)``, without randomness: by default the file as ``load`` reads it. A modality whose
        models see a fixed size (images resized and cropped to ``image.size``) returns that."""
        return self.load(path, options)

    def quality(self, x_hat: torch.Tensor, x: torch.Tensor, options) -> dict[str, torch.Tensor]:
        """How close reconstructions are to their originals, a batch ``(B, C, *S)`` -> ``{metric: (B,)}``,
        shown by ``vqtok eval`` (mean over the files). Default: mean squared error and PSNR (dB, against
        the width of :attr:`value_range`), from the shared :mod:`vqtok.metrics`."""
        from ..metrics import mse, psnr

        low, high = self.value_range
        return {"mse": mse(x_hat, x), "psnr_db": psnr(x_hat, x, peak=high - low)}

    def quality_labels(self) -> dict[str, str]:
        """How ``vqtok eval`` labels the metrics of :meth:`quality` (a metric without one shows its key)."""
        low, high = self.value_range
        return {"mse": "MSE", "psnr_db": f"PSNR (dB, peak-to-peak {high - low:g})"}

    def save_batch(self, x: torch.Tensor, path: Path, options) -> bool:
        """Write a batch ``(N, C, *spatial)`` as one file (e.g. an image grid); False if not offered."""
        return False

    def output_suffix(self) -> str:
        return self.default_suffix or (self.writes()[0] if self.writes() else "")

    def writes(self) -> tuple[str, ...]:
        """The suffixes decode and sample may write."""
        return self.output_suffixes or self.suffixes

    def is_supported(self, path: Path) -> bool:
        """Whether the modality reads ``path`` (by its suffix)."""
        return path.suffix.lower() in self.suffixes

    def can_write(self, path: Path) -> bool:
        return path.suffix.lower() in self.writes()

    def example_label(self, path: Path, root: Path) -> str | None:
        """The class label of a file: by default the name of its first sub-folder under ``root``."""
        rel = path.relative_to(root)
        return rel.parts[0] if len(rel.parts) > 1 else None

    # ---- streaming for long 1-D signals (defaults load the whole file) --------------------------
    def length(self, path: Path, options) -> int:
        """Length T of the file in model samples, without reading it all if the format allows."""
        return self.load(path, options).shape[-1]

    def stream(self, path: Path, options, block: int) -> Iterator[torch.Tensor]:
        """Yield consecutive ``(C, n)`` pieces of the signal, ``n <= block``, that join to ``load``."""
        yield from self.load(path, options).split(block, dim=-1)

    def writer(self, path: Path, options) -> SignalWriter:
        """A writer taking consecutive ``(C, n)`` pieces; by default collected and saved at the end."""
        return CollectingWriter(self, path, options)

    # ---- pictures ------------------------------------------------------------------------------------
    def preview(self, originals: torch.Tensor, reconstructions: torch.Tensor, path: Path, options) -> bool:
        """Write a PNG comparing a batch of originals with their reconstructions; False if not offered."""
        return False

    def report_figures(
        self, originals: list[torch.Tensor], reconstructions: list[torch.Tensor], folder: Path, options
    ) -> list[Path]:
        """Pictures for ``vqtok eval --plots``: a few originals and their reconstructions, each
        ``(C, *S)`` (sizes may differ between examples), drawn into ``folder``; returns the files written.
        Default: the :meth:`preview` picture as ``reconstructions.png`` when the examples share one size."""
        path = folder / "reconstructions.png"
        if len({tuple(x.shape) for x in originals}) != 1:
            return []
        return [path] if self.preview(torch.stack(originals), torch.stack(reconstructions), path, options) else []


LONG_INPUTS = ("stream", "tiles", "whole")
PAD_MODES = ("constant", "replicate", "reflect")


def declaration_problems(m: Modality) -> list[str]:
    """What is wrong with a modality's class attributes, each said precisely (empty: nothing)."""
    problems = []
    if not (isinstance(m.name, str) and m.name.isidentifier()):
        problems.append(f"name {m.name!r} must be a word (letters, digits, _), e.g. 'mel'")
    for what, suffixes in (("suffixes", m.suffixes), ("output_suffixes", m.output_suffixes)):
        bad = [x for x in suffixes if not (isinstance(x, str) and x.startswith(".") and x == x.lower())]
        if bad:
            problems.append(f"{what} must be lower-case with the dot, like '.wav': {bad}")
    if not m.suffixes:
        problems.append("suffixes is empty: say which files the modality reads")
    if m.dims not in (1, 2):
        problems.append(f"dims {m.dims!r}: 1 for (C, T) signals or 2 for (C, H, W) maps")
    if m.long_inputs not in LONG_INPUTS:
        problems.append(f"long_inputs {m.long_inputs!r}: one of {', '.join(LONG_INPUTS)}")
    elif m.long_inputs == "tiles" and m.dims != 2:
        problems.append("long_inputs 'tiles' needs dims = 2")
    if m.pad_mode not in PAD_MODES:
        problems.append(f"pad_mode {m.pad_mode!r}: one of {', '.join(PAD_MODES)}")
    low, high = m.value_range
    if not low < high:
        problems.append(f"value_range {m.value_range}: the low end must be below the high end")
    if m.default_suffix and m.default_suffix not in m.writes():
        problems.append(f"default_suffix {m.default_suffix!r} is not among the suffixes it writes {m.writes()}")
    return problems


def stored_facts(modality: Modality, options) -> dict:
    """What a model file records about its modality's data, for tools that read the file without the plugin
    (``vqtok info``): the time axis (input elements per second, or None), the training example's size per
    axis, and the :meth:`Modality.facts` to show."""
    return {
        "elements_per_second": modality.time_axis(options),
        "example_size": modality.example_size(options),
        "facts": modality.facts(options),
    }


class SignalWriter(abc.ABC):
    """Writes a 1-D signal piece by piece; ``close`` finishes the file."""

    @abc.abstractmethod
    def write(self, piece: torch.Tensor) -> None: ...

    @abc.abstractmethod
    def close(self) -> None: ...

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if exc[0] is None:
            self.close()


class CollectingWriter(SignalWriter):
    def __init__(self, modality: Modality, path: Path, options):
        self.modality, self.path, self.options, self.pieces = modality, path, options, []

    def write(self, piece):
        self.pieces.append(piece)

    def close(self):
        self.modality.save(torch.cat(self.pieces, dim=-1), self.path, self.options)


def find_files(root: Path, modality: Modality) -> list[Path]:
    """All files under ``root`` (recursively, sorted) that the modality reads; a file is itself."""
    root = Path(root)
    if not root.exists():
        raise VqtokError(f"{root}: no such file or folder")
    if root.is_file():
        return [root]
    files = sorted(p for p in root.rglob("*") if p.is_file() and modality.is_supported(p))
    if not files:
        any_file = any(p.is_file() for p in root.rglob("*"))
        what = "no supported files" if any_file else "an empty folder"
        raise VqtokError(f"{root}: {what} for modality {modality.name!r} (it reads {', '.join(modality.suffixes)})")
    return files
