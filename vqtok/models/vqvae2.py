"""VQ-VAE-2: two levels of discrete codes, a coarse top grid and a finer bottom grid, 1-D or 2-D.

As in Razavi et al. (2019) and rosinality/vq-vae-2-pytorch::

    x --bottom encoder--> h_b --top encoder--> z_t --quantize--> q_t
    [h_b, top decoder(q_t)] --1x1 projection--> z_b --quantize--> q_b
    [upsample(q_t), q_b] --decoder--> x_hat

The bottom encoder downsamples by ``prod(model.strides)``, the top encoder by ``prod(top_strides)``
more (for audio: two temporal rates). Each level has one codebook of ``model.codebook_size`` entries
of dimension ``model.latent_dim``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import nn

from ..config import ModelConfig
from ..errors import UsageError, VqtokError
from ..nn.conv import Decoder, Encoder, Upsample, conv_shape, receptive_radius, same_conv, widths
from .base import Family, LatentSpec, TrainStep
from .layout import flatten_grid, unflatten_grid
from .quantize import Quantized, ResidualQuantizer, quantizer_from_config
from .vqvae import quantizer_metrics


@dataclass
class VQVAE2Options:
    """The recipe's ``[vqvae2]`` table."""

    top_strides: list[int] = field(default_factory=lambda: [2])  # extra downsampling of top over bottom

    def __post_init__(self):
        s = self.top_strides
        if not isinstance(s, (list, tuple)) or not s or any(type(v) is not int or v < 1 for v in s):
            raise UsageError(f"vqvae2.top_strides must be a non-empty list of integers >= 1, not {s!r}")
        self.top_strides = list(s)


