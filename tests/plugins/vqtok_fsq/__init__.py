"""A third-party model family as a test: ``fsq``, finite scalar quantization (Mentzer et al. 2023,
"Finite Scalar Quantization: VQ-VAE Made Simple", arXiv:2309.15505).

The encoder ends in one channel per entry of ``fsq.levels``; each channel is squashed to its number of
levels and rounded, with a straight-through gradient. The codebook is implicit, every combination of
levels, ``prod(levels)`` codes: nothing to learn, no commitment loss, no dead codes to restart. A
position's code combines its per-channel level indices ``d_i`` in mixed radix::

    code = d_0 + L_0 * (d_1 + L_1 * (d_2 + ...))      0 <= code < prod(levels)

``model.latent_dim``, ``codebook_size``, ``n_q`` and the VQ options do not apply. It imports only the
public plugin API: ``vqtok.hookimpl``, ``vqtok.errors``, ``vqtok.models.base`` and ``vqtok.nn.conv``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

import vqtok
from vqtok.errors import UsageError
from vqtok.models.base import ConvFamily, LatentSpec, TrainStep
from vqtok.nn.conv import Decoder, Encoder, conv_shape


@dataclass
class FSQOptions:
    """The recipe's ``[fsq]`` table (``fsq.levels=[8,5,5,5]`` on the command line)."""

    levels: list[int] = field(default_factory=lambda: [8, 5, 5, 5])  # levels per channel

    def __post_init__(self):
        if not self.levels or min(self.levels) < 2:
            raise UsageError(f"fsq.levels must be a non-empty list of integers >= 2, got {self.levels}")
        if math.prod(self.levels) > 2**31 - 1:
            raise UsageError(f"fsq.levels {self.levels}: more than 2**31 - 1 codes")


def code_metrics(codes: torch.Tensor, size: int) -> dict[str, torch.Tensor]:
    """Perplexity of the batch's code histogram and the share of the codebook it uses."""
    p = torch.bincount(codes.flatten(), minlength=size).float()
    p = p / p.sum()
    return {"perplexity0": torch.special.entr(p).sum().exp(), "usage0": (p > 0).float().mean()}


class FSQ(ConvFamily):  # ConvFamily: one encoder, one decoder; chunk contexts from their reach
    name = "fsq"
    description = "FSQ: finite scalar quantization, an implicit codebook of prod(fsq.levels) codes"
    config_class = FSQOptions

    def __init__(self, dims, in_channels, model, options=None, n_labels=0):
        super().__init__(dims, in_channels, model, options, n_labels)
        self.levels = list((options or FSQOptions()).levels)
        shape = conv_shape(model)
        self.encoder = Encoder(dims, in_channels, len(self.levels), **shape)
        self.decoder = Decoder(dims, len(self.levels), in_channels, **shape)
        self.hop = self.encoder.hop
        # derived from the options, so not stored in the model file (persistent=False)
        self.register_buffer("radix", torch.tensor(self.levels), persistent=False)
        self.register_buffer(
            "place", torch.tensor([math.prod(self.levels[:i]) for i in range(len(self.levels))]), persistent=False
        )

    def _per_channel(self, t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        return t.view(1, -1, *[1] * (like.dim() - 2))  # (d,) -> (1, d, 1, ...), broadcasts over (B, d, *G)

    def quantize(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(B, d, *G)`` -> values on the level grid in [-1, 1] (straight-through), codes ``(B, 1, *G)``."""
        levels = self._per_channel(self.radix, z)
        half_width = levels // 2
        half = (levels - 1) * (1 - 1e-3) / 2
        offset = (levels % 2 == 0) * 0.5  # an even count has no middle level: shift the grid half a step
        bounded = torch.tanh(z.float() + torch.tan(offset / half)) * half - offset  # the paper's bound()
        q = bounded.round().detach()
        digits = q.long() + half_width  # per-channel level index, 0..L-1
        codes = (digits * self._per_channel(self.place, z)).sum(1, keepdim=True)
        return (bounded + (q - bounded).detach()) / half_width, codes  # straight-through rounding

    def values(self, codes: torch.Tensor) -> torch.Tensor:
        """Codes ``(B, 1, *G)`` -> the decoder's input ``(B, d, *G)``, as :meth:`quantize` gives it."""
        levels = self._per_channel(self.radix, codes)
        digits = codes // self._per_channel(self.place, codes) % levels
        return (digits - levels // 2) / (levels // 2)

    # ---- the Family contract ----
    def latents(self) -> dict[str, LatentSpec]:
        return {"codes": LatentSpec(1, self.hop, [math.prod(self.levels)])}

    def forward(self, x, labels=None, *, step=0, recon=None) -> TrainStep:
        values, codes = self.quantize(self.encoder(x))
        x_hat = self.decoder(values)
        parts = recon(x_hat.float(), x)
        return TrainStep(x_hat, parts["recon"], {**parts, **code_metrics(codes, math.prod(self.levels))})

    @torch.no_grad()
    def encode(self, x, labels=None, n_q=None) -> dict[str, torch.Tensor]:
        if n_q is not None:
            raise UsageError(f"--n-q applies to residual VQ models; this is an {self.name} model")
        return {"codes": self.quantize(self.encoder(x))[1]}

    @torch.no_grad()
    def decode(self, latents, labels=None) -> torch.Tensor:
        return self.decoder(self.values(latents["codes"]))

    def describe(self) -> dict:
        return {"latent_dim": len(self.levels), "levels": self.levels}


@vqtok.hookimpl
def vqtok_families():
    return [FSQ]
