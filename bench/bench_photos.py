"""Colour-photo quality: vqtok image models against JPEG and WebP at matched bits per pixel, on the held-out photos.

    python bench/data.py photos        # once: bench/data/photos/{train,test}/<set>/<name>.png
    python bench/bench_photos.py [--model @image ...] [--n-q all,2] [--test DIR] [--limit N] [--max-side N]
                                 [--pictures DIR]

Needs ``pip install pytorch-msssim`` (the ``bench`` extra). Every PNG under ``--test`` (default
``bench/data/photos/test``: 14 held-out 8-bit RGB photos, up to 2048 pixels on the longer side; ``--limit N``:
the first N by path) is loaded as the model loads it (``tok.modality.load``, 8-bit RGB) and, with
``--max-side N``, first scaled down (Lanczos) so that its longer side is at most N pixels; that image is the
reference of every codec. A rate point is one model with one ``--n-q`` (``all``: every codebook; a number: the
first codebooks of a residual model). At each rate point, per photo:

- vqtok: ``encode_file`` and ``decode``, the output made 8-bit as ``to_pil`` does (clamp, ``(x + 1) * 127.5``,
  round). Its rate is the raw one, every code costing log2 K of its codebook, over the photo's pixels. When the
  model holds a PixelCNN prior, the prior-coded rate too: the size of the ``.vqz`` file ``vqtok compress``
  writes for the photo (header included), only with all the codebooks (the prior models all of them).
- the peers, Pillow's JPEG (libjpeg, 4:2:0 chroma subsampling as Pillow's default, baseline with optimised
  Huffman tables: ``optimize=True``) and WebP (lossy, ``method=6``), each at the highest quality setting
  (JPEG 1..95, WebP 0..100; found by bisection, assuming the size grows with the setting) whose file, headers
  included, takes at most the vqtok rate (file bytes x 8 / pixels); when even the lowest setting takes more,
  the lowest, marked with ``*``. With a prior, the peers are matched to the prior-coded rate as well.

Scores, on the 8-bit RGB images: PSNR over all the pixels and channels (peak 255), and SSIM and MS-SSIM of
``pytorch-msssim`` (``data_range=255``, its defaults: Gaussian window 11, sigma 1.5, each channel scored and
averaged, no downscaling first; MS-SSIM with the five standard scales).
MS-SSIM needs more than 160 pixels on the shorter side (the package checks this for four downsamplings whatever
the weights), so smaller images get "-" and are listed. Table cells are means of the per-photo values over the
photos. ``--pictures DIR`` writes, for three photos spread over the sorted names, a strip per rate point of the
256 x 256 centre crop (smaller by steps of 32 where the PNG would exceed 300 kB): original, vqtok, JPEG and WebP
at the matched raw rate, labelled with the codec, its quality setting, its rate and its whole-photo PSNR.
"""

from __future__ import annotations

import argparse
import io
import math
import shlex
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from common import ROOT
from PIL import Image, ImageDraw, features

TEST = ROOT / "bench" / "data" / "photos" / "test"
MS_SSIM_MIN_SIDE = 161  # pytorch-msssim: the shorter side must exceed (win_size - 1) * 2 ** 4 = 160
CROP = 256  # --pictures: the side of the centre crops, smaller where a strip's PNG would exceed MAX_PICTURE_BYTES
MAX_PICTURE_BYTES = 300_000
PICTURES = 3
PEERS = {  # name -> (Pillow format, lowest and highest quality setting, save options)
    "JPEG": ("JPEG", 1, 95, {"optimize": True}),
    "WebP": ("WEBP", 0, 100, {"method": 6}),
}
METRICS = {"psnr": ("PSNR (dB)", 2), "ssim": ("SSIM", 4), "ms_ssim": ("MS-SSIM", 4)}


@dataclass
class Photo:
    name: str
    path: Path  # the file every codec codes (a scaled-down copy with --max-side)
    pixels: np.ndarray  # (H, W, 3) uint8: the reference
    coded: dict[str, dict[int, bytes]] = field(default_factory=dict)  # peer -> quality -> file bytes

    @property
    def area(self) -> int:
        return self.pixels.shape[0] * self.pixels.shape[1]


@dataclass
class Row:
    """One codec at one rate point: per photo its bpp, quality setting and scores."""

    name: str
    bpp: dict[str, float] = field(default_factory=dict)
    prior_bpp: dict[str, float] = field(default_factory=dict)
    quality: dict[str, int] = field(default_factory=dict)
    over: list[str] = field(default_factory=list)  # photos whose lowest setting took more than the target
    scores: dict[str, dict[str, float]] = field(default_factory=lambda: {m: {} for m in METRICS})

    def score(self, photo: Photo, decoded: np.ndarray, bpp: float) -> None:
        self.bpp[photo.name] = bpp
        for metric, value in quality_scores(photo.pixels, decoded).items():
            if value is not None:
                self.scores[metric][photo.name] = value


