"""VQ-VAE: a strided conv encoder, a (residual) vector quantizer and a mirrored decoder, 1-D or 2-D."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..config import ModelConfig
from ..nn.conv import Decoder, Encoder, receptive_radius
from .quantize import ResidualQuantizer


@dataclass
class VQVAEOutput:
    """One forward pass over a batch ``x`` of shape ``(B, C, *S)``."""

    x_hat: torch.Tensor  # (B, C, *S)
    codes: torch.Tensor  # (B, n_q, *S/hop)
    commit_loss: torch.Tensor  # scalar
    codebook_loss: torch.Tensor  # scalar
    perplexity: torch.Tensor  # (n_q,)
    usage: torch.Tensor  # (n_q,)


class VQVAE(nn.Module):
    family = "vqvae"

    def __init__(self, dims: int, in_channels: int, cfg: ModelConfig):
        super().__init__()
        self.dims = dims
        shape = dict(channels=cfg.channels, max_channels=cfg.max_channels, strides=cfg.strides,
                     res_blocks=cfg.res_blocks)
        self.encoder = Encoder(dims, in_channels, cfg.latent_dim, **shape)
        self.decoder = Decoder(dims, cfg.latent_dim, in_channels, **shape)
        self.quantizer = ResidualQuantizer(
            cfg.n_q, size=cfg.codebook_size, dim=cfg.latent_dim, beta=cfg.beta, update=cfg.codebook_update,
            decay=cfg.ema_decay, kmeans_init=cfg.kmeans_init, kmeans_iters=cfg.kmeans_iters,
            dead_threshold=cfg.dead_code_threshold,
        )
        self.hop = self.encoder.hop

    # ---- layout helpers: (B, D, *G) <-> (B * prod(G), D) ----
    @staticmethod
    def _flatten(z: torch.Tensor) -> torch.Tensor:
        return z.movedim(1, -1).reshape(-1, z.shape[1])

    @staticmethod
    def _unflatten(v: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        b, d, *grid = like.shape
        return v.reshape(b, *grid, v.shape[-1]).movedim(-1, 1)

    def forward(self, x: torch.Tensor, n_q: int | None = None) -> VQVAEOutput:
        z = self.encoder(x)
        q = self.quantizer(self._flatten(z), n_q)
        z_q = self._unflatten(q.z_q, z)
        codes = self._unflatten(q.codes, z)
        x_hat = self.decoder(z_q.to(z.dtype))
        return VQVAEOutput(x_hat, codes, q.commit_loss, q.codebook_loss, q.perplexity, q.usage)

    @torch.no_grad()
    def encode(self, x: torch.Tensor, n_q: int | None = None) -> torch.Tensor:
        """``(B, C, *S)`` with S a multiple of the hop -> codes ``(B, n_q, *S/hop)`` int64."""
        z = self.encoder(x)
        return self._unflatten(self.quantizer(self._flatten(z), n_q).codes, z)

    @torch.no_grad()
    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """Codes ``(B, n, *G)`` (``n <= n_q``) -> ``(B, C, *G*hop)``."""
        v = self.quantizer.decode(codes.movedim(1, -1))  # (B, *G, D)
        return self.decoder(v.movedim(-1, 1))

    @property
    def encoder_context(self) -> int:
        """Codes of context a chunk needs on each side so chunked encoding equals whole encoding."""
        return int(receptive_radius(self.encoder) // self.hop) + 1

    @property
    def decoder_context(self) -> int:
        """Codes of context a chunk needs on each side so chunked decoding equals whole decoding."""
        return int(receptive_radius(self.decoder, upsampling=True)) + 1
