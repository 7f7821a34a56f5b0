"""VQ-VAE-2: shapes, codes, decode(encode) = reconstruction, refusals, learning, chunked = whole."""

from __future__ import annotations

import pytest
import torch
from torch.nn import functional as F

from vqtok.config import ModelConfig
from vqtok.errors import UsageError, VqtokError
from vqtok.models.vqvae2 import VQVAE2, VQVAE2Options


def mse(a, b):
    return {"recon": F.mse_loss(a, b)}


def make(dims: int, in_channels: int, top_strides=(2,), **model) -> VQVAE2:
    cfg = ModelConfig(
        arch="vqvae2",
        **{**dict(width=8, max_width=32, res_blocks=1, strides=[2, 2], latent_dim=8, codebook_size=32), **model},
    )
    return VQVAE2(
        dims=dims, in_channels=in_channels, model=cfg, options=VQVAE2Options(top_strides=list(top_strides)), n_labels=0
    )


def initialized(model: VQVAE2, x: torch.Tensor) -> VQVAE2:
    """One training forward (k-means init of both codebooks on ``x``), then eval mode."""
    model.train()
    model(x, recon=mse)
    return model.eval()


@pytest.mark.parametrize("dims, shape, top_strides", [(1, (2, 1, 96), (4,)), (2, (2, 3, 32, 16), (2,))])
def test_shapes_and_codes(dims, shape, top_strides):
    torch.manual_seed(0)
    model = make(dims, shape[1], top_strides)
    bottom_hop, hop = 4, 4 * top_strides[0]
    assert model.hop == hop
    specs = model.latents()
    assert (specs["top"].hop, specs["bottom"].hop) == (hop, bottom_hop)
    assert specs["top"].codebook_sizes == specs["bottom"].codebook_sizes == [32]
    assert model.describe() == {"latent_dim": 8, "top_strides": list(top_strides)}
    x = torch.randn(shape)
    step = model(x, recon=mse)
    assert step.x_hat.shape == x.shape and step.loss.dim() == 0
    assert torch.equal(step.metrics["recon"], F.mse_loss(step.x_hat, x))
    for k in ("commit", "top_perplexity0", "top_usage0", "bottom_perplexity0", "bottom_usage0"):
        assert step.metrics[k].dim() == 0 and not step.metrics[k].requires_grad
    assert not any(k.startswith("perplexity") for k in step.metrics)
    codes = model.eval().encode(x)
    b, s = shape[0], shape[2:]
    assert codes["top"].shape == (b, 1, *(n // hop for n in s))
    assert codes["bottom"].shape == (b, 1, *(n // bottom_hop for n in s))
    for c in codes.values():
        assert c.dtype == torch.int64 and int(c.min()) >= 0 and int(c.max()) < 32
    assert model.decode(codes).shape == x.shape


def test_decode_of_encode_is_the_reconstruction():
    torch.manual_seed(0)
    x = torch.randn(2, 3, 16, 16)
    model = initialized(make(2, 3), x)
    decoded = model.decode(model.encode(x))
    assert torch.allclose(decoded, model.reconstruct(x))
    with torch.no_grad():
        assert torch.allclose(decoded, model(x, recon=mse).x_hat, atol=1e-5)


def test_refusals():
    torch.manual_seed(0)
    model = make(2, 3).eval()
    codes = model.encode(torch.randn(1, 3, 16, 16))
    for top, bottom in [
        (codes["top"], codes["bottom"][..., :2]),  # bottom too small on one axis
        (codes["top"][..., :1, :], codes["bottom"]),  # top too small
        (codes["top"], codes["bottom"].repeat(2, 1, 1, 1)),
    ]:  # batch sizes differ
        with pytest.raises(VqtokError, match="do not fit"):
            model.decode({"top": top, "bottom": bottom})
    with pytest.raises(UsageError, match="--n-q"):
        model.encode(torch.randn(1, 3, 16, 16), n_q=1)
    with pytest.raises(UsageError, match="model.n_q"):
        make(2, 3, n_q=2)
    for bad in ([], [0], [2, -1], [1.5]):
        with pytest.raises(UsageError, match="top_strides"):
            VQVAE2Options(top_strides=bad)


def test_training_reduces_the_loss():
    torch.manual_seed(0)
    # Smooth random images: 4x4 noise upsampled to 16x16.
    x = F.interpolate(torch.randn(4, 3, 4, 4), size=(16, 16), mode="bilinear", align_corners=False)
    model = make(2, 3)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for step in range(100):
        out = model(x, step=step, recon=mse)
        opt.zero_grad()
        out.loss.backward()
        opt.step()
        losses.append(float(out.loss.detach()))
    assert sum(losses[-5:]) < 0.3 * sum(losses[:5])
    error = F.mse_loss(model.eval().reconstruct(x), x)
    assert error < 0.5 * x.var()


def chunked(model: VQVAE2, x: torch.Tensor, chunk: int, enc_ctx: int, dec_ctx: int):
    """Encode, then decode, ``x`` ``(1, 1, T)`` chunk by chunk, each with the given context on each side
    (in top positions, clipped at the ends), as :mod:`vqtok.codec.chunking` does."""
    n, f, hop = x.shape[-1] // model.hop, model.top_factor, model.hop
    top, bottom, out = [], [], []
    for a in range(0, n, chunk):
        b = min(a + chunk, n)
        lo, hi = max(a - enc_ctx, 0), min(b + enc_ctx, n)
        c = model.encode(x[..., lo * hop : hi * hop])
        top.append(c["top"][..., a - lo : b - lo])
        bottom.append(c["bottom"][..., (a - lo) * f : (b - lo) * f])
    codes = {"top": torch.cat(top, -1), "bottom": torch.cat(bottom, -1)}
    whole = model.encode(x)  # decoding is checked on the true codes, whatever encoding did
    for a in range(0, n, chunk):
        b = min(a + chunk, n)
        lo, hi = max(a - dec_ctx, 0), min(b + dec_ctx, n)
        y = model.decode({"top": whole["top"][..., lo:hi], "bottom": whole["bottom"][..., lo * f : hi * f]})
        out.append(y[..., (a - lo) * hop : (b - lo) * hop])
    return codes, torch.cat(out, -1)


@pytest.mark.parametrize("strides, top_strides", [([2, 2], [2]), ([2], [2, 2])])
def test_chunked_with_context_equals_whole(strides, top_strides):
    torch.manual_seed(0)
    model = make(1, 1, top_strides, strides=strides)
    x = torch.randn(1, 1, 120 * model.hop).cumsum(-1) / 10  # a wandering signal
    initialized(model, x)
    enc_ctx, dec_ctx = model.encoder_context, model.decoder_context
    assert 0 < enc_ctx < 40 and 0 < dec_ctx < 40
    whole_codes, whole = model.encode(x), model.reconstruct(x)
    assert len(whole_codes["top"].unique()) > 4 and len(whole_codes["bottom"].unique()) > 4
    codes, y = chunked(model, x, 6, enc_ctx, dec_ctx)
    assert torch.equal(codes["top"], whole_codes["top"]) and torch.equal(codes["bottom"], whole_codes["bottom"])
    assert torch.allclose(y, whole, atol=1e-5)
    # Without context the seams show: the check above can fail.
    codes, y = chunked(model, x, 6, 0, 0)
    assert not torch.equal(codes["bottom"], whole_codes["bottom"])
    assert (y - whole).abs().max() > 1e-3
