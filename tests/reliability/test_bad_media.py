"""Media files that are readable but hold what a tokenizer must not silently encode, through the real CLI."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from conftest import run_cli


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
