"""Entropy coding of a model's codes with its prior as the probability model: codes to a ``.vqz``
container (:mod:`vqtok.files.vqz`) and back, losslessly.

The codes are cut into the tiles the prior is measured on (:func:`vqtok.prior.data.tile_starts`:
``prior.window`` positions of the finest level per axis, aligned to the coarsest), and each tile is
one chunk, range-coded on its own (``constriction``), so that chunks decode independently and a
damaged one is named. Within a tile the codes are coded level by level (coarsest first), in raster
order, codebook by codebook: the order in which the prior's streaming sampler
(:meth:`vqtok.prior.model.Prior.generate`) visits them. The encoder runs that same sampler with
the known codes, the decoder with the decoded ones, so both compute the probabilities the same way.

Encoder and decoder must compute bit-identical probabilities. The prior runs on the CPU in one thread
(threads change the order of float sums), on tiles grouped the same way on both sides (groups of
equal shape, :data:`BATCH` at a time: the shapes choose the kernels), and each code's probabilities
become integers (:func:`quantized_masses`: a floor of 1, so no code is impossible). The header records
the CRC32 of the codes, so that a machine whose floats differ anyway (another CPU or torch build)
reports it instead of writing wrong codes.

Coders: ``prior`` where the model has a prior over all the codebooks the codes use, with the label
that codes the file best for a class-conditional prior (or ``--label``); otherwise ``unigram``, each
codebook's codes coded with how often the model used each code in training
(:meth:`vqtok.models.base.Family.code_counts`, stored in the model file, so both sides read the same
numbers); ``uniform`` (``log2 K`` bits per code, the raw rate) for a family that keeps no counts.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterator
from contextlib import contextmanager

import constriction
import numpy as np
import torch

from ..errors import UsageError, VqtokError
from ..files.vqz import Container, crc32
from ..prior.data import crop_tile, tile_span, tile_starts
from ..prior.model import Prior
from .arrays import Latents

# Part of .vqz format version 1 (vqtok.files.vqz.FORMAT_VERSION): changing one needs a new version.
MASS_BITS = 22  # a code's probability, as an integer mass of a total below 2**MASS_BITS
BATCH = 16  # tiles run through the prior together
CATEGORICAL = constriction.stream.model.Categorical(perfect=False)

# The encoder's choices, written into the header.
UNIFORM_WINDOW = 256  # tile side without a prior (positions of the finest level)
LABEL_PROBE_BATCHES = 1  # groups of tiles that choose a class-conditional prior's label


def quantized_masses(logits: torch.Tensor) -> np.ndarray:
    """``logits`` ``(n, K)`` -> integer masses ``(n, K)`` (float64 holding whole numbers): each code's
    probability times ``2**MASS_BITS - K``, rounded down, plus one."""
    k = logits.shape[-1]
    p = torch.softmax(logits.double(), dim=-1)
    return (torch.floor(p * ((1 << MASS_BITS) - k)) + 1).numpy()


def unigram_masses(counts: torch.Tensor) -> np.ndarray:
    """A codebook's use counts ``(K,)`` -> integer masses ``(K,)`` as :func:`quantized_masses` makes them, in
    float64 with an exactly rounded sum (``math.fsum``), so that every machine gets the same masses."""
    c = np.maximum(counts.double().numpy(), 0.0)
    k, total = len(c), math.fsum(c)
    p = c / total if total > 0 else np.full(k, 1.0 / k)
    return np.floor(p * ((1 << MASS_BITS) - k)) + 1


class _Encoding:
    """A :class:`~vqtok.prior.network.Picker` that takes the known codes ``(n, n_q, *G)`` of ``n`` tiles and
    range-codes each with its probabilities into that tile's encoder."""

    def __init__(self, codes: torch.Tensor, coders: list):
        self.codes, self.coders, self.n = codes, coders, codes.shape[0]

    def pick(self, logits: torch.Tensor, q: int, index: tuple) -> torch.Tensor:
        known = self.codes[(slice(None), q, *index)]
        masses = quantized_masses(logits)
        symbols = known.numpy().astype(np.int32)
        for b, coder in enumerate(self.coders):
            coder.encode(symbols[b : b + 1], CATEGORICAL, masses[b : b + 1])
        return known


class _Decoding:
    """A picker that decodes each tile's code from its decoder with the same probabilities."""

    def __init__(self, coders: list):
        self.coders, self.n = coders, len(coders)

    def pick(self, logits: torch.Tensor, q: int, index: tuple) -> torch.Tensor:
        masses = quantized_masses(logits)
        return torch.tensor(
            [int(coder.decode(CATEGORICAL, masses[b : b + 1])[0]) for b, coder in enumerate(self.coders)],
            dtype=torch.long,
        )


