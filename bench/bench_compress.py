"""``vqtok compress`` on held-out data: the real file rate against the raw rate and the prior's estimate,
and the speed of entropy coding.

    python bench/bench_compress.py --model @audio --data bench/data/speech-voices/test [--long 120]
    python bench/bench_compress.py --model @image --data bench/data/photos/test [--limit N]

Every file the model's modality reads under ``--data`` is encoded (``encode_file``, as ``vqtok encode``),
then its codes are compressed and decompressed in memory (:class:`vqtok.codec.compression.Codec`, what
``vqtok compress`` / ``decompress`` run) and checked to come back exactly. Rates are totals over all the
files per second of audio (bit/s) or per pixel (bpp):

- raw: every code at log2 K of its codebook (what a code file carries);
- estimate: ``-log2 p`` of the codes under the prior, tile by tile as compress codes them (the measure
  ``vqtok train-prior`` reports and ``vqtok info`` shows, here on these files);
- ``info``: the figure ``vqtok info`` shows for the model, measured when the prior was trained, on held-out
  files of its training data (a different set);
- coded: the range coder's payloads (what the estimate predicts; within 2% is the aim);
- files: the whole .vqz files, header and chunk framing included.

Speed: seconds of audio (or megapixels) per second of wall time for the entropy coding alone (compress and
decompress of the codes) and end to end (encode + compress; decompress + decode), totals over the files after
one untimed warm-up file, on the CPU with the default torch threads (the prior itself codes in one thread, by
design). Short files cost more per second: each is one call with its own set-up. ``--long S`` adds
one recording of about S seconds, the files joined, compressed as one file: long inputs, where the header
costs nothing and many tiles are coded together.
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

import vqtok
from vqtok.codec.compression import Codec
from vqtok.files.vqz import container_bytes, parse_container
from vqtok.modality import find_files
from vqtok.plugin.defaults import model_path


def raw_bits(tok, codes) -> float:
    return sum(
        math.log2(tok.specs[n].codebook_sizes[q]) * c[q].numel() for n, c in codes.items() for q in range(len(c))
    )


def measure(tok, files: list[Path]) -> dict:
    codec, t = (
        Codec(tok),
        {k: 0.0 for k in ("raw", "estimate", "coded", "file", "units", "encode", "compress", "decompress", "decode")},
    )
    warm = tok.from_file_arrays(tok.encode_file(files[0]), "")  # first calls pay for one-time set-up
    codec.decompress(parse_container(container_bytes(codec.compress(warm, None)), ""), "")
    for path in files:
        start = time.perf_counter()
        cf = tok.encode_file(path)
        t["encode"] += time.perf_counter() - start
        codes = tok.from_file_arrays(cf, str(path))
        start = time.perf_counter()
        box = codec.compress(codes, cf.meta)
        data = container_bytes(box)
        t["compress"] += time.perf_counter() - start
        start = time.perf_counter()
        back, _ = codec.decompress(parse_container(data, str(path)), str(path))
        t["decompress"] += time.perf_counter() - start
        if not all(torch.equal(back[k], codes[k]) for k in codes):
            sys.exit(f"{path}: the codes did not come back exactly")
        start = time.perf_counter()
        tok.decode_latents(back, None)
        t["decode"] += time.perf_counter() - start
        t["raw"] += raw_bits(tok, codes)
        t["estimate"] += codec.estimated_bits(codes) if box.header["coder"] == "prior" else raw_bits(tok, codes)
        t["coded"] += 8 * sum(map(len, box.chunks))
        t["file"] += 8 * len(data)
        size = cf.meta["size"]
        t["audio"] = "sample_rate" in cf.meta
        t["units"] += size[-1] / cf.meta["sample_rate"] if t["audio"] else math.prod(size[-2:]) / 1e6
    return t


def report(name: str, tok, files: list[Path], t: dict) -> None:
    audio = t["audio"]
    per, unit, speed_unit = (1.0, "bit/s", "s of audio/s") if audio else (1e6, "bpp", "megapixels/s")
    rate = {k: t[k] / (t["units"] * per) for k in ("raw", "estimate", "coded", "file")}
    info = (tok.prior_info or {}).get("entropy", {}).get("bitrate", {}).get("prior")
    total = f"{t['units']:.1f} s" if audio else f"{t['units']:.2f} megapixels"
    print(f"\n{name}: {len(files)} file(s), {total}")
    print(
        f"  raw {rate['raw']:.4g} {unit} | estimate (-log2 p, these files) {rate['estimate']:.4g} | coded "
        f"{rate['coded']:.4g} ({rate['coded'] / rate['estimate']:.4f} x estimate, "
        f"{rate['coded'] / rate['raw']:.3f} x raw)"
        f" | whole files {rate['file']:.4g} ({rate['file'] / rate['raw']:.3f} x raw)"
        + (f" | info's figure {info:.4g}" if info is not None and audio else "")
    )
    print(
        f"  speed ({speed_unit}): compress {t['units'] / t['compress']:.1f}, "
        f"decompress {t['units'] / t['decompress']:.1f}"
        f" (coding only); encode+compress {t['units'] / (t['encode'] + t['compress']):.1f}, "
        f"decompress+decode {t['units'] / (t['decompress'] + t['decode']):.1f}"
    )


def joined_recording(files: list[Path], seconds: float, sample_rate: int, folder: Path) -> Path:
    pieces, total = [], 0
    for path in files:
        audio, rate = sf.read(path, dtype="float32")
        if rate != sample_rate:
            continue
        pieces.append(audio)
        total += len(audio)
        if total >= seconds * sample_rate:
            break
    out = folder / "joined.wav"
    sf.write(out, np.concatenate(pieces), sample_rate)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="@audio")
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--limit", type=int, default=0, help="only the first N files")
    ap.add_argument("--long", type=float, default=0, help="audio: also one recording of about this many seconds")
    args = ap.parse_args()
    tok = vqtok.load(model_path(args.model))
    files = find_files(args.data, tok.modality)[: args.limit or None]
    print(
        f"model {args.model} ({tok.model_hash}), coder: {'prior' if tok.has_prior else 'uniform'}, "
        f"threads {torch.get_num_threads()}"
    )
    report(str(args.data), tok, files, measure(tok, files))
    if args.long:
        rate = tok.modality.describe(tok.config.options)["sample_rate"]
        with tempfile.TemporaryDirectory() as tmp:
            joined = joined_recording(files, args.long, rate, Path(tmp))
            report("the files joined into one recording", tok, [joined], measure(tok, [joined]))


if __name__ == "__main__":
    main()