class VQVAE2(Family):
    name = "vqvae2"
    description = "VQ-VAE-2: two grids of discrete codes, top (coarse) and bottom (fine)"
    config_class = VQVAE2Options

    def __init__(
        self, dims: int, in_channels: int, model: ModelConfig, options: VQVAE2Options | None = None, n_labels: int = 0
    ):
        super().__init__(dims, in_channels, model, options, n_labels)
        cfg = model
        if cfg.n_q != 1:
            raise UsageError("model.n_q applies to vqvae (residual VQ); vqvae2 has one codebook per level")
        options = options or VQVAE2Options()
        self.top_strides = list(options.top_strides)
        d, hidden = cfg.latent_dim, widths(cfg.width, cfg.max_width, len(cfg.strides))[-1]
        bottom = conv_shape(cfg)
        top = {**bottom, "width": hidden, "strides": self.top_strides}
        self.bottom_encoder = Encoder(dims, in_channels, hidden, **bottom)  # x -> h_b
        self.top_encoder = Encoder(dims, hidden, d, **top)  # h_b -> z_t
        self.top_decoder = Decoder(dims, d, d, **top)  # q_t -> h_b's grid, for the bottom quantizer
        self.project = same_conv(dims, hidden + d, d, 1)  # [h_b, top decoded] -> z_b
        layers: list[nn.Module] = []
        for s in reversed(self.top_strides):  # q_t -> the bottom grid, for the decoder
            layers += [Upsample(dims, d, d, s), nn.ELU()]
        self.upsample_top = nn.Sequential(*layers[:-1])
        self.decoder = Decoder(dims, 2 * d, in_channels, **bottom)
        self.top_quantizer: ResidualQuantizer = quantizer_from_config(cfg, 1)
        self.bottom_quantizer: ResidualQuantizer = quantizer_from_config(cfg, 1)
        self.bottom_hop = self.bottom_encoder.hop
        self.top_factor = math.prod(self.top_strides)  # bottom positions per top position, per axis
        self.hop = self.bottom_hop * self.top_factor

    def latents(self) -> dict[str, LatentSpec]:
        k = [self.top_quantizer.sizes[0]]
        return {"top": LatentSpec(1, self.hop, k), "bottom": LatentSpec(1, self.bottom_hop, k)}

    def code_counts(self) -> dict[str, list[torch.Tensor]]:
        return {"top": self.top_quantizer.code_counts(), "bottom": self.bottom_quantizer.code_counts()}

    def _quantize(self, x: torch.Tensor) -> tuple[Quantized, torch.Tensor, Quantized, torch.Tensor]:
        """``x`` ``(B, C, *S)`` -> the top quantizer's output and its grid ``(B, D, *S/hop)``, then the
        bottom's and its grid ``(B, D, *S/bottom_hop)`` (the grids hold the straight-through vectors)."""
        h_b = self.bottom_encoder(x)
        z_t = self.top_encoder(h_b)
        q_t = self.top_quantizer(flatten_grid(z_t))
        top = unflatten_grid(q_t.z_q, z_t).to(z_t.dtype)
        z_b = self.project(torch.cat([h_b, self.top_decoder(top)], dim=1))
        q_b = self.bottom_quantizer(flatten_grid(z_b))
        return q_t, top, q_b, unflatten_grid(q_b.z_q, z_b).to(z_b.dtype)

    def _decode_grids(self, top: torch.Tensor, bottom: torch.Tensor) -> torch.Tensor:
        """Code vectors ``(B, D, *G)`` and ``(B, D, *G * top_factor)`` -> ``(B, C, *G * hop)``."""
        return self.decoder(torch.cat([self.upsample_top(top), bottom], dim=1))

    def forward(self, x, labels=None, *, step: int = 0, recon=None) -> TrainStep:
        q_t, top, q_b, bottom = self._quantize(x)
        x_hat = self._decode_grids(top, bottom)
        parts = recon(x_hat.float(), x)
        loss = parts["recon"] + q_t.commit_loss + q_t.codebook_loss + q_b.commit_loss + q_b.codebook_loss
        top_m, bottom_m = quantizer_metrics(q_t, "top_"), quantizer_metrics(q_b, "bottom_")
        return TrainStep(x_hat, loss, {**parts, **top_m, **bottom_m, "commit": top_m["commit"] + bottom_m["commit"]})

    @torch.no_grad()
    def encode(self, x, labels=None, n_q=None) -> dict[str, torch.Tensor]:
        """``(B, C, *S)`` -> ``{"top": (B, 1, *S/hop), "bottom": (B, 1, *S/bottom_hop)}`` int64."""
        if n_q is not None:
            raise UsageError("--n-q applies to residual VQ models; this is a vqvae2 model")
        q_t, top, q_b, bottom = self._quantize(x)
        return {"top": unflatten_grid(q_t.codes, top), "bottom": unflatten_grid(q_b.codes, bottom)}

    @torch.no_grad()
    def decode(self, latents, labels=None) -> torch.Tensor:
        top, bottom = latents["top"], latents["bottom"]
        fits = (
            top.dim() == bottom.dim() == self.dims + 2
            and top.shape[:2] == bottom.shape[:2]
            and top.shape[1] == 1
            and all(b == t * self.top_factor for t, b in zip(top.shape[2:], bottom.shape[2:]))
        )
        if not fits:
            raise VqtokError(
                f"the top codes {tuple(top.shape)} and bottom codes {tuple(bottom.shape)} do not fit "
                f"together: each bottom axis must be {self.top_factor} x the top's"
            )
        return self._decode_grids(_lookup(self.top_quantizer, top), _lookup(self.bottom_quantizer, bottom))

    def describe(self) -> dict:
        return {"latent_dim": self.top_quantizer.levels[0].dim, "top_strides": list(self.top_strides)}

    @property
    def encoder_context(self) -> int:
        # In input samples, summed along the longest chain: a bottom code sees h_b through the projection,
        # and the decoded top, which sees top codes, which see h_b, which sees x.
        bh = self.bottom_hop
        radius = (
            receptive_radius(self.project) * bh
            + receptive_radius(self.top_decoder, upsampling=True) * self.hop
            + receptive_radius(self.top_encoder) * bh
            + receptive_radius(self.bottom_encoder)
        )
        return math.ceil(radius / self.hop) + 1

    @property
    def decoder_context(self) -> int:
        # In top positions: the decoder sees bottom positions, each of which sees top codes (upsampled).
        radius = receptive_radius(self.decoder, upsampling=True) / self.top_factor + receptive_radius(
            self.upsample_top, upsampling=True
        )
        return math.ceil(radius) + 1


def _lookup(quantizer: ResidualQuantizer, codes: torch.Tensor) -> torch.Tensor:
    """Codes ``(B, 1, *G)`` -> code vectors ``(B, D, *G)``."""
    return quantizer.decode(codes.movedim(1, -1)).movedim(-1, 1)
