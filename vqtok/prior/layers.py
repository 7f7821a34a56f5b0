"""Gated causal convolution layers over code maps: the 2-D PixelCNN layer (vertical and horizontal
stacks) and the 1-D dilated causal layer, each with a whole-map ``forward`` and a one-position
``step`` that reads only the cached inputs it needs.

Causality. Codes are generated in raster order (row by row, left to right; for 1-D, in time). A
layer's kernels only cover the current position and earlier ones: the vertical kernel spans rows
``i - r .. i`` (all columns ``j - r .. j + r``), the horizontal one columns ``j - r .. j`` of row
``i``, the 1-D one times ``t - (k - 1) d .. t``. That is the PixelCNN's mask B. The network's first
layer sees its input shifted one row down (vertical) and one position right (horizontal, 1-D), which
is the same as mask A: the position itself is excluded, so nothing a layer outputs at a position
depends on the code there or any later one. The vertical stack feeds the horizontal one at the same
position (it only holds rows above), and never the other way round: no blind spot.

Gates, as in van den Oord et al. (2016): ``tanh(W_f * x + V_f c) * sigmoid(W_g * x + V_g c)`` with
``c`` the condition map (a class embedding, or embedded top codes), broadcast over the grid.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


def gate(features: torch.Tensor, dim: int = 1) -> torch.Tensor:
    """``(.., 2C, ..)`` -> ``(.., C, ..)``: tanh of the first half times sigmoid of the second."""
    f, g = features.chunk(2, dim=dim)
    return torch.tanh(f) * torch.sigmoid(g)


class ConditionProjection(nn.Module):
    """``V c``: the condition map ``(B, E, *G or 1s)`` -> ``(B, 2C, *same)``; zero without a condition."""

    def __init__(self, dims: int, cond_channels: int, out_channels: int):
        super().__init__()
        conv = nn.Conv1d if dims == 1 else nn.Conv2d
        self.proj = conv(cond_channels, out_channels, 1) if cond_channels else None

    def forward(self, cond: torch.Tensor | None) -> torch.Tensor | float:
        return self.proj(cond) if self.proj is not None and cond is not None else 0.0


class GatedLayer2d(nn.Module):
    """One gated PixelCNN layer: ``(v, h)`` ``(B, C, H, W)`` each -> ``(v', h')`` of the same shape."""

    def __init__(self, channels: int, kernel: int, cond_channels: int = 0):
        super().__init__()
        c, r = channels, kernel // 2
        self.radius = r
        self.vertical = nn.Conv2d(c, 2 * c, (r + 1, 2 * r + 1))  # rows i-r..i, columns j-r..j+r
        self.horizontal = nn.Conv2d(c, 2 * c, (1, r + 1))  # row i, columns j-r..j
        self.v_to_h = nn.Conv2d(2 * c, 2 * c, 1)
        self.h_out = nn.Conv2d(c, c, 1)
        self.cond_v = ConditionProjection(2, cond_channels, 2 * c)
        self.cond_h = ConditionProjection(2, cond_channels, 2 * c)

    def forward(self, v, h, cond=None):
        r = self.radius
        v_feat = self.vertical(F.pad(v, (r, r, r, 0))) + self.cond_v(cond)
        h_feat = self.horizontal(F.pad(h, (r, 0))) + self.v_to_h(v_feat) + self.cond_h(cond)
        return gate(v_feat), h + self.h_out(gate(h_feat))

    # ---- streaming: a whole row of the vertical stack, then one position of the horizontal ----
    def vertical_row(self, rows: torch.Tensor, cond_row) -> tuple[torch.Tensor, torch.Tensor]:
        """``rows`` ``(n, C, r + 1, W + 2r)``: this layer's vertical input at rows ``i-r..i``, padded
        -> (vertical output row ``(n, C, 1, W)``, the row's horizontal bias ``(n, 2C, W)``)."""
        v_feat = self.vertical(rows) + self.cond_v(cond_row)
        h_bias = self.v_to_h(v_feat) + self.cond_h(cond_row)
        return gate(v_feat), h_bias[:, :, 0]

    def horizontal_step(self, window: torch.Tensor, here: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        """``window`` ``(n, C, r + 1)``: the horizontal input at columns ``j-r..j``; ``here`` ``(n, C)``
        its value at ``j``; ``bias`` ``(n, 2C)`` from :meth:`vertical_row` -> output at ``j`` ``(n, C)``."""
        w = self.horizontal.weight.flatten(1)  # (2C, C * (r+1))
        h_feat = torch.addmm(self.horizontal.bias + bias, window.flatten(1), w.t())
        return here + F.linear(gate(h_feat), self.h_out.weight[:, :, 0, 0], self.h_out.bias)


class GatedLayer1d(nn.Module):
    """One gated causal layer, dilation ``d``: ``(B, C, T)`` -> ``(B, C, T)``."""

    def __init__(self, channels: int, kernel: int, dilation: int, cond_channels: int = 0):
        super().__init__()
        c = channels
        self.reach = (kernel - 1) * dilation  # how far back it looks
        self.dilation = dilation
        self.conv = nn.Conv1d(c, 2 * c, kernel, dilation=dilation)
        self.out = nn.Conv1d(c, c, 1)
        self.cond = ConditionProjection(1, cond_channels, 2 * c)

    def forward(self, x, cond=None):
        feat = self.conv(F.pad(x, (self.reach, 0))) + self.cond(cond)
        return x + self.out(gate(feat))

    def step(self, window: torch.Tensor, here: torch.Tensor, cond_bias) -> torch.Tensor:
        """``window`` ``(n, C, k)``: the input at ``t - (k-1) d, .., t``; ``here`` ``(n, C)`` its value at
        ``t``; ``cond_bias`` ``(n, 2C)`` or 0 -> the output at ``t`` ``(n, C)``."""
        feat = torch.addmm(self.conv.bias + cond_bias, window.flatten(1), self.conv.weight.flatten(1).t())
        return here + F.linear(gate(feat), self.out.weight[:, :, 0], self.out.bias)
