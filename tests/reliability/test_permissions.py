"""Files one may not read and folders one may not write to, through the real CLI: one line naming the file,
exit 1, nothing written. The tests run as root in CI, whom permissions do not stop: the CLI then runs without
the two capabilities that let root past them (dropped from its bounding set before it starts), so it meets
permissions as any user does."""

from __future__ import annotations

import ctypes
import json
import os
import shutil

import numpy as np
import pytest
from conftest import SAMPLES, run_cli

PR_CAPBSET_DROP = 24
CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH = 1, 2
SPEECH = sorted((SAMPLES / "speech").glob("*.wav"))[0]


def _as_a_plain_user() -> None:
    """In the child before exec: give up root's way past file permissions (no-op for other users)."""
    if os.geteuid() == 0:
        libc = ctypes.CDLL(None, use_errno=True)
        for cap in (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH):
            if libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
                raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP) failed")


def restricted(folder, *args):
    """``vqtok ARGS`` run in ``folder`` as a user whom file permissions stop."""
    return run_cli(*args, check=False, cwd=folder, preexec_fn=_as_a_plain_user)


def refused(proc, line: str) -> None:
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == f"vqtok: error: {line}", proc.stderr
    assert "Traceback" not in proc.stderr and not proc.stdout


@pytest.fixture
def folders(tmp_path, audio_model):
    """``tmp_path`` with a good recording, an unreadable one, an unreadable copy of the model, a folder one
    may only read, and a folder of one good and one unreadable recording."""
    shutil.copy(SPEECH, tmp_path / "good.wav")
    for name in ("secret.wav", "batch/secret.wav", "batch/good.wav"):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        shutil.copy(SPEECH, tmp_path / name)
    shutil.copy(audio_model, tmp_path / "locked.safetensors")
    (tmp_path / "read-only").mkdir()
    for path in ("secret.wav", "batch/secret.wav", "locked.safetensors"):
        (tmp_path / path).chmod(0)
    (tmp_path / "read-only").chmod(0o555)
    yield tmp_path
    for path in ("secret.wav", "batch/secret.wav", "locked.safetensors", "read-only"):
        (tmp_path / path).chmod(0o755)


def test_unreadable_inputs_are_one_line_naming_the_file(folders, audio_model):
    refused(
        restricted(folders, "encode", "--model", audio_model, "secret.wav", "-o", "codes.npz"),
        "secret.wav: Permission denied",
    )
    refused(
        restricted(folders, "encode", "--model", "locked.safetensors", "good.wav", "-o", "codes.npz"),
        "locked.safetensors: cannot read it (permission denied)",
    )
    assert not (folders / "codes.npz").exists()


def test_a_folder_one_may_not_write_to_is_one_line_naming_the_output(folders, audio_model):
    run_cli("encode", "--model", audio_model, "good.wav", "-o", "codes.npz", cwd=folders)
    for args, output in [
        (["encode", "--model", audio_model, "good.wav"], "read-only/codes.npz"),
        (["decode", "--model", audio_model, "codes.npz"], "read-only/back.wav"),
        (["train", "--modality", "audio", "--data", SAMPLES / "speech", "--steps", 1], "read-only/model.safetensors"),
    ]:
        refused(
            restricted(folders, *args, "-o", output),
            f"{output}: cannot write there (Permission denied); nothing was written",
        )
    assert list((folders / "read-only").iterdir()) == []


def test_an_unreadable_file_in_a_folder_is_skipped_and_the_rest_encoded(folders, audio_model):
    proc = restricted(folders, "encode", "--model", audio_model, "batch", "-o", "codes")
    assert proc.returncode == 1 and "skipped: batch/secret.wav: Permission denied" in proc.stderr
    assert "1 failed" in proc.stderr and "Traceback" not in proc.stderr
    assert sorted(p.name for p in (folders / "codes").iterdir()) == ["good.npy", "manifest.jsonl"]
    assert np.load(folders / "codes" / "good.npy").ndim == 2
    status = {r["output"]: r["status"] for r in map(json.loads, (folders / "codes" / "manifest.jsonl").open())}
    assert status == {"good.npy": "ok", "secret.npy": "failed"}