@contextmanager
def _one_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def prior_hash(prior: Prior) -> str:
    """A hash of the prior's weights (as it computes, float32), to refuse a file coded with another prior."""
    h = hashlib.sha256()
    for name, t in sorted(prior.state_dict().items()):
        h.update(name.encode())
        h.update(t.detach().float().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def codes_crc(latents: Latents) -> int:
    """CRC32 of codes ``{name: (n_q, *G)}``, level by level in name order, as int32."""
    return crc32(b"".join(latents[n].to(torch.int32).contiguous().numpy().tobytes() for n in sorted(latents)))


class TileLayout:
    """How the codes of one file, ``{name: (n_q, *G)}`` shapes, are cut into tiles and grouped."""

    def __init__(self, shapes: dict[str, list[int]], hops: dict[str, int], window: int):
        self.shapes, self.hops = shapes, {name: hops[name] for name in shapes}
        self.span = tile_span(self.hops, window)
        blank = {name: torch.zeros(shape, dtype=torch.long) for name, shape in shapes.items()}
        self.starts = tile_starts(blank, self.hops, window)
        self.tile_shapes = [
            {k: list(v.shape) for k, v in crop_tile(blank, s, self.span, self.hops).items()} for s in self.starts
        ]

    def cut(self, latents: Latents) -> list[Latents]:
        return [crop_tile(latents, s, self.span, self.hops) for s in self.starts]

    def join(self, tiles: list[Latents]) -> Latents:
        coarse = max(self.hops.values())
        out = {name: torch.zeros(shape, dtype=torch.long) for name, shape in self.shapes.items()}
        for starts, tile in zip(self.starts, tiles):
            for name, codes in tile.items():
                f = coarse // self.hops[name]
                region = tuple(slice(s * f, s * f + n) for s, n in zip(starts, codes.shape[1:]))
                out[name][(slice(None), *region)] = codes
        return out

    def batches(self) -> list[list[int]]:
        """Tile indices in groups of equal shape, at most :data:`BATCH` each, in a fixed order."""
        groups: dict[str, list[int]] = {}
        for i, shape in enumerate(self.tile_shapes):
            groups.setdefault(repr(sorted(shape.items())), []).append(i)
        return [ids[j : j + BATCH] for ids in groups.values() for j in range(0, len(ids), BATCH)]


class Codec:
    """Compresses and decompresses the codes of one model (a :class:`~vqtok.codec.Tokenizer` ``tok``)."""

    def __init__(self, tok):
        self.tok = tok
        self.hops = {name: spec.hop for name, spec in tok.specs.items()}
        self._hashed: tuple[Prior | None, str] = (None, "")  # the last prior hashed, and its hash
        continuous = [name for name, spec in tok.specs.items() if not spec.discrete]
        if continuous:
            raise UsageError(
                f"a {tok.family} model has continuous latents ({', '.join(continuous)}), not codes "
                "to entropy-code; compress works with vqvae and vqvae2 models"
            )

    def _prior_hash(self, prior: Prior) -> str:
        """:func:`prior_hash`, computed once per prior (a folder compresses many files with it)."""
        if self._hashed[0] is not prior:
            self._hashed = (prior, prior_hash(prior))
        return self._hashed[1]

    # ---- choices ----
    def _prior(self, shapes: dict[str, list[int]]) -> Prior | None:
        """The prior on the CPU, where it models every codebook of codes of ``shapes`` ``{name: [n_q, *G]}``
        (not for --n-q below it)."""
        prior = self.tok.prior
        if prior is None or any(shapes[n][0] != prior.levels[n].n_q for n in prior.order):
            return None
        return prior.cpu()

    @torch.no_grad()
    def _label_index(self, prior: Prior, layout: TileLayout, tiles: list[Latents], label: str | None) -> int | None:
        """The prior label to code with: ``label``, or the one (or "no label") under which the codes cost
        the fewest bits (of the first :data:`LABEL_PROBE_BATCHES` groups of tiles); None for an unconditional
        prior."""
        if not prior.conditional:
            return None
        names = list(self.tok.prior_info.get("label_names") or [])
        if label is not None:
            if label not in names:
                raise UsageError(f"--label {label!r} is not a label of this prior; known: {', '.join(names)}")
            return names.index(label)
        cost = sum(
            prior.nats_per_label({name: torch.stack([tiles[i][name] for i in ids]) for name in prior.order}).sum(1)
            for ids in layout.batches()[:LABEL_PROBE_BATCHES]
        )  # (labels,), "no label" last where the prior learned it
        return int(cost.argmin())

    @torch.no_grad()
    def estimated_bits(self, latents: Latents) -> float:
        """-log2 p of codes ``{name: (n_q, *G)}`` under the prior given no label, tile by tile as
        :meth:`compress` codes them: what its payload reaches, within the coder's rounding."""
        shapes = {name: list(latents[name].shape) for name in self.tok.specs}
        prior = self._prior(shapes)
        if prior is None:
            raise UsageError("no prior over these codes: they are coded at log2 K per code")
        tiles = TileLayout(shapes, self.hops, prior.options.window).cut(latents)
        return sum(float(prior.nats_per_example({k: t[k][None] for k in t})) for t in tiles) / math.log(2)

    # ---- compress ----
    def compress(self, latents: Latents, meta: dict | None, label: str | None = None) -> Container:
        """Codes ``{name: (n_q, *G)}`` (checked against the model) and their code file's meta -> a container."""
        tok = self.tok
        shapes = {name: list(latents[name].shape) for name in tok.specs}
        prior = self._prior(shapes)
        window = prior.options.window if prior is not None else UNIFORM_WINDOW
        layout = TileLayout(shapes, self.hops, window)
        codes = {name: latents[name].long() for name in shapes}
        tiles = layout.cut(codes)
        coder, fixed = ("prior", None) if prior is not None else self._fixed_models(shapes)
        header = {
            "model": tok.model_hash,
            "modality": tok.modality.name,
            "shapes": shapes,
            "window": window,
            "meta": _short_meta(meta),
            "coder": coder,
            "codes_crc": codes_crc(codes),
        }
        if fixed is not None:
            return Container(header, [self._fixed_encode(tile, fixed) for tile in tiles])
        chosen = self._label_index(prior, layout, tiles, label)  # the encoder's choice, written down: any threads
        header["prior"] = self._prior_hash(prior)
        if chosen is not None:
            header["label"] = chosen
        with _one_thread():
            payloads = self._prior_encode(prior, layout, chosen, tiles)
        return Container(header, payloads)

    def _fixed_models(self, shapes: dict[str, list[int]]) -> tuple[str, dict[str, list]]:
        """The coder for codes of ``shapes`` without a prior, and per latent, per codebook, the constriction
        model of every code: from the model's code counts (``unigram``), or ``log2 K`` bits each
        (``uniform``) for a family that keeps none."""
        counts = self.tok.model.code_counts()
        if counts and set(counts) == set(shapes):
            categorical = constriction.stream.model.Categorical
            return "unigram", {
                name: [categorical(unigram_masses(c), perfect=False) for c in counts[name][: shapes[name][0]]]
                for name in shapes
            }
        return "uniform", {
            name: [constriction.stream.model.Uniform(k) for k in self.tok.specs[name].codebook_sizes[: shapes[name][0]]]
            for name in shapes
        }

    def _fixed_encode(self, tile: Latents, models: dict[str, list]) -> bytes:
        coder = constriction.stream.queue.RangeEncoder()
        for name in sorted(tile):
            for q, codes in enumerate(tile[name]):
                coder.encode(codes.reshape(-1).numpy().astype(np.int32), models[name][q])
        return _words(coder)

    def _prior_encode(self, prior: Prior, layout: TileLayout, chosen: int | None, tiles: list[Latents]) -> list[bytes]:
        payloads = [b""] * len(tiles)
        for ids in layout.batches():
            coders = [constriction.stream.queue.RangeEncoder() for _ in ids]
            pickers = {name: _Encoding(torch.stack([tiles[i][name] for i in ids]), coders) for name in prior.order}
            _stream(prior, layout, ids, pickers, chosen)
            for coder, i in zip(coders, ids):
                payloads[i] = _words(coder)
        return payloads

    # ---- decompress ----
    def decompress(self, box: Container, where: str) -> tuple[Latents, dict | None]:
        """A container's codes ``{name: (n_q, *G)}`` and the meta of the code file they came from."""
        tok, h = self.tok, box.header
        if h.get("model") != tok.model_hash:
            raise VqtokError(
                f"{where}: compressed with model {h.get('model')}, not with this one "
                f"({tok.model_hash}); pass --model with that model"
            )
        try:
            shapes = {name: [int(n) for n in s] for name, s in h["shapes"].items()}
            window, coder, label = int(h["window"]), h["coder"], h.get("label")
        except (KeyError, TypeError, ValueError, AttributeError):
            raise VqtokError(f"{where}: the header lacks what `vqtok compress` writes; the file is damaged") from None
        if set(shapes) != set(tok.specs) or coder not in ("prior", "unigram", "uniform"):
            raise VqtokError(f"{where}: its codes do not fit this model (levels {', '.join(shapes)}, coder {coder})")
        with _one_thread():
            layout = TileLayout(shapes, self.hops, window)
            if len(layout.starts) != len(box.chunks):
                raise VqtokError(
                    f"{where}: {len(box.chunks)} chunk(s), but its code shapes make "
                    f"{len(layout.starts)}; the file is damaged"
                )
            payloads = box.chunks
            if coder in ("unigram", "uniform"):
                ours, fixed = self._fixed_models(shapes)
                if coder != ours:
                    raise VqtokError(f"{where}: coded {coder}, and this model's code counts do not allow it")
                tiles = [self._fixed_decode(p, shape, fixed) for p, shape in zip(payloads, layout.tile_shapes)]
            else:
                prior = self._prior(shapes)
                if prior is None:
                    raise VqtokError(f"{where}: coded with a prior, and this model has none over these codes")
                if h.get("prior") != self._prior_hash(prior):
                    raise VqtokError(
                        f"{where}: coded with prior {h.get('prior')}, not with this model's "
                        f"({self._prior_hash(prior)}); use the model file it was compressed with"
                    )
                if label is not None and label not in range(prior.n_labels + prior.knows_no_label):
                    raise VqtokError(f"{where}: label {label!r} is not one of this prior's; the file is damaged")
                tiles = self._prior_decode(prior, layout, label, payloads)
        codes = layout.join(tiles)
        if codes_crc(codes) != h.get("codes_crc"):
            raise VqtokError(
                f"{where}: decoded to other codes than were compressed: this machine computes the "
                "prior's probabilities differently from the one that compressed it (another CPU "
                "or torch build); nothing was written"
            )
        return codes, _full_meta(h.get("meta"), tok)

    def _prior_decode(
        self, prior: Prior, layout: TileLayout, chosen: int | None, payloads: list[bytes]
    ) -> list[Latents]:
        tiles: list[Latents] = [{} for _ in payloads]
        for ids in layout.batches():
            coders = [constriction.stream.queue.RangeDecoder(_from_words(payloads[i])) for i in ids]
            codes = _stream(prior, layout, ids, {name: _Decoding(coders) for name in prior.order}, chosen)
            for j, i in enumerate(ids):
                tiles[i] = {name: codes[name][j] for name in prior.order}
        return tiles

    def _fixed_decode(self, payload: bytes, shape: dict[str, list[int]], models: dict[str, list]) -> Latents:
        coder = constriction.stream.queue.RangeDecoder(_from_words(payload))
        tile = {}
        for name in sorted(shape):
            n_q, *grid = shape[name]
            rows = [
                torch.from_numpy(coder.decode(models[name][q], int(np.prod(grid))).astype(np.int64)).reshape(grid)
                for q in range(n_q)
            ]
            tile[name] = torch.stack(rows)
        return tile


def _stream(prior: Prior, layout: TileLayout, ids: list[int], pickers: dict, chosen: int | None) -> Latents:
    """The prior's streaming pass over the tiles ``ids`` (one shape), the pickers coding each code."""
    sizes = {name: layout.tile_shapes[ids[0]][name][1:] for name in prior.order}
    labels = torch.full((len(ids),), chosen, dtype=torch.long) if chosen is not None else None
    return prior.generate(len(ids), sizes, pickers, labels)


def _words(encoder) -> bytes:
    """A range encoder's output as bytes (its 32-bit words, little-endian)."""
    return encoder.get_compressed().astype("<u4").tobytes()


def _from_words(payload: bytes) -> np.ndarray:
    if len(payload) % 4:
        raise VqtokError("a chunk's length is not a whole number of 32-bit words; the file is damaged")
    return np.frombuffer(payload, dtype="<u4").astype(np.uint32)


_IMPLIED = ("model_hash", "modality", "family")  # a code file's meta keys the header holds anyway


def _short_meta(meta: dict | None) -> dict | None:
    return None if meta is None else {k: v for k, v in meta.items() if k not in _IMPLIED}


def _full_meta(short: dict | None, tok) -> dict | None:
    """The code file meta :func:`_short_meta` shortened, as ``vqtok encode`` wrote it."""
    if short is None:
        return None
    return {"model_hash": tok.model_hash, "modality": tok.modality.name, "family": tok.family, **short}
