"""Where the CLI writes: never over its input, never codes into a media file name."""

from __future__ import annotations

import shutil

from conftest import SAMPLES, run_cli

WAV = SAMPLES / "speech" / "demo-thanks.wav"


def test_encode_never_writes_codes_over_the_recording_or_into_a_media_name(audio_model, tmp_path):
    take = tmp_path / "take.wav"
    shutil.copy(WAV, take)
    before = take.read_bytes()
    for out in (take, tmp_path / "codes.png", tmp_path / "codes"):
        proc = run_cli("encode", "--model", audio_model, take, "-o", out, check=False)
        assert proc.returncode == 2 and "codes are written to .npy or .npz files" in proc.stderr, proc.stderr
        assert "Traceback" not in proc.stderr
    assert take.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["take.wav"]
