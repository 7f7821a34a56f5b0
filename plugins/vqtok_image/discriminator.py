"""A patch discriminator (as pix2pix's and VQGAN's) for the optional adversarial loss: strided 2-D
convolutions whose logits judge overlapping patches of the image rather than the image as a whole."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

SLOPE = 0.2  # leaky ReLU


class PatchDiscriminator(nn.Module):
    """``(B, C, H, W)`` -> one judgement: feature maps at 1/2 and 1/4 of the size, then logits ``(B, 1, H/4, W/4)``."""

    def __init__(self, in_channels: int, width: int):
        super().__init__()
        c = width
        self.convs = nn.ModuleList(
            [
                nn.Conv2d(in_channels, c, 4, stride=2, padding=1),
                nn.Conv2d(c, 2 * c, 4, stride=2, padding=1),
                nn.Conv2d(2 * c, 4 * c, 3, padding=1),
            ]
        )
        self.logits = nn.Conv2d(4 * c, 1, 3, padding=1)

    def forward(self, x: torch.Tensor) -> list[list[torch.Tensor]]:
        h, features = x, []
        for conv in self.convs:
            h = F.leaky_relu(conv(h), SLOPE)
            features.append(h)
        return [[*features, self.logits(h)]]
