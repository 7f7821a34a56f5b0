"""Peak memory of encoding and decoding large photos: vqtok's tiled path against a whole-image pass.

    python bench/bench_image_memory.py [--model @image] [--photo FILE] [--megapixels 2,6,24] [--whole-up-to 6]

Each measurement runs in a fresh process and reports that process's peak resident set size
(``getrusage``'s ``ru_maxrss``), so that nothing one step allocated hides in the next one's figure:

- ``vqtok encode PHOTO -o codes.npz`` and ``vqtok decode codes.npz -o back.png`` (the CLI, tiled);
- the peer, the same model encoding and decoding the whole image in one pass
  (``Tokenizer.encode_tensor`` / ``decode_tensor``), which is what vqtok did before tiling. It needs
  memory in proportion to the pixels, so it runs only up to ``--whole-up-to`` megapixels.

The photo (``--photo``, default: the largest image under bench/data/photos/test-full, else a shipped
sample) is resized (Lanczos) to each size, keeping its aspect ratio, and saved as a JPEG (quality 92).
"""

from __future__ import annotations

import argparse
import math
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
FULL = ROOT / "bench" / "data" / "photos" / "test-full"
SAMPLE = ROOT / "vqtok" / "samples" / "images" / "chelsea.png"

WHOLE = """
import sys, torch, vqtok
from vqtok.plugin.defaults import model_path
torch.set_grad_enabled(False)
tok = vqtok.load(model_path(sys.argv[1]))
x = tok.modality.load(sys.argv[2], tok.config.options)
latents = tok.encode_tensor(x)
if sys.argv[3] == "decode":
    tok.decode_tensor(latents)
"""


def peak_mb(command: list[str]) -> tuple[float, float]:
    """Run ``command`` in a fresh child; its peak RSS in MB and its wall time in s."""
    probe = (
        "import resource, subprocess, sys, time; t = time.perf_counter(); "
        "r = subprocess.run(sys.argv[1:]); "
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, time.perf_counter() - t, r.returncode)"
    )
    out = subprocess.run([sys.executable, "-c", probe, *command], capture_output=True, text=True, check=True)
    kb, seconds, code = out.stdout.split()[-3:]
    if code != "0":
        raise SystemExit(f"{' '.join(command)} failed:\n{out.stderr[-2000:]}")
    return int(kb) / 1024, float(seconds)


def photo_of(source: Path, megapixels: float, folder: Path) -> Path:
    with Image.open(source) as img:
        img = img.convert("RGB")
        scale = math.sqrt(megapixels * 1e6 / (img.width * img.height))
        size = (round(img.width * scale), round(img.height * scale))
        path = folder / f"photo-{megapixels:g}mp.jpg"
        img.resize(size, Image.Resampling.LANCZOS).save(path, quality=92)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="@image")
    parser.add_argument("--photo", type=Path, default=None)
    parser.add_argument("--megapixels", default="2,6,24")
    parser.add_argument("--whole-up-to", type=float, default=6.0)
    args = parser.parse_args()
    source = args.photo or max(FULL.glob("*.png"), key=lambda p: p.stat().st_size, default=SAMPLE)
    vqtok = [sys.executable, "-m", "vqtok"]
    print(f"{time.strftime('%Y-%m-%d %H:%M')}; model {args.model}; photo {source.name} resized to each size\n")
    print("| megapixels | size | encode peak (MB) | decode peak (MB) | whole-image encode+decode peak (MB) | ratio |")
    print("| --- | --- | --- | --- | --- | --- |")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for mp in (float(m) for m in args.megapixels.split(",")):
            photo = photo_of(source, mp, folder)
            codes, back = folder / "codes.npz", folder / "back.png"
            enc, _ = peak_mb([*vqtok, "encode", "--model", args.model, str(photo), "-o", str(codes)])
            dec, _ = peak_mb([*vqtok, "decode", "--model", args.model, str(codes), "-o", str(back)])
            whole = ratio = "-"
            if mp <= args.whole_up_to:
                w, _ = peak_mb([sys.executable, "-c", WHOLE, args.model, str(photo), "decode"])
                whole, ratio = f"{w:.0f}", f"{w / max(enc, dec):.1f}x"
            with Image.open(photo) as img:
                size = f"{img.width} x {img.height}"
            print(f"| {mp:g} | {size} | {enc:.0f} | {dec:.0f} | {whole} | {ratio} |", flush=True)
    print("\nratio: the whole-image pass's peak over the larger of the tiled encode and decode peaks, same photo.")


if __name__ == "__main__":
    main()