@dataclass
class RatePoint:
    """A model with a number of codebooks, and the peers matched to its rate(s)."""

    label: str
    tok: object
    n_q: int | None
    prior_bits: dict[str, float] | None  # latent -> the prior's bits per code, where it applies
    vqtok: Row = None
    peers: dict[str, Row] = field(default_factory=dict)  # "JPEG" / "WebP" / "JPEG @ prior" ...

    def rows(self) -> list[Row]:
        return [self.vqtok, *self.peers.values()]


def to_uint8(x: torch.Tensor) -> np.ndarray:
    """``(3, H, W)`` in [-1, 1] -> ``(H, W, 3)`` uint8, exactly as ``vqtok_image.convert.to_pil``."""
    a = ((x.detach().float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).cpu().numpy()
    return a.transpose(1, 2, 0)


def quality_scores(ref: np.ndarray, out: np.ndarray) -> dict[str, float | None]:
    diff = ref.astype(np.float64) - out.astype(np.float64)
    mse = float(np.mean(diff * diff))
    psnr = math.inf if mse == 0 else 10 * math.log10(255.0**2 / mse)
    x, y = (torch.from_numpy(a.transpose(2, 0, 1).copy()).float()[None] for a in (ref, out))
    with torch.no_grad():
        s, ms = ssim_and_ms_ssim(x, y)
    return {"psnr": psnr, "ssim": s, "ms_ssim": ms}


def ssim_and_ms_ssim(x: torch.Tensor, y: torch.Tensor) -> tuple[float, float | None]:
    """``pytorch_msssim.ssim`` and ``ms_ssim`` of ``(1, 3, H, W)`` images in [0, 255] with their defaults
    (its public functions; the Gaussian filtering takes about 2 s per scale of a 2.6-megapixel photo on one
    thread). MS-SSIM: None where the shorter side is under ``MS_SSIM_MIN_SIDE``."""
    from pytorch_msssim import ms_ssim, ssim

    value = float(ssim(x, y, data_range=255))
    if min(x.shape[-2:]) < MS_SSIM_MIN_SIDE:
        return value, None
    return value, float(ms_ssim(x, y, data_range=255))


def load_photos(test: Path, limit: int | None, max_side: int | None, tok, folder: Path) -> list[Photo]:
    if not test.is_dir():
        raise SystemExit(f"{test} is missing: run `python bench/data.py photos` first")
    files = sorted(test.rglob("*.png"), key=lambda p: p.relative_to(test).as_posix())[:limit]
    if not files:
        raise SystemExit(f"{test}: no PNG files")
    photos = []
    for f in files:
        name = f.relative_to(test).with_suffix("").as_posix()
        pixels = to_uint8(tok.modality.load(f, tok.config.options))
        path = f
        if max_side and max(pixels.shape[:2]) > max_side:
            img = Image.fromarray(pixels)
            scale = max_side / max(img.size)
            img = img.resize(
                (max(1, round(img.width * scale)), max(1, round(img.height * scale))), Image.Resampling.LANCZOS
            )
            path = folder / f"{name.replace('/', '-')}.png"
            img.save(path)
            pixels = np.asarray(img)
        photos.append(Photo(name, path, pixels))
    return photos


def load_models(models: list[str], n_qs: list[int | None]) -> list[RatePoint]:
    import vqtok
    from vqtok.info import model_report
    from vqtok.plugin.defaults import model_path

    points = []
    for model in models:
        path = model_path(model)
        if not path.is_file():
            raise SystemExit(f"--model {model}: no such file {path}")
        tok = vqtok.load(path)
        report = model_report(path)
        if report.get("modality") != "image" or tok.config.options.channels != 3:
            raise SystemExit(
                f"--model {model} ({path}): not an RGB image model "
                f"({report.get('modality')}, {report['decode'].get('channels')} channel(s))"
            )
        if not all(s.discrete for s in tok.specs.values()):
            raise SystemExit(f"--model {model}: a {tok.family} model has continuous latents: no bit rate")
        entropy = (report.get("prior") or {}).get("entropy") or {}
        prior_bits = entropy.get("bits_per_code", {}).get("prior")
        channels = next(iter(tok.specs.values())).channels
        seen = set()
        for n_q in n_qs:
            if n_q is not None and (len(tok.specs) != 1 or n_q > channels):
                raise SystemExit(f"--n-q {n_q}: {path} is not a residual VQ model with that many codebooks")
            if n_q == channels:
                n_q = None  # all of them
            if n_q in seen:
                continue
            seen.add(n_q)
            label = f"vqtok {path.stem}" + ("" if n_q is None else f" --n-q {n_q}")
            points.append(RatePoint(label, tok, n_q, prior_bits if n_q is None else None))
    return points


def code_bits(tok, arrays: dict[str, np.ndarray], bits_per_code: dict[str, float] | None = None) -> float:
    """Bits of a photo's codes: log2 K of its codebook per code, or ``bits_per_code`` of its latent."""
    total = 0.0
    for name, a in arrays.items():
        n = a.shape[0] if a.ndim == 3 else 1  # images drop the codebook axis when it is 1
        positions = a.shape[-1] * a.shape[-2]
        if bits_per_code is None:
            total += positions * sum(math.log2(k) for k in tok.specs[name].codebook_sizes[:n])
        else:
            total += positions * n * bits_per_code[name]
    return total


def run_vqtok(point: RatePoint, photo: Photo) -> tuple[np.ndarray, float]:
    from vqtok.codec.compression import Codec
    from vqtok.files.vqz import container_bytes

    cf = point.tok.encode_file(photo.path, point.n_q)
    decoded = to_uint8(point.tok.decode(cf))
    if decoded.shape != photo.pixels.shape:
        raise SystemExit(f"{photo.name}: decoded to {decoded.shape}, expected {photo.pixels.shape}")
    bpp = code_bits(point.tok, cf.arrays) / photo.area
    if point.prior_bits is not None:  # the real file `vqtok compress` writes, header included
        box = Codec(point.tok).compress(point.tok.from_file_arrays(cf, photo.name), cf.meta)
        point.vqtok.prior_bpp[photo.name] = 8 * len(container_bytes(box)) / photo.area
    return decoded, bpp


def encoded(photo: Photo, peer: str, quality: int) -> bytes:
    """The photo coded by ``peer`` at ``quality``, remembered per photo (several targets share the search)."""
    cache = photo.coded.setdefault(peer, {})
    if quality not in cache:
        fmt, _, _, options = PEERS[peer]
        buf = io.BytesIO()
        Image.fromarray(photo.pixels).save(buf, fmt, quality=quality, **options)
        cache[quality] = buf.getvalue()
    return cache[quality]


def match(photo: Photo, peer: str, target_bpp: float) -> tuple[int, bool]:
    """The highest quality whose file takes at most ``target_bpp`` (bisection), or the lowest and True."""
    _, lo, hi, _ = PEERS[peer]
    bpp = lambda q: 8 * len(encoded(photo, peer, q)) / photo.area  # noqa: E731
    if bpp(lo) > target_bpp:
        return lo, True
    if bpp(hi) <= target_bpp:
        return hi, False
    while hi - lo > 1:  # bpp(lo) <= target < bpp(hi)
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if bpp(mid) <= target_bpp else (lo, mid)
    return lo, False


def run_peer(row: Row, photo: Photo, peer: str, target_bpp: float) -> np.ndarray:
    quality, over = match(photo, peer, target_bpp)
    data = encoded(photo, peer, quality)
    with Image.open(io.BytesIO(data)) as img:
        decoded = np.asarray(img.convert("RGB"))
    row.quality[photo.name] = quality
    if over:
        row.over.append(photo.name)
    row.score(photo, decoded, 8 * len(data) / photo.area)
    return decoded


def fmt(value: float | None, metric: str) -> str:
    if value is None:
        return "-"
    return "inf" if math.isinf(value) else f"{value:.{METRICS[metric][1]}f}"


def mean(values) -> float | None:
    values = list(values)
    return statistics.fmean(values) if values else None


def settings(row: Row) -> str:
    if not row.quality:
        return "-"
    qs = list(row.quality.values())
    over = f", {len(row.over)} over *" if row.over else ""
    return f"{min(qs)}..{max(qs)} (median {statistics.median(qs):g}){over}"


def rate_table(point: RatePoint) -> str:
    head = ["codec", "bpp (mean)", *(label for label, _ in METRICS.values()), "quality setting"]
    lines = ["| " + " | ".join(head) + " |", "| " + " | ".join(["---"] * len(head)) + " |"]
    for row in point.rows():
        bpp = f"{mean(row.bpp.values()):.4f}"
        if row.prior_bpp:
            bpp += f" (prior: {mean(row.prior_bpp.values()):.4f})"
        cells = [row.name, bpp, *(fmt(mean(row.scores[m].values()), m) for m in METRICS), settings(row)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def photo_table(point: RatePoint, photos: list[Photo]) -> str:
    rows = point.rows()
    short = [r.name if r is not point.vqtok else "vqtok" for r in rows]
    head = ["photo", "size", *(f"{s} bpp" for s in short), *(f"{s} PSNR" for s in short)]
    lines = ["| " + " | ".join(head) + " |", "| " + " | ".join(["---"] * len(head)) + " |"]
    for p in photos:
        bpps = [f"{r.bpp[p.name]:.4f}" + ("*" if p.name in r.over else "") for r in rows]
        psnrs = [fmt(r.scores["psnr"].get(p.name), "psnr") for r in rows]
        lines.append("| " + " | ".join([p.name, f"{p.pixels.shape[1]} x {p.pixels.shape[0]}", *bpps, *psnrs]) + " |")
    return "\n".join(lines)


def picture_names(photos: list[Photo]) -> set[str]:
    """``PICTURES`` photos spread evenly over the sorted names (the first, the last, and between)."""
    n = len(photos)
    if n <= PICTURES:
        return {p.name for p in photos}
    return {photos[round(i * (n - 1) / (PICTURES - 1))].name for i in range(PICTURES)}


def centre_crop(a: np.ndarray, side: int) -> Image.Image:
    h, w = a.shape[:2]
    top, left = max(0, (h - side) // 2), max(0, (w - side) // 2)
    return Image.fromarray(a[top : top + side, left : left + side])


def write_strip(out: Path, panels: list[tuple[str, np.ndarray]], side: int) -> int:
    """The ``side`` x ``side`` centre crops of ``panels`` side by side, each under its label; the PNG's bytes."""
    crops = [(label, centre_crop(a, side)) for label, a in panels]
    w, h, gap, band = crops[0][1].width, crops[0][1].height, 4, 14
    strip = Image.new("RGB", (len(crops) * w + (len(crops) - 1) * gap, band + h), "white")
    draw = ImageDraw.Draw(strip)
    for i, (label, crop) in enumerate(crops):
        x = i * (w + gap)
        draw.text((x + 2, 1), label, fill="black")
        strip.paste(crop, (x, band))
    strip.save(out, optimize=True)
    return out.stat().st_size


def picture(folder: Path, point: RatePoint, photo: Photo, decoded: dict[str, np.ndarray]) -> None:
    panels = [("original", photo.pixels)]
    for row in point.rows()[:3]:  # vqtok and the peers at its raw rate
        setting = f" q{row.quality[photo.name]}" if photo.name in row.quality else ""
        label = (
            f"{'vqtok' if row is point.vqtok else row.name}{setting} {row.bpp[photo.name]:.3f} bpp "
            f"{fmt(row.scores['psnr'].get(photo.name), 'psnr')} dB"
        )
        panels.append((label, decoded[row.name]))
    stem = f"{photo.name.replace('/', '-')}_{point.label.removeprefix('vqtok ').replace(' --n-q ', '_nq')}"
    side = CROP
    while (size := write_strip(folder / f"{stem}.png", panels, side)) > MAX_PICTURE_BYTES and side > CROP // 2:
        side -= 32  # a detailed photo: a smaller crop keeps the PNG small
    print(f"  wrote {folder / stem}.png ({side} x {side} crops, {size / 1000:.0f} kB)", file=sys.stderr)


def bench_photo(point: RatePoint, photo: Photo, pictures: Path | None) -> str:
    """Code ``photo`` at one rate point with vqtok and the peers; a progress note."""
    decoded = {}
    t = time.perf_counter()
    decoded[point.vqtok.name], bpp = run_vqtok(point, photo)
    point.vqtok.score(photo, decoded[point.vqtok.name], bpp)
    note = f"vqtok {bpp:.3f} bpp {time.perf_counter() - t:.1f} s"
    targets = {"": bpp}
    if photo.name in point.vqtok.prior_bpp:
        targets[" @ prior"] = point.vqtok.prior_bpp[photo.name]
    for suffix, target in targets.items():
        for peer in PEERS:
            t = time.perf_counter()
            row = point.peers.setdefault(peer + suffix, Row(peer + suffix))
            decoded[row.name] = run_peer(row, photo, peer, target)
            note += f", {row.name} q{row.quality[photo.name]} {time.perf_counter() - t:.1f} s"
    if pictures is not None:
        picture(pictures, point, photo, decoded)
    return note


def versions() -> str:
    from importlib.metadata import PackageNotFoundError, version

    import PIL

    jpeg = f"libjpeg {features.version('jpg')}"
    if features.check_feature("libjpeg_turbo"):
        jpeg += f" (libjpeg-turbo {features.version_feature('libjpeg_turbo')})"
    try:
        msssim = version("pytorch-msssim")
    except PackageNotFoundError:
        msssim = "not installed"
    return (
        f"Pillow {PIL.__version__}, {jpeg}, libwebp {features.version('webp')}; pytorch-msssim {msssim}; "
        f"torch {torch.__version__}, {torch.get_num_threads()} thread(s)"
    )


def notes(points: list[RatePoint], photos: list[Photo]) -> None:
    print(
        "\nbpp: bits over the photo's pixels; vqtok: raw, log2 K per code (no header), in brackets the prior-coded "
        "rate (the .vqz file of `vqtok compress`, header included); JPEG / WebP: the whole file, headers "
        "included. Each peer takes the highest "
        "quality setting whose file is not larger than the vqtok rate (raw; '@ prior': the prior-coded rate); "
        "* marks a photo where even the lowest setting is larger (JPEG 1, WebP 0), which is then used."
    )
    for point in points:
        if point.prior_bits is None and point.n_q is None:
            print(f"- {point.label}: no prior with an entropy report in the model: raw rate only")
        elif point.prior_bits is None:
            print(f"- {point.label}: no prior-coded rate (the prior models all the codebooks, not the first n_q)")
        for row in point.rows():
            if row.over:
                print(f"- {point.label}, {row.name}: over the target at the lowest setting: {', '.join(row.over)}")
    small = [p.name for p in photos if min(p.pixels.shape[:2]) < MS_SSIM_MIN_SIDE]
    if small:
        print(f"- MS-SSIM left out (shorter side under {MS_SSIM_MIN_SIDE} px): {', '.join(small)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--model", action="append", default=[], help="a vqtok RGB image model or @NAME (repeatable; default @image)"
    )
    parser.add_argument(
        "--n-q", default="all", help="codebooks of each residual model: 'all' and/or numbers, comma-separated"
    )
    parser.add_argument("--test", type=Path, default=TEST, help="folder of PNG photos (recursive)")
    parser.add_argument("--limit", type=int, default=None, help="only the first N photos (sorted by path)")
    parser.add_argument(
        "--max-side",
        type=int,
        default=None,
        help="scale each photo down (Lanczos) to at most N pixels on its longer side first",
    )
    parser.add_argument("--pictures", type=Path, default=None, help="write centre-crop comparison strips here")
    args = parser.parse_args()
    n_qs = [None if k == "all" else int(k) for k in args.n_q.split(",") if k]
    try:
        import pytorch_msssim  # noqa: F401
    except ImportError:
        raise SystemExit("pytorch-msssim is missing: pip install pytorch-msssim") from None
    if not features.check("webp"):
        raise SystemExit("this Pillow has no WebP support")
    torch.set_grad_enabled(False)

    print("$ python " + " ".join(shlex.quote(a) for a in sys.argv))
    print(f"{time.strftime('%Y-%m-%d %H:%M')}; {versions()}")
    points = load_models(args.model or ["@image"], n_qs)
    if args.pictures is not None:
        args.pictures.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-photos-") as tmp:
        photos = load_photos(args.test, args.limit, args.max_side, points[0].tok, Path(tmp))
        megapixels = sum(p.area for p in photos) / 1e6
        scaled = f", scaled to at most {args.max_side} px on the longer side" if args.max_side else ""
        print(f"{len(photos)} photos of {args.test}{scaled}, {megapixels:.2f} megapixels\n", flush=True)
        shown = picture_names(photos) if args.pictures is not None else set()
        for point in points:
            point.vqtok = Row(point.label)
        for i, photo in enumerate(photos, 1):
            for point in points:
                note = bench_photo(point, photo, args.pictures if photo.name in shown else None)
                print(
                    f"[{i}/{len(photos)}] {photo.name} {photo.pixels.shape[1]}x{photo.pixels.shape[0]} "
                    f"{point.label}: {note}",
                    file=sys.stderr,
                    flush=True,
                )
            photo.coded.clear()
    for point in points:
        print(f"## {point.label}\n\nMeans over the {len(photos)} photos:\n\n{rate_table(point)}\n")
        print(f"Per photo:\n\n{photo_table(point, photos)}\n")
    notes(points, photos)
    print(f"\n{time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
