"""Encoding a folder: bad files are named and skipped, the good ones all written, odd names handled."""

from __future__ import annotations

import os
import shutil

import numpy as np
import soundfile as sf
from conftest import SAMPLES, run_cli

WAV = SAMPLES / "speech" / "demo-thanks.wav"


def test_a_folder_with_bad_files_and_odd_names(audio_model, tmp_path):
    tree = tmp_path / "in"
    (tree / "a").mkdir(parents=True)
    good = ["a/with space.wav", "a/new\nline.wav", "plain.wav"]
    for name in good:
        shutil.copy(WAV, tree / name)
    shutil.copy(WAV, os.fsdecode(os.fsencode(str(tree / "a")) + b"/\xff\xfe.wav"))  # not UTF-8
    (tree / "a" / "text.wav").write_text("not a sound\n")
    x = np.zeros(800, np.float32)
    x[10] = np.nan
    sf.write(tree / "nan.wav", x, 8000, subtype="FLOAT")
    (tree / "a" / "loop").symlink_to("..")  # a folder link back into the tree
    outside = tmp_path / "outside"
    outside.mkdir()
    shutil.copy(WAV, outside / "far.wav")
    (tree / "elsewhere").symlink_to(outside)  # a folder link out of it: not followed
    out = tmp_path / "out"

    proc = run_cli("encode", "--model", audio_model, tree, "-o", out, check=False)
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    skipped = [line for line in proc.stderr.splitlines() if line.startswith("skipped: ")]
    assert len(skipped) == 2 and any("text.wav" in s for s in skipped) and any("nan.wav" in s for s in skipped)
    assert "wrote 4 code file(s)" in proc.stderr and "2 failed" in proc.stderr
    written = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.npy"))
    assert written == sorted(["a/with space.npy", "a/new\nline.npy", "plain.npy", os.fsdecode(b"a/\xff\xfe.npy")])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in", "out", "outside"]
    assert sorted(p.name for p in outside.iterdir()) == ["far.wav"]  # nothing written outside -o
