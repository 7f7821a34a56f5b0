"""A full disk: one clean line, the previous file intact, no temporary file left."""

from __future__ import annotations

import errno
import subprocess

import numpy as np
import pytest
import soundfile as sf
from conftest import SAMPLES, TINY_IMAGE, run_cli

from vqtok.errors import VqtokError
from vqtok.files.atomic import atomic_path


@pytest.mark.parametrize(
    "error",
    [
        OSError(errno.ENOSPC, "No space left on device"),
        RuntimeError(
            "Error while serializing: IoError(Os { code: 28, kind: "
            'StorageFull, message: "No space left on device" }) (os error 28)'
        ),
    ],
)
def test_a_write_that_fills_the_disk_is_one_clear_error_and_leaves_the_old_file(tmp_path, error):
    target = tmp_path / "model.safetensors"
    target.write_bytes(b"the previous model")

    with pytest.raises(VqtokError, match="model.safetensors: no space left on the device; nothing was written"):
        with atomic_path(target) as tmp:
            tmp.write_bytes(b"half of the new")
            raise error
    assert target.read_bytes() == b"the previous model"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.safetensors"]


@pytest.fixture
def tiny_disk(tmp_path):
    """A 96 KB tmpfs (needs root, as on the CI machines); skipped where it cannot be mounted, the injected
    errors above hold the same promise there."""
    mount = tmp_path / "disk"
    mount.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=96k", "tmpfs", str(mount)], capture_output=True).returncode:
        pytest.skip("cannot mount a tmpfs here")
    yield mount
    subprocess.run(["umount", str(mount)], check=True)


def test_decode_and_train_onto_a_full_disk(tiny_disk, audio_model, tmp_path):
    long = tmp_path / "long.wav"
    sf.write(long, np.random.default_rng(0).uniform(-0.3, 0.3, 8000 * 30).astype(np.float32), 8000)
    run_cli("encode", "--model", audio_model, long, "-o", tmp_path / "codes.npz")
    previous = tiny_disk / "back.wav"
    previous.write_bytes(b"an older decode")
    proc = run_cli("decode", "--model", audio_model, tmp_path / "codes.npz", "-o", previous, check=False)
    assert proc.returncode == 1 and "back.wav: no space left on the device" in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr and previous.read_bytes() == b"an older decode"
    trained = run_cli(
        "train",
        "--modality",
        "image",
        "--data",
        SAMPLES / "images",
        "--steps",
        2,
        *TINY_IMAGE,
        "model.width=32",
        "-o",
        tiny_disk / "m.safetensors",
        check=False,
    )
    assert trained.returncode == 1 and "no space left on the device" in trained.stderr, trained.stderr
    assert "Traceback" not in trained.stderr
    assert sorted(p.name for p in tiny_disk.iterdir() if ".partial-" in p.name) == []
