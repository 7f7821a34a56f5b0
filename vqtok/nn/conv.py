"""Strided convolutional encoders and decoders for 1-D signals ``(B, C, T)`` and 2-D maps ``(B, C, H, W)``.

One implementation serves both: ``dims`` picks ``Conv1d`` or ``Conv2d``. A stride ``s`` maps a length
``L`` (a multiple of ``s``) to exactly ``L / s`` and back, for any ``s``, so the total stride (the hop,
or the image downsampling factor) is ``prod(strides)``. All layers are convolutions, so the models are
fully convolutional: inputs of any size that is a multiple of the hop work.
"""

from __future__ import annotations

import math

from torch import nn
from torch.nn import functional as F


def conv_class(dims: int, transposed: bool = False) -> type:
    table = {(1, False): nn.Conv1d, (2, False): nn.Conv2d, (1, True): nn.ConvTranspose1d, (2, True): nn.ConvTranspose2d}
    return table[(dims, transposed)]


def same_conv(dims: int, c_in: int, c_out: int, kernel: int) -> nn.Module:
    """A stride-1 convolution that keeps the size (odd ``kernel``)."""
    return conv_class(dims)(c_in, c_out, kernel, padding=kernel // 2)


def _pad_for(dims: int, left: int, right: int) -> tuple[int, ...]:
    return (left, right) * dims


class Downsample(nn.Module):
    """``(B, C_in, *S)`` -> ``(B, C_out, *S/s)``: kernel ``2s``, padded ``s`` in total per axis."""

    def __init__(self, dims: int, c_in: int, c_out: int, stride: int):
        super().__init__()
        self.pad = _pad_for(dims, stride // 2, stride - stride // 2)
        self.conv = conv_class(dims)(c_in, c_out, 2 * stride, stride=stride)

    def forward(self, x):
        return self.conv(F.pad(x, self.pad))


class Upsample(nn.Module):
    """``(B, C_in, *S)`` -> ``(B, C_out, *S*s)``: a transposed convolution with kernel ``2s`` and stride
    ``s`` (each axis ``L -> (L + 1) * s``), trimmed by ``s // 2`` in front to ``L * s``.

    For 1-D signals it runs in its polyphase form, the same numbers about 1.2x faster on CPU for a whole
    audio decoder (``ConvTranspose1d`` is its slowest layer there; for 2-D maps ``ConvTranspose2d`` is the
    faster, so it stays): output ``t = m*s + r`` (block ``m``, phase ``r``) is ``x[m-1] w[s+r] + x[m] w[r]``,
    so one stride-1 convolution with kernel 2 over the input padded by one gives all ``s`` phases at once,
    as ``s * C_out`` channels over ``L + 1`` blocks, which are then interleaved. The weight keeps
    ``ConvTranspose1d``'s ``(C_in, C_out, 2s)`` layout.
    """

    def __init__(self, dims: int, c_in: int, c_out: int, stride: int):
        super().__init__()
        self.dims, self.stride = dims, stride
        self.conv = conv_class(dims, transposed=True)(c_in, c_out, 2 * stride, stride=stride)  # holds the weights

    def polyphase(self, x):
        """``(B, C_in, L)`` -> ``(B, C_out, (L + 1) * s)``, as ``self.conv(x)``."""
        s, (c_in, c_out) = self.stride, self.conv.weight.shape[:2]
        w = self.conv.weight.view(c_in, c_out, 2, s)  # kernel index j*s + r -> (tap j, phase r)
        w = w.permute(3, 1, 0, 2).flip(-1).reshape(s * c_out, c_in, 2)  # channel r*C_out + c; tap 1 - j
        y = F.conv1d(x, w, self.conv.bias.repeat(s), padding=1)  # (B, s * C_out, L + 1)
        return y.view(x.shape[0], s, c_out, -1).permute(0, 2, 3, 1).reshape(x.shape[0], c_out, -1)

    def forward(self, x):
        y = self.polyphase(x) if self.dims == 1 else self.conv(x)
        for axis, n in enumerate(x.shape[2:], start=2):
            y = y.narrow(axis, self.stride // 2, n * self.stride)
        return y


class ResidualBlock(nn.Module):
    """``x + conv1x1(act(conv3(act(x))))``, shape-preserving."""

    def __init__(self, dims: int, channels: int, hidden: int | None = None):
        super().__init__()
        hidden = hidden or channels
        self.body = nn.Sequential(
            nn.ELU(), same_conv(dims, channels, hidden, 3), nn.ELU(), same_conv(dims, hidden, channels, 1)
        )

    def forward(self, x):
        return x + self.body(x)


def widths(width: int, max_width: int, n: int) -> list[int]:
    """Channel count at each of the ``n + 1`` resolutions: ``width``, doubling after every stride, capped at
    ``max_width``."""
    return [min(width * 2**i, max_width) for i in range(n + 1)]


def conv_shape(model) -> dict:
    """The keyword arguments of :class:`Encoder` and :class:`Decoder` that a ``[model]`` table
    (:class:`vqtok.config.ModelConfig`) sets: ``width``, ``max_width``, ``strides``, ``res_blocks``."""
    return dict(width=model.width, max_width=model.max_width, strides=model.strides, res_blocks=model.res_blocks)


class Encoder(nn.Module):
    """``(B, in_channels, *S)`` -> ``(B, out_channels, *S/hop)`` with ``hop = prod(strides)``."""

    COMPILABLE = True  # train.compile compiles it (vqtok.speed)

    def __init__(self, dims, in_channels, out_channels, width, max_width, strides, res_blocks):
        super().__init__()
        w = widths(width, max_width, len(strides))
        stem = 7 if dims == 1 else 3
        layers = [same_conv(dims, in_channels, w[0], stem)]
        for i, s in enumerate(strides):
            layers += [ResidualBlock(dims, w[i]), nn.ELU(), Downsample(dims, w[i], w[i + 1], s)]
        layers += [ResidualBlock(dims, w[-1]) for _ in range(res_blocks)]
        layers += [nn.ELU(), same_conv(dims, w[-1], out_channels, 3)]
        self.net = nn.Sequential(*layers)
        self.hop = math.prod(strides)

    def forward(self, x):
        return self.net(x)


class Decoder(nn.Module):
    """``(B, in_channels, *S)`` -> ``(B, out_channels, *S*hop)``, the mirror of :class:`Encoder`."""

    COMPILABLE = True

    def __init__(self, dims, in_channels, out_channels, width, max_width, strides, res_blocks):
        super().__init__()
        w = widths(width, max_width, len(strides))
        stem = 7 if dims == 1 else 3
        layers = [same_conv(dims, in_channels, w[-1], 3)]
        layers += [ResidualBlock(dims, w[-1]) for _ in range(res_blocks)]
        for i, s in reversed(list(enumerate(strides))):
            layers += [nn.ELU(), Upsample(dims, w[i + 1], w[i], s), ResidualBlock(dims, w[i])]
        layers += [nn.ELU(), same_conv(dims, w[0], out_channels, stem)]
        self.net = nn.Sequential(*layers)
        self.hop = math.prod(strides)

    def forward(self, z):
        return self.net(z)


def receptive_radius(net: nn.Module, upsampling: bool = False) -> float:
    """How far (in input elements, per side) an output element can see, an upper bound.

    Walks the convolutions in order. For a decoder (``upsampling=True``) the answer is in input
    (code) units: a layer running after an upsampling by ``u`` adds its reach divided by ``u``.
    """
    radius, scale = 0.0, 1.0  # scale: input elements per element at the current layer
    for m in net.modules():
        if isinstance(m, (nn.ConvTranspose1d, nn.ConvTranspose2d)):
            k, s = m.kernel_size[0], m.stride[0]
            radius += math.ceil(k / s) * scale
            scale /= s
        elif isinstance(m, (nn.Conv1d, nn.Conv2d)):
            k, s, d = m.kernel_size[0], m.stride[0], m.dilation[0]
            radius += (k - 1) * d * scale
            if not upsampling:
                scale *= s
    return radius
