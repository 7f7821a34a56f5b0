"""Encoding a corpus into a folder: split over processes and torchrun ranks, a manifest, resumable."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from conftest import SAMPLES, SUBPROCESS_TIMEOUT, cli_env, run_cli

import vqtok
from vqtok.errors import UsageError
from vqtok.files.codes import code_bytes

CLIPS = sorted((SAMPLES / "speech").glob("*.wav"))


def _corpus(folder: Path, copies: int = 1) -> list[Path]:
    """The shipped speech clips, ``copies`` times each, in two sub-folders."""
    made = []
    for k in range(copies):
        for i, clip in enumerate(CLIPS):
            dst = folder / ("a" if i % 2 else "b") / f"{clip.stem}-{k}.wav"
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(clip, dst)
            made.append(dst)
    return made


def _manifest(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]


def _expected_bytes(model: Path, clip: Path) -> bytes:
    return code_bytes(vqtok.load(model).encode_file(clip), as_npz=False)


def test_jobs_split_the_files_and_a_rerun_encodes_only_what_is_missing_or_changed(audio_model, tmp_path):
    src, out = tmp_path / "in", tmp_path / "out"
    clips = _corpus(src)
    (src / "a" / "broken.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEnot really")

    first = run_cli("encode", "--model", audio_model, src, "-o", out, "--jobs", "2", check=False)
    assert first.returncode == 1 and "1 failed" in first.stderr and "Traceback" not in first.stderr
    records = {r["output"]: r for r in _manifest(out)}
    assert len(_manifest(out)) == len(records) == len(clips) + 1  # each file once, by one process
    assert records["a/broken.npy"]["status"] == "failed" and "broken.wav" in records["a/broken.npy"]["error"]
    assert not (out / "a" / "broken.npy").exists()
    for clip in clips:
        name = clip.relative_to(src).with_suffix(".npy").as_posix()
        expected = vqtok.load(audio_model).encode_file(clip)
        assert records[name]["status"] == "ok"
        assert records[name]["shapes"] == {k: list(v.shape) for k, v in expected.arrays.items()}
        assert (out / name).read_bytes() == code_bytes(expected, as_npz=False)

    changed, lost = clips[0], clips[1]
    shutil.copy(CLIPS[-1] if changed.name != CLIPS[-1].name else CLIPS[0], changed)
    os.utime(changed, ns=(time.time_ns(), time.time_ns() + 10**9))
    (out / lost.relative_to(src).with_suffix(".npy")).unlink()
    (src / "a" / "broken.wav").unlink()  # the bad file is gone: nothing left to fail
    again = run_cli("encode", "--model", audio_model, src, "-o", out)
    assert f"{len(clips) - 2} of {len(clips)} file(s) already encoded" in again.stderr
    assert (out / changed.relative_to(src).with_suffix(".npy")).read_bytes() == _expected_bytes(audio_model, changed)
    assert (out / lost.relative_to(src).with_suffix(".npy")).is_file()
    # compacted to one line per output (the removed file's failure kept), then a line for each of the two redone
    assert len(_manifest(out)) == len(clips) + 1 + 2


def test_kill_9_mid_run_then_the_same_command_finishes_without_losing_or_repeating(audio_model, tmp_path):
    src, out = tmp_path / "in", tmp_path / "out"
    clips = _corpus(src, copies=12)
    args = [
        sys.executable,
        "-m",
        "vqtok",
        "encode",
        "--model",
        str(audio_model),
        str(src),
        "-o",
        str(out),
        "--jobs",
        "2",
    ]
    proc = subprocess.Popen(args, env=cli_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    manifest = out / "manifest.jsonl"
    deadline = time.monotonic() + SUBPROCESS_TIMEOUT
    while not (manifest.exists() and manifest.read_bytes().count(b"\n") >= 10) and time.monotonic() < deadline:
        assert proc.poll() is None, proc.stderr.read().decode()
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)  # the parent only: its processes must notice and stop
    proc.wait()
    time.sleep(1)
    done_when_killed = manifest.read_bytes().count(b"\n")
    assert 10 <= done_when_killed < len(clips), "the run was not cut in the middle"

    again = run_cli("encode", "--model", audio_model, src, "-o", out, "--jobs", "2")
    assert f"{done_when_killed} of {len(clips)} file(s) already encoded" in again.stderr
    records = _manifest(out)
    assert sorted(r["output"] for r in records) == sorted(
        c.relative_to(src).with_suffix(".npy").as_posix() for c in clips
    )  # each once: none lost, none twice
    assert all(r["status"] == "ok" for r in records)
    assert not list(out.rglob(".*partial*"))


def test_torchrun_ranks_split_the_files(audio_model, tmp_path):
    src, out = tmp_path / "in", tmp_path / "out"
    clips = _corpus(src)
    torchrun = shutil.which("torchrun", path=str(Path(sys.executable).parent))
    proc = subprocess.run(
        [
            torchrun,
            "--standalone",
            "--nproc-per-node",
            "2",
            "-m",
            "vqtok",
            "encode",
            "--model",
            str(audio_model),
            str(src),
            "-o",
            str(out),
        ],
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=SUBPROCESS_TIMEOUT,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stderr.count("wrote ") == 1  # rank 0 reports for all
    records = _manifest(out)
    assert len(records) == len({r["output"] for r in records}) == len(clips)
    for clip in clips[:3]:
        assert (out / clip.relative_to(src).with_suffix(".npy")).read_bytes() == _expected_bytes(audio_model, clip)


@pytest.mark.parametrize("jobs, batch, flag", [(0, 1, "--jobs"), (-2, 1, "--jobs"), (1, 0, "--batch")])
def test_no_processes_or_an_empty_batch_is_a_usage_error(jobs, batch, flag, tmp_path):
    from vqtok.codec.file_io import encode_inputs

    with pytest.raises(UsageError, match=flag):
        encode_inputs(
            [SAMPLES / "speech"], "unused", tmp_path / "out", None, None, None, False, "cpu", None, None, jobs, batch
        )


def test_short_files_of_one_size_go_through_the_network_together_with_the_codes_of_one_by_one(
    audio_model, tmp_path, monkeypatch
):
    from vqtok.codec import Tokenizer
    from vqtok.codec.batching import encode_files
    from vqtok.codec.long_inputs import CHUNK_SAMPLES

    tok = vqtok.load(audio_model)
    rate = tok.config.options.sample_rate
    speech, _ = sf.read(CLIPS[0], dtype="float32")
    paths = []
    for i, seconds in enumerate([0.5] * 10 + [0.3] * 3):  # ten clips of one length, three of another
        paths.append(tmp_path / f"clip{i:02d}.wav")
        start = i * rate // 10
        sf.write(paths[-1], speech[start : start + int(seconds * rate)], rate)
    paths.append(tmp_path / "long.wav")  # longer than a chunk: streamed, alone
    sf.write(paths[-1], np.resize(speech, CHUNK_SAMPLES + rate), rate)
    paths.append(tmp_path / "broken.wav")
    paths[-1].write_bytes(b"RIFF\x00\x00\x00\x00WAVEnot really")
    alone = [tok.encode_file(p) for p in paths[:-1]]

    batch_sizes = []
    encode_batch = Tokenizer.encode_batch

    def counted(self, x, *args):
        batch_sizes.append(x.shape[0])
        return encode_batch(self, x, *args)

    monkeypatch.setattr(Tokenizer, "encode_batch", counted)
    results = list(encode_files(tok, paths, max_batch=4))
    assert sorted(i for i, _, _ in results) == list(range(len(paths)))  # each file once
    failed = {i: e for i, cf, e in results if e is not None}
    assert list(failed) == [len(paths) - 1] and "broken.wav" in str(failed[len(paths) - 1])
    # the short ones in 4 + 4 + 2 and 3; the long one in chunks of its own
    assert sorted(b for b in batch_sizes if b > 1) == [2, 3, 4, 4] and batch_sizes.count(1) == 2
    batched = {i: cf for i, cf, _ in results if cf is not None}
    differing = total = 0
    for i, expected in enumerate(alone):
        assert batched[i].meta == expected.meta
        for name, codes in expected.arrays.items():
            assert batched[i].arrays[name].shape == codes.shape
            differing += int((batched[i].arrays[name] != codes).sum())
            total += codes.size
    assert differing <= total // 1000  # float rounding may flip a near tie, nothing more

    one_by_one = {i: cf for i, cf, _ in encode_files(tok, paths[:-1], max_batch=1)}
    assert all(code_bytes(one_by_one[i], True) == code_bytes(cf, True) for i, cf in enumerate(alone))
