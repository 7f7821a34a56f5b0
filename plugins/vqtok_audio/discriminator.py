"""A multi-resolution STFT discriminator (as EnCodec's) for the optional adversarial loss.

Each sub-discriminator looks at the complex STFT of the waveform at one resolution (the same windows
as the reconstruction loss, about 32, 64 and 128 ms), real and imaginary parts as two channels, so it
sees phase as well as magnitude, through 2-D convolutions over (time, frequency): kernels 3 x 9, the
frequency axis halved three times, the time axis dilated 1, 2, 4.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from .loss import WINDOW_SECONDS
from .spectral import fft_size

SLOPE = 0.2  # leaky ReLU


class STFTDiscriminator(nn.Module):
    """``(B, 1, T)`` -> its feature maps ``(B, C, frames, F')`` and logits ``(B, 1, frames, F'')``."""

    def __init__(self, n_fft: int, width: int):
        super().__init__()
        self.n_fft, c = n_fft, width
        self.register_buffer("window", torch.hann_window(n_fft), persistent=False)
        self.convs = nn.ModuleList([nn.Conv2d(2, c, (3, 9), padding=(1, 4))])
        for dilation in (1, 2, 4):
            self.convs.append(nn.Conv2d(c, c, (3, 9), stride=(1, 2), dilation=(dilation, 1), padding=(dilation, 4)))
        self.convs.append(nn.Conv2d(c, c, (3, 3), padding=(1, 1)))
        self.logits = nn.Conv2d(c, 1, (3, 3), padding=(1, 1))

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        spec = torch.stft(
            x.reshape(-1, x.shape[-1]).float(),
            self.n_fft,
            self.n_fft // 4,
            window=self.window,
            pad_mode="constant",
            return_complex=True,
        )  # (B, F, frames)
        h = torch.view_as_real(spec).permute(0, 3, 2, 1).to(x.dtype)  # (B, 2, frames, F)
        features = []
        for conv in self.convs:
            h = F.leaky_relu(conv(h), SLOPE)
            features.append(h)
        return [*features, self.logits(h)]


class MultiResolutionSTFTDiscriminator(nn.Module):
    """One :class:`STFTDiscriminator` per window of the reconstruction loss, at ``sample_rate``."""

    def __init__(self, sample_rate: int, width: int):
        super().__init__()
        self.discriminators = nn.ModuleList(STFTDiscriminator(fft_size(sample_rate, s), width) for s in WINDOW_SECONDS)

    def forward(self, x: torch.Tensor) -> list[list[torch.Tensor]]:
        """``(B, 1, T)`` -> per resolution, its feature maps and (last) logits."""
        return [d(x) for d in self.discriminators]
