"""Encoding a corpus of short clips into a folder of codes: files/s and seconds of audio/s for 1, 2 jobs,
one file at a time or stacked in batches.

    python bench/bench_corpus.py [--model @audio] [--clips 2000] [--seconds 1.5] [--jobs 1,2] [--batch 1,32]
                                 [--repeats 3]

The clips are cut, one after another, from all the recorded speech in the samples (``common.speech``, at the
model's rate), ``--seconds`` each, and written as 16-bit WAV files into 20 sub-folders; ``--clips`` of them,
one folder for the whole run (the clips have one length, so ``--batch`` stacks them). Each measure is one
``vqtok encode CLIPS -o OUT --jobs N --batch B`` in a subprocess into a fresh OUT (so start-up, the manifest
and the atomic writes are counted, as a user pays them), repeated ``--repeats`` times in turn over the
settings; printed: the median wall time, files/s, seconds of audio encoded per second, and each setting's
speed-up over the first (one job, one file at a time). A rerun of the finished command (every output up to
date in the manifest) is timed as well: what resuming costs when nothing is left to do.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import soundfile as sf
from common import speech


def write_clips(folder: Path, rate: int, clips: int, seconds: float) -> None:
    """``clips`` WAV files of ``seconds`` each, cut in turn from the samples' speech (wrapping round)."""
    audio = speech(rate)
    n = int(seconds * rate)
    for i in range(clips):
        start = (i * n) % max(len(audio) - n, 1)
        sub = folder / f"{i % 20:02d}"
        sub.mkdir(parents=True, exist_ok=True)
        sf.write(sub / f"clip{i:05d}.wav", audio[start : start + n], rate, subtype="PCM_16")


def encode(model: str, clips: Path, out: Path, jobs: int, batch: int) -> float:
    """Wall seconds of one ``vqtok encode`` run (it must succeed)."""
    t = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "vqtok", "encode", "--model", model, str(clips), "-o", str(out)]
        + ["--jobs", str(jobs), "--batch", str(batch)],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="@audio")
    ap.add_argument("--clips", type=int, default=2000)
    ap.add_argument("--seconds", type=float, default=1.5)
    ap.add_argument("--jobs", default="1,2")
    ap.add_argument("--batch", default="1,32", help="files per batch to compare (vqtok encode --batch)")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()

    import vqtok

    rate = vqtok.load(args.model).config.options.sample_rate
    settings = [(int(j), int(b)) for b in args.batch.split(",") for j in args.jobs.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        clips = Path(tmp) / "clips"
        write_clips(clips, rate, args.clips, args.seconds)
        times: dict[tuple[int, int], list[float]] = {s: [] for s in settings}
        rerun = []
        for _ in range(args.repeats):
            for jobs, batch in settings:
                out = Path(tmp) / f"codes-{jobs}-{batch}"
                shutil.rmtree(out, ignore_errors=True)
                times[jobs, batch].append(encode(args.model, clips, out, jobs, batch))
                if (jobs, batch) == settings[0]:
                    rerun.append(encode(args.model, clips, out, jobs, batch))
        audio_seconds = args.clips * args.seconds
        print(
            f"{args.clips} clips of {args.seconds} s at {rate} Hz ({audio_seconds / 60:.0f} min of audio), "
            f"model {args.model}, median of {args.repeats}"
        )
        print(f"{'jobs':>4}  {'batch':>5}  {'wall s':>7}  {'files/s':>8}  {'audio s/s':>9}  {'vs first':>8}")
        base = statistics.median(times[settings[0]])
        for jobs, batch in settings:
            wall = statistics.median(times[jobs, batch])
            print(
                f"{jobs:>4}  {batch:>5}  {wall:7.1f}  {args.clips / wall:8.1f}  {audio_seconds / wall:9.0f}  "
                f"{base / wall:7.2f}x"
            )
        jobs, batch = settings[0]
        print(f"rerun with everything done (jobs {jobs}, batch {batch}): {statistics.median(rerun):.1f} s")


if __name__ == "__main__":
    main()
