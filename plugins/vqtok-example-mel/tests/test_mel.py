"""The example plugin, tested the way a plugin author tests theirs: with vqtok.testing."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import soundfile as sf
from PIL import Image
from vqtok_example_mel import MelModality, MelOptions

import vqtok
from vqtok.config import SAMPLES_DIR
from vqtok.files.codes import parse_codes
from vqtok.testing import check_modality

SPEECH = SAMPLES_DIR / "speech"  # 8 kHz recordings shipped with vqtok
TINY = [
    "model.width=8",
    "model.max_width=16",
    "model.latent_dim=8",
    "model.codebook_size=32",
    "model.res_blocks=1",
    "train.batch_size=4",
    "train.workers=0",
    "train.warmup_steps=0",
    "train.lr=1e-3",
    "mel.n_mels=32",
    "mel.frames=32",
]


def test_mel_keeps_the_vqtok_contract(tmp_path):
    check_modality(MelModality(), data=SPEECH, options={"n_mels": 32, "frames": 32}, workdir=tmp_path)


def test_train_encode_decode_and_the_bitrate_through_the_cli(vqtok_cli, tmp_path):
    model = tmp_path / "mel.safetensors"
    vqtok_cli("train", "--modality", "mel", "--data", SPEECH, "-o", model, "--steps", 12, "train.log_every=3", *TINY)
    log = [json.loads(line) for line in model.with_name("mel.metrics.jsonl").read_text().splitlines()]
    assert log[-1]["recon"] < log[0]["recon"]  # it learns
    info = json.loads(vqtok_cli("info", "--json", model).stdout)
    # 100 frames/s at hop 4 = 25 positions/s, times ceil(32 / 4) = 8 across the mel bands, 5 bits each
    assert math.isclose(info["bitrate_bps"], 100 / 4 * 8 * 5)
    assert info["decode"]["facts"] == {"spectrogram": "32 mel bands, 100 frames/s of 8000 Hz sound (n_fft 512)"}
    wav = SPEECH / "agent-alreadyon.wav"
    vqtok_cli("encode", "--model", model, wav, "-o", tmp_path / "codes.npz")
    vqtok_cli("decode", "--model", model, tmp_path / "codes.npz", "-o", tmp_path / "back.wav")  # another format
    assert len(sf.read(tmp_path / "back.wav")[0]) > 0.9 * len(sf.read(wav)[0])
    tok = vqtok.load(model)  # the other two formats through the library, as the CLI writes them
    codes = parse_codes((tmp_path / "codes.npz").read_bytes(), "codes.npz")
    for suffix in (".npy", ".png"):
        tok.decode_to_file(codes, tmp_path / f"back{suffix}")
    spectrogram = np.load(tmp_path / "back.npy")
    frames = MelModality().load(wav, MelOptions(n_mels=32)).shape[-1]  # decode gives the input's size back
    assert spectrogram.shape == (32, frames) and -1 <= spectrogram.min() and spectrogram.max() <= 1
    assert Image.open(tmp_path / "back.png").size == (frames, 32)
    refused = vqtok_cli("decode", "--model", model, tmp_path / "codes.npz", "-o", tmp_path / "back.flac", check=False)
    assert refused.returncode == 2 and ".npy, .png, .wav" in refused.stderr
    assert not Path(tmp_path / "back.flac").exists()


def test_a_corrupt_recording_is_one_line_naming_it(vqtok_cli, tmp_path):
    bad = tmp_path / "data"
    bad.mkdir()
    (bad / "broken.wav").write_bytes(b"RIFF not really")
    proc = vqtok_cli(
        "train", "--modality", "mel", "--data", bad, "-o", tmp_path / "m.safetensors", "--steps", 1, *TINY, check=False
    )
    assert proc.returncode == 1 and "broken.wav: not readable as sound" in proc.stderr.strip().splitlines()[-1]
