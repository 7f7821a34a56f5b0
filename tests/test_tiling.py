"""Tiled encoding/decoding of images (vqtok/codec/tiling.py) equals doing the whole image at once."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

import vqtok
import vqtok.codec.long_inputs
from vqtok.codec.tiling import decode_tiled, encode_tiled, spans
from vqtok.config import ModelConfig
from vqtok.models.vqvae import VQVAE
from vqtok.models.vqvae2 import VQVAE2, VQVAE2Options


def fitted(model):
    """``model`` with codebooks fitted (k-means on the first batch) to its own encodings, in eval mode."""
    with torch.no_grad():
        model.train()(image(48, 64, seed=99)[None], recon=lambda a, b: {"recon": (a - b).square().mean()})
    return model.eval()


def image(h: int, w: int, seed: int = 0) -> torch.Tensor:
    """``(3, h, w)``: smooth stripes and noise, so that codes vary over the image."""
    g = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.arange(h, dtype=torch.float32), torch.arange(w, dtype=torch.float32), indexing="ij")
    stripes = torch.sin(xx[None] * torch.rand(3, 1, 1, generator=g) * 0.4 + yy[None] * 0.1)
    return stripes + 0.3 * torch.randn(3, h, w, generator=g)


CONFIG = dict(strides=[2, 2], width=8, max_width=16, latent_dim=8, codebook_size=32, res_blocks=1)


@pytest.fixture(scope="module")
def model() -> VQVAE:
    torch.manual_seed(0)
    return fitted(VQVAE(2, 3, ModelConfig(**CONFIG, n_q=2)))


@pytest.fixture(scope="module")
def two_level() -> VQVAE2:
    torch.manual_seed(1)
    return fitted(VQVAE2(2, 3, ModelConfig(**CONFIG), VQVAE2Options(top_strides=[2])))


def whole(model, x):
    return model.encode(x[None])


def test_spans_cover_the_axis_once_with_clipped_windows():
    assert spans(10, 4, 2) == [(0, 0, 4, 6), (2, 4, 8, 10), (6, 8, 10, 10)]
    assert spans(3, 8, 5) == [(0, 0, 3, 3)]


@pytest.mark.parametrize("h, w, tile", [(40, 56, 3), (36, 36, 4), (8, 100, 5), (64, 24, 100)])
def test_tiled_codes_equal_whole_codes(model, h, w, tile):
    x = image(h, w)
    expected = whole(model, x)["codes"][0]
    codes = encode_tiled(x, lambda win: model.encode(win[None])["codes"][0], model.hop, model.encoder_context, tile)
    assert codes.shape == expected.shape and torch.equal(codes, expected)
    assert len(codes.unique()) > 8  # varied codes: a seam would show


def test_too_little_context_would_show_seams(model):
    x = image(48, 48)
    codes = encode_tiled(x, lambda win: model.encode(win[None])["codes"][0], model.hop, 0, 3)
    assert not torch.equal(codes, whole(model, x)["codes"][0])


@pytest.mark.parametrize("tile", [2, 5])
def test_tiled_decode_equals_whole_decode(model, tile):
    codes = whole(model, image(40, 48))["codes"]
    expected = model.decode({"codes": codes})[0]
    out = decode_tiled(
        codes[0], lambda part: model.decode({"codes": part[None]})[0], model.hop, model.decoder_context, tile
    )
    assert out.shape == expected.shape and torch.allclose(out, expected, atol=1e-5)


def test_two_level_latents_tile_at_both_rates(two_level):
    x = image(48, 64)
    expected = whole(two_level, x)
    hop, ctx = two_level.hop, two_level.encoder_context
    latents = encode_tiled(x, lambda win: {k: v[0] for k, v in two_level.encode(win[None]).items()}, hop, ctx, 2)
    assert set(latents) == set(expected)
    for k in expected:
        assert torch.equal(latents[k], expected[k][0]), k
    out = decode_tiled(
        latents,
        lambda part: two_level.decode({k: v[None] for k, v in part.items()})[0],
        hop,
        two_level.decoder_context,
        2,
    )
    assert torch.allclose(out, two_level.decode(expected)[0], atol=1e-5)


def test_a_model_file_encodes_and_decodes_an_image_file_in_tiles(image_model, tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (70, 90, 3), dtype=np.uint8)).save(tmp_path / "p.png")
    tok = vqtok.load(image_model)
    x = tok.modality.load(tmp_path / "p.png", tok.config.options)
    latents = tok.encode_tensor(x)  # the whole image at once
    whole_codes, whole_image = tok.to_file_arrays(latents), tok.decode_tensor(latents)[:, :70, :90]
    monkeypatch.setattr(vqtok.codec.long_inputs, "TILE_PIXELS", 2 * tok.hop)  # many tiles
    cf = tok.encode_file(tmp_path / "p.png")
    assert cf.meta["size"] == [70, 90]
    for k, v in whole_codes.items():
        assert np.array_equal(cf.arrays[k], v)
    tok.decode_to_file(cf, tmp_path / "back.png")
    back = tok.modality.load(tmp_path / "back.png", tok.config.options)
    assert back.shape == (3, 70, 90)
    assert (back - whole_image.clamp(-1, 1)).abs().max() <= 1.01 / 127.5  # 8-bit rounding
