"""vqtok.nn.conv: the polyphase upsampling equals the transposed convolution it replaces."""

import pytest
import torch
from torch.nn import functional as F

from vqtok.nn.conv import Downsample, Upsample


def transposed_reference(up: Upsample, x: torch.Tensor) -> torch.Tensor:
    """What ``ConvTranspose`` with the same weights gives, trimmed by ``s // 2`` in front to ``L * s``."""
    conv = F.conv_transpose1d if up.dims == 1 else F.conv_transpose2d
    y = conv(x, up.conv.weight, up.conv.bias, stride=up.stride)
    for axis, n in enumerate(x.shape[2:], start=2):
        y = y.narrow(axis, up.stride // 2, n * up.stride)
    return y


@pytest.mark.parametrize("dims,size", [(1, (9,)), (2, (5, 3))])
@pytest.mark.parametrize("stride", [1, 2, 3, 4, 5])
def test_upsample_equals_the_transposed_convolution(dims, size, stride):
    torch.manual_seed(stride)
    up = Upsample(dims, 6, 4, stride).double()
    x = torch.randn(2, 6, *size, dtype=torch.double, requires_grad=True)
    y, ref = up(x), transposed_reference(up, x)
    assert y.shape == (2, 4, *[n * stride for n in size])
    torch.testing.assert_close(y, ref)
    grad = torch.randn_like(ref)  # and so do the gradients, for the input and the weights
    got = torch.autograd.grad(y, (x, up.conv.weight, up.conv.bias), grad)
    want = torch.autograd.grad(ref, (x, up.conv.weight, up.conv.bias), grad)
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w)


@pytest.mark.parametrize("stride", [2, 5])
def test_down_then_up_restores_the_length(stride):
    x = torch.randn(1, 3, 40)
    y = Upsample(1, 8, 3, stride)(Downsample(1, 3, 8, stride)(x))
    assert y.shape == x.shape
