"""Chunked encoding/decoding of long 1-D signals equals doing it all at once; receptive-field bounds."""

from __future__ import annotations

import itertools

import pytest
import torch
from torch.nn import functional as F

from vqtok.codec.chunking import decode_stream, encode_stream
from vqtok.config import ModelConfig
from vqtok.models.vqvae import VQVAE


def make_model(n_q: int = 1, channels: int = 1, strides=(2, 4), res_blocks: int = 1) -> VQVAE:
    """A small random 1-D VQ-VAE whose codebook is fitted (k-means) to its own encoder outputs, so that
    the codes are varied, then put in eval mode."""
    torch.manual_seed(0)
    cfg = ModelConfig(
        strides=list(strides),
        width=8,
        max_width=16,
        latent_dim=8,
        codebook_size=16,
        res_blocks=res_blocks,
        n_q=n_q,
    )
    model = VQVAE(1, channels, cfg)
    with torch.no_grad():
        x = signal(64 * model.hop, channels, seed=99)[None]
        model.train()(x, recon=lambda a, b: {"recon": (a - b).square().mean()})
    return model.eval()


def signal(length: int, channels: int = 1, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    t = torch.arange(length, dtype=torch.float32)
    tone = torch.sin(t[None] * torch.rand(channels, 1, generator=g) * 0.3)
    return tone + 0.5 * torch.randn(channels, length, generator=g)


def whole_codes(model: VQVAE, x: torch.Tensor) -> torch.Tensor:
    padded = F.pad(x, (0, -x.shape[-1] % model.hop))
    return model.encode(padded[None])["codes"][0]


def split(x: torch.Tensor, sizes) -> list[torch.Tensor]:
    """Cut ``x`` along time into pieces of the given sizes (cycled) until it is used up."""
    pieces, start = [], 0
    for size in itertools.cycle(sizes):
        if start >= x.shape[-1]:
            return pieces
        pieces.append(x[:, start : start + size])
        start += size


@pytest.fixture(scope="module")
def model() -> VQVAE:
    return make_model()


@pytest.fixture(scope="module")
def model_rvq() -> VQVAE:
    return make_model(n_q=2, channels=2)


def encoder_fn(model):
    return lambda w: model.encode(w[None])["codes"][0]


def decoder_fn(model):
    return lambda c: model.decode({"codes": c[None]})[0]


# ---- receptive radius --------------------------------------------------------------------------------


@pytest.fixture(scope="module", params=[(2, 4), (3, 5), (4, 4, 2)], ids=str)
def any_model(request) -> VQVAE:
    return make_model(strides=request.param, res_blocks=2)


def test_encoder_context_bounds_what_a_code_sees(any_model):
    model = any_model
    hop, ctx = model.hop, model.encoder_context
    assert ctx >= 1
    length, j = (2 * ctx + 12) * hop, ctx + 5
    x = signal(length)[None]
    lo, hi = (j - ctx) * hop, (j + 1 + ctx) * hop  # what code j may depend on
    changed = x.clone()
    noise = 3 * torch.randn(1, 1, length, generator=torch.Generator().manual_seed(1))
    changed[..., :lo] = noise[..., :lo]
    changed[..., hi:] = noise[..., hi:]
    with torch.no_grad():
        z, z_changed = model.encoder(x), model.encoder(changed)
    assert torch.allclose(z[..., j], z_changed[..., j], atol=1e-5)
    # the perturbation is real: codes near it do change
    assert not torch.allclose(z[..., 0], z_changed[..., 0], atol=1e-3)
    assert not torch.allclose(z[..., -1], z_changed[..., -1], atol=1e-3)


def test_decoder_context_bounds_what_a_sample_sees(any_model):
    model = any_model
    hop, ctx = model.hop, model.decoder_context
    assert ctx >= 1
    n, j = 2 * ctx + 12, ctx + 5
    g = torch.Generator().manual_seed(2)
    z = torch.randn(1, 8, n, generator=g)
    changed = z.clone()
    changed[..., : j - ctx] = 3 * torch.randn(1, 8, j - ctx, generator=g)
    changed[..., j + ctx + 1 :] = 3 * torch.randn(1, 8, n - (j + ctx + 1), generator=g)
    with torch.no_grad():
        y, y_changed = model.decoder(z), model.decoder(changed)
    own = slice(j * hop, (j + 1) * hop)
    assert torch.allclose(y[..., own], y_changed[..., own], atol=1e-5)
    assert not torch.allclose(y[..., :hop], y_changed[..., :hop], atol=1e-3)


# ---- encode_stream -----------------------------------------------------------------------------------


@pytest.mark.parametrize("length", [1003, 8 * 40, 3])
@pytest.mark.parametrize(
    "sizes, chunk",
    [
        ([1, 2, 1, 3], 4),  # tiny pieces, chunk far smaller than the signal
        ([1, 7, 50, 2, 200, 13], 5),
        ([10_000], 3),  # one piece holding everything
        ([64], 1),  # one code per chunk
        ([37], 1000),  # a chunk longer than the signal
    ],
)
def test_encode_stream_equals_whole_encoding(model, length, sizes, chunk):
    x = signal(length, seed=length)
    expected = whole_codes(model, x)
    got = encode_stream(split(x, sizes), encoder_fn(model), model.hop, model.encoder_context, chunk)
    assert got.shape == expected.shape == (1, -(-length // model.hop))
    assert torch.equal(got, expected)


def test_encode_stream_codes_are_varied_and_seams_would_show(model):
    """Guards the test above: the codes are not all alike, and too little context changes them."""
    x = signal(1003, seed=5)
    expected = whole_codes(model, x)
    assert len(torch.unique(expected)) >= 4
    no_context = encode_stream(split(x, [64]), encoder_fn(model), model.hop, 0, 4)
    assert no_context.shape == expected.shape
    assert not torch.equal(no_context, expected)


def test_encode_stream_residual_multichannel(model_rvq):
    x = signal(777, channels=2, seed=7)
    expected = whole_codes(model_rvq, x)
    assert expected.shape == (2, -(-777 // 8))
    got = encode_stream(split(x, [5, 33, 1]), encoder_fn(model_rvq), model_rvq.hop, model_rvq.encoder_context, 6)
    assert torch.equal(got, expected)


def test_encode_stream_of_nothing_is_empty(model):
    got = encode_stream(iter([]), encoder_fn(model), model.hop, model.encoder_context, 4)
    assert got.numel() == 0


# ---- decode_stream ----------------------------------------------------------------------------------


@pytest.mark.parametrize("chunk", [1, 3, 7, 500])
def test_decode_stream_pieces_join_to_whole_decode(model, chunk):
    codes = whole_codes(model, signal(1000, seed=8))
    expected = decoder_fn(model)(codes)
    pieces = list(decode_stream(codes, decoder_fn(model), model.hop, model.decoder_context, chunk))
    assert all(0 < p.shape[-1] <= chunk * model.hop for p in pieces)
    got = torch.cat(pieces, dim=-1)
    assert got.shape == expected.shape == (1, codes.shape[-1] * model.hop)
    assert torch.allclose(got, expected, atol=1e-5)


@pytest.mark.parametrize("length", [1000, 993, 1, 8 * 125, 5000])
def test_decode_stream_respects_length(model, length):
    codes = whole_codes(model, signal(1000, seed=9))  # 125 codes -> 1000 samples
    expected = decoder_fn(model)(codes)
    pieces = list(decode_stream(codes, decoder_fn(model), model.hop, model.decoder_context, 4, length=length))
    got = torch.cat(pieces, dim=-1)
    want = min(length, 1000)
    assert got.shape == (1, want)
    assert torch.allclose(got, expected[:, :want], atol=1e-5)


def test_decode_stream_residual_multichannel(model_rvq):
    codes = whole_codes(model_rvq, signal(640, channels=2, seed=10))
    expected = decoder_fn(model_rvq)(codes)
    got = torch.cat(list(decode_stream(codes, decoder_fn(model_rvq), 8, model_rvq.decoder_context, 2)), dim=-1)
    assert got.shape == expected.shape == (2, 640)
    assert torch.allclose(got, expected, atol=1e-5)


def test_round_trip_through_both_streams(model):
    x = signal(2001, seed=11)
    codes = encode_stream(split(x, [100, 3]), encoder_fn(model), model.hop, model.encoder_context, 9)
    y = torch.cat(
        list(decode_stream(codes, decoder_fn(model), model.hop, model.decoder_context, 9, length=x.shape[-1])), dim=-1
    )
    assert y.shape == x.shape
    assert torch.allclose(y, decoder_fn(model)(whole_codes(model, x))[:, : x.shape[-1]], atol=1e-5)
