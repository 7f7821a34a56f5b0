"""Audio encode/decode speed on CPU and peak memory while encoding long files.

    python bench/bench_codec.py [--minutes 10 60] [--repeats 3]

Uses the default audio configuration (16 kHz, hop 320; one training step, since speed does not depend
on the weights) on real speech repeated to the requested length. Speed is seconds of audio per second of
wall time (median of --repeats, in-process through the Python API: streaming, chunked). Peak memory is
the maximum resident set size of a separate `vqtok encode` process per file, so the figures for 10 and
60 minutes can be compared: bounded memory means they are about equal.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import soundfile as sf
import torch

from common import default_model, long_recording, median_time

import vqtok


def peak_rss_mb(cmd: list[str]) -> float:
    """Peak RSS of ``cmd`` in MB, measured in a fresh parent so no earlier child counts."""
    probe = ("import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True, "
             "stdout=subprocess.DEVNULL); print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")
    out = subprocess.run([sys.executable, "-c", probe, *cmd], check=True, capture_output=True, text=True)
    return int(out.stdout.strip()) / 1024


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--minutes", type=float, nargs="+", default=[10, 60])
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        model = default_model("audio", tmp)
        tok = vqtok.load(model)
        sr = tok.config.options.sample_rate
        print(f"torch {torch.__version__}, threads {torch.get_num_threads()}; default audio model: {sr} Hz, "
              f"hop {tok.hop}, {sum(p.numel() for p in tok.model.parameters()):,} parameters")
        short = long_recording(tmp / "speed.wav", 1.0, sr)
        seconds = sf.info(short).duration
        codes = tok.encode_file(short)
        enc = median_time(lambda: tok.encode_file(short), args.repeats)
        dec = median_time(lambda: tok.decode_to_file(codes, tmp / "back.wav"), args.repeats)
        print(f"encode: {seconds / enc:8.1f} s of audio per s  (median of {args.repeats}, {seconds:.0f} s file)")
        print(f"decode: {seconds / dec:8.1f} s of audio per s")
        print(f"{'file':>10}{'peak RSS encode (MB)':>24}{'peak RSS decode (MB)':>24}")
        for minutes in args.minutes:
            wav = long_recording(tmp / f"long-{minutes:g}.wav", minutes, sr)
            npz = tmp / f"long-{minutes:g}.npz"
            enc_mb = peak_rss_mb([sys.executable, "-m", "vqtok", "encode", "--model", str(model), str(wav),
                                  "-o", str(npz)])
            dec_mb = peak_rss_mb([sys.executable, "-m", "vqtok", "decode", "--model", str(model), str(npz),
                                  "-o", str(tmp / "long-back.wav")])
            assert sf.info(tmp / "long-back.wav").frames == sf.info(wav).frames
            print(f"{minutes:>8g} m{enc_mb:>24.0f}{dec_mb:>24.0f}")
            wav.unlink()


if __name__ == "__main__":
    main()
