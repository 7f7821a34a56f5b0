"""Media files that are readable but hold what a tokenizer must not silently encode, through the real CLI."""

from __future__ import annotations

import io
import struct

import numpy as np
import pytest
import soundfile as sf
from conftest import run_cli
from PIL import Image

import vqtok
from vqtok.errors import VqtokError


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_nan_or_inf_samples_are_refused_naming_where(audio_model, tmp_path, value):
    x = np.zeros(8000, dtype=np.float32)
    x[5000] = value
    sf.write(tmp_path / "bad.wav", x, 8000, subtype="FLOAT")
    out = tmp_path / "codes.npz"
    proc = run_cli("encode", "--model", audio_model, tmp_path / "bad.wav", "-o", out, check=False)
    assert proc.returncode == 1 and "holds NaN or Inf samples (the first at frame 5000)" in proc.stderr
    assert "Traceback" not in proc.stderr and not out.exists()


def test_float_samples_beyond_full_scale_are_encoded_as_they_are(audio_model, tmp_path):
    x = 2.5 * np.sin(np.arange(8000, dtype=np.float32) * 0.05)  # a float WAV may go past +-1
    sf.write(tmp_path / "hot.wav", x, 8000, subtype="FLOAT")
    run_cli("encode", "--model", audio_model, tmp_path / "hot.wav", "-o", tmp_path / "codes.npz")
    run_cli("decode", "--model", audio_model, tmp_path / "codes.npz", "-o", tmp_path / "back.wav")
    assert sf.info(tmp_path / "back.wav").frames >= 8000


# ---- edge cases of real files, in-process (the CLI's one-line errors are VqtokError's text) ----------


def tone(path, rate: int, frames: int, channels: int = 1) -> None:
    rng = np.random.default_rng(frames)
    sf.write(path, rng.uniform(-0.5, 0.5, (frames, channels)).astype(np.float32), rate)


@pytest.mark.parametrize(
    "rate, frames, channels", [(8000, 1, 1), (8000, 8000, 8), (192000, 96000, 1), (1000, 500, 1), (8000, 2, 2)]
)
def test_odd_but_valid_audio_encodes_and_keeps_its_length(audio_model, tmp_path, rate, frames, channels):
    tone(tmp_path / "a.wav", rate, frames, channels)
    tok = vqtok.load(audio_model)
    cf = tok.encode_file(tmp_path / "a.wav")
    expected = tok.modality.length(tmp_path / "a.wav", tok.config.options)  # at the model's rate
    assert cf.meta["size"] == [expected] and expected >= 1
    assert tok.decode(cf).shape[-1] == expected


def test_audio_that_cannot_be_read_is_named(audio_model, tmp_path):
    tok = vqtok.load(audio_model)
    (tmp_path / "empty.wav").write_bytes(b"")
    tone(tmp_path / "one.wav", 8000, 1)
    data = (tmp_path / "one.wav").read_bytes()
    at = data.index(b"data")
    (tmp_path / "huge.wav").write_bytes(data[: at + 4] + struct.pack("<I", 0xFFFFFFF0) + data[at + 8 :])
    sf.write(tmp_path / "none.wav", np.zeros(0, dtype=np.float32), 8000)  # a header and no samples
    for name, message in [
        ("empty.wav", "empty file"),
        ("huge.wav", "truncated: its 'data' chunk declares"),
        ("none.wav", "none.wav: holds no audio samples"),
    ]:
        with pytest.raises(VqtokError, match=message):
            tok.encode_file(tmp_path / name)


def test_odd_but_valid_images_encode_at_their_own_size(image_model, tmp_path):
    tok = vqtok.load(image_model)
    Image.new("RGB", (1, 1), (10, 20, 30)).save(tmp_path / "dot.png")
    Image.new("CMYK", (16, 12), (10, 20, 30, 40)).save(tmp_path / "cmyk.jpg")
    frames = [Image.new("RGB", (20, 10), (i * 60, 0, 0)) for i in range(3)]
    frames[0].save(tmp_path / "anim.gif", save_all=True, append_images=frames[1:])  # the first frame is read
    for name, size in [("dot.png", [1, 1]), ("cmyk.jpg", [12, 16]), ("anim.gif", [10, 20])]:
        cf = tok.encode_file(tmp_path / name)
        assert cf.meta["size"] == size and list(tok.decode(cf).shape[1:]) == size


def test_a_truncated_jpeg_is_refused_and_damaged_entropy_data_decodes_as_viewers_show_it(image_model, tmp_path):
    tok = vqtok.load(image_model)
    buffer = io.BytesIO()
    Image.fromarray(np.random.default_rng(1).integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(buffer, "JPEG")
    data = buffer.getvalue()
    (tmp_path / "cut.jpg").write_bytes(data[: len(data) // 2])
    with pytest.raises(VqtokError, match="cut.jpg"):
        tok.encode_file(tmp_path / "cut.jpg")
    damaged = bytearray(data)
    damaged[len(data) // 2 : len(data) // 2 + 40] = bytes(40)  # inside the scan: libjpeg decodes on
    (tmp_path / "damaged.jpg").write_bytes(bytes(damaged))
    assert tok.encode_file(tmp_path / "damaged.jpg").meta["size"] == [64, 64]
