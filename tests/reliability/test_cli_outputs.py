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


def test_asking_for_cuda_without_a_gpu_is_a_usage_error(audio_model, tmp_path):
    from conftest import cli_env

    no_gpu = cli_env({"CUDA_VISIBLE_DEVICES": ""})  # as on a machine without one, GPU or not
    for args in (
        ["encode", "--model", audio_model, WAV, "-o", tmp_path / "c.npy"],
        ["decode", "--model", audio_model, tmp_path / "c.npy", "-o", tmp_path / "back.wav"],
    ):
        if args[0] == "decode":
            run_cli("encode", "--model", audio_model, WAV, "-o", tmp_path / "c.npy")
        proc = run_cli(*args, "--device", "cuda", env=no_gpu, check=False)
        assert proc.returncode == 2 and "--device cuda: CUDA is not available" in proc.stderr, proc.stderr
    assert not (tmp_path / "back.wav").exists()
