"""VQ-VAE: a strided conv encoder, a (residual) vector quantizer and a mirrored decoder, 1-D or 2-D.

With ``model.n_q > 1`` the quantizer is residual; ``model.quantizer_dropout`` is the probability that a
training step uses only the first ``n`` codebooks (``n`` uniform in 1..n_q), so that one model decodes
with any number of them (SoundStream's quantizer dropout).
"""

from __future__ import annotations

import torch

from ..config import ModelConfig
from ..nn.conv import Decoder, Encoder, conv_shape
from .base import ConvFamily, LatentSpec, TrainStep
from .layout import flatten_grid, unflatten_grid
from .quantize import ResidualQuantizer, quantizer_from_config


def dropout_n_q(step: int, n_q: int, probability: float) -> int:
    """Codebooks used at training step ``step``: all, or with ``probability`` a uniform 1..n_q. A pure
    function of the step, so every process (and a resumed run) makes the same choice."""
    if n_q == 1 or probability <= 0:
        return n_q
    g = torch.Generator().manual_seed(1_000_003 * step + 17)
    if float(torch.rand((), generator=g)) >= probability:
        return n_q
    return int(torch.randint(1, n_q + 1, (), generator=g))


def quantizer_metrics(q, prefix: str = "") -> dict[str, torch.Tensor]:
    """Perplexity and share of live codes of each codebook, as logged metrics."""
    out = {"commit": q.commit_loss.detach()}
    for i, (p, u) in enumerate(zip(q.perplexity, q.usage)):
        out[f"{prefix}perplexity{i}"], out[f"{prefix}usage{i}"] = p.detach(), u.detach()
    return out


class VQVAE(ConvFamily):
    name = "vqvae"
    description = "VQ-VAE: one grid of discrete codes, optionally residual (n_q codebooks)"

    def __init__(self, dims: int, in_channels: int, cfg: ModelConfig, options=None, n_labels: int = 0):
        super().__init__(dims, in_channels, cfg, options, n_labels)
        shape = conv_shape(cfg)
        self.encoder = Encoder(dims, in_channels, cfg.latent_dim, **shape)
        self.decoder = Decoder(dims, cfg.latent_dim, in_channels, **shape)
        self.quantizer: ResidualQuantizer = quantizer_from_config(cfg, cfg.n_q)
        self.quantizer_dropout = cfg.quantizer_dropout
        self.hop = self.encoder.hop

    def latents(self) -> dict[str, LatentSpec]:
        return {"codes": LatentSpec(self.quantizer.n_q, self.hop, self.quantizer.sizes)}

    def code_counts(self) -> dict[str, list[torch.Tensor]]:
        return {"codes": self.quantizer.code_counts()}

    def forward(self, x, labels=None, *, step: int = 0, recon=None) -> TrainStep:
        n_q = dropout_n_q(step, self.quantizer.n_q, self.quantizer_dropout) if self.training else None
        z = self.encoder(x)
        q = self.quantizer(flatten_grid(z), n_q)
        x_hat = self.decoder(unflatten_grid(q.z_q, z).to(z.dtype))
        parts = recon(x_hat.float(), x)
        loss = parts["recon"] + q.commit_loss + q.codebook_loss
        return TrainStep(x_hat, loss, {**parts, **quantizer_metrics(q)})

    @torch.no_grad()
    def encode(self, x, labels=None, n_q=None) -> dict[str, torch.Tensor]:
        z = self.encoder(x)
        return {"codes": unflatten_grid(self.quantizer(flatten_grid(z), n_q).codes, z)}

    @torch.no_grad()
    def decode(self, latents, labels=None) -> torch.Tensor:
        v = self.quantizer.decode(latents["codes"].movedim(1, -1))  # (B, *G, D)
        return self.decoder(v.movedim(-1, 1))

    def describe(self) -> dict:
        return {"latent_dim": self.quantizer.levels[0].dim}
