"""Inputs of any length or size in bounded memory: streamed in chunks along the last axis
(:mod:`vqtok.codec.chunking`) or cut into overlapping tiles (:mod:`vqtok.codec.tiling`), as the modality
says (``Modality.long_inputs``), with the networks' receptive context around each piece, so that the
latents and outputs are those of one pass over the whole input."""

from __future__ import annotations

import torch
from torch.nn import functional as F

from . import chunking
from .arrays import Latents
from .tiling import decode_tiled, encode_tiled

CHUNK_SAMPLES = 2**17  # input elements per chunk when streaming along the last axis (~8 s at 16 kHz)
TILE_PIXELS = 512  # side of the tiles large 2-D inputs are encoded and decoded in (plus context)


class LongInputs:
    """How :class:`vqtok.codec.Tokenizer` splits long inputs; it provides ``encode_tensor``,
    ``decode_tensor``, ``hop``, ``model``, ``modality`` and ``_crop``."""

    def _context(self) -> tuple[int, int, int]:
        """Latent positions per chunk, and the encoder's and decoder's context in positions."""
        chunk = max(1, CHUNK_SAMPLES // self.hop)
        return chunk, self.model.encoder_context, self.model.decoder_context

    def _tile(self) -> int:
        """Latent positions per side of the tiles 2-D inputs are encoded and decoded in."""
        return max(1, TILE_PIXELS // self.hop)

    def encode_image(self, x: torch.Tensor, n_q: int | None = None, labels: torch.Tensor | None = None) -> Latents:
        """``(C, H, W)`` -> latents ``{name: (depth, *ceil((H, W) / hop_name))}``, encoded in tiles of
        about TILE_PIXELS (:mod:`vqtok.codec.tiling`): the same latents as a whole encode, in bounded memory."""
        _, context, _ = self._context()
        tile = self._tile()
        encode = lambda window: self.encode_tensor(window, n_q, labels)  # noqa: E731
        return encode_tiled(x, encode, self.hop, context, tile)  # encode_tensor pads the windows at the end

    def decode_image(self, latents: Latents, labels: torch.Tensor | None = None) -> torch.Tensor:
        """Latents on a grid ``G`` -> ``(C, *G * hop)``, decoded in tiles (see :meth:`encode_image`)."""
        _, _, context = self._context()
        tile = self._tile()
        return decode_tiled(latents, lambda part: self.decode_tensor(part, labels), self.hop, context, tile)

    def encode_stream(self, pieces, n_q: int | None = None, labels: torch.Tensor | None = None) -> Latents:
        """Consecutive pieces ``(C, ..., n)`` of one input -> its latents, chunk by chunk along the last
        axis with context (:mod:`vqtok.codec.chunking`): the latents of a whole encode, in bounded memory."""
        chunk, context, _ = self._context()
        return chunking.encode_stream(pieces, lambda w: self.encode_tensor(w, n_q, labels), self.hop, context, chunk)

    def decode_stream(self, latents: Latents, labels: torch.Tensor | None = None, size: list[int] | None = None):
        """Latents -> consecutive pieces ``(C, ..., m)`` of the input, cut to ``size`` when given."""
        chunk, _, context = self._context()
        length = size[-1] if size else None
        for piece in chunking.decode_stream(
            latents, lambda part: self.decode_tensor(part, labels), self.hop, context, chunk, length
        ):
            yield self._crop(piece, [*size[:-1], piece.shape[-1]] if size else None)  # the length is cut already

    def one_pass_window(self, x: torch.Tensor) -> torch.Tensor | None:
        """The window ``(C, *S')`` that :meth:`encode_input` passes to the network in one piece when ``x``
        ``(C, *S)`` fits one chunk or one tile (streamed inputs are padded with zeros along the last axis
        to a multiple of the hop, as :func:`~vqtok.codec.chunking.encode_stream` pads them), or None when
        it is encoded in pieces. Windows of one shape stack into a batch with the same latents."""
        mode = self.modality.long_inputs
        if mode == "tiles":
            tile = self._tile()
            return x if all(-(-n // self.hop) <= tile for n in x.shape[-2:]) else None
        if mode == "stream":
            return F.pad(x, (0, -x.shape[-1] % self.hop)) if self.fits_one_pass(x.shape[-1]) else None
        return x

    def fits_one_pass(self, length: int) -> bool:
        """Whether a streamed input ``length`` elements long is encoded in one pass (see :meth:`one_pass_window`)."""
        chunk, _, _ = self._context()
        return length <= chunk * self.hop

    def encode_input(self, x: torch.Tensor, n_q: int | None = None, labels: torch.Tensor | None = None) -> Latents:
        """``(C, *S)`` -> latents, split as the modality says for long inputs (``Modality.long_inputs``)."""
        mode = self.modality.long_inputs
        if mode == "tiles":
            return self.encode_image(x, n_q, labels)
        if mode == "stream":
            chunk, _, _ = self._context()
            return self.encode_stream(x.split(chunk * self.hop, dim=-1), n_q, labels)
        return self.encode_tensor(x, n_q, labels)

    def decode_latents(self, latents: Latents, labels: torch.Tensor | None = None) -> torch.Tensor:
        """Latents -> ``(C, *G * hop)``, split as the modality says for long inputs."""
        mode = self.modality.long_inputs
        if mode == "tiles":
            return self.decode_image(latents, labels)
        if mode == "stream":
            return torch.cat(list(self.decode_stream(latents, labels)), dim=-1)
        return self.decode_tensor(latents, labels)
