"""Quality of the VQ families on held-out real data, each trained for a stated budget in this run.

    python bench/bench_families.py [--steps-scale 1.0] [--only equal-bits,rvq]

Prints two tables (the VAE against the published MNIST result is ``bench_mnist_vae.py``):

* VQ-VAE-2 against a one-level VQ-VAE spending the same code bits per input (digits at 32 x 32, and
  speech at 8 kHz), reconstruction error on held-out data;
* residual VQ on speech: quality per number of codebooks K = 1..8 of one model trained with
  quantizer dropout.

Held-out speech: the first two files of ``vqtok/samples/speech`` (sorted), never trained on.
"""

from __future__ import annotations

import argparse
import math
import tempfile
import time
from pathlib import Path

import torch
from common import ROOT, SAMPLES

import vqtok
from vqtok import config as cfg
from vqtok.plugin.registry import get_modality
from vqtok.train import Trainer

SPEECH = [
    "audio.sample_rate=8000",
    "audio.segment_seconds=0.5",
    "model.strides=[2,4,8]",
    "model.width=16",
    "model.max_width=128",
    "model.res_blocks=1",
    "model.latent_dim=32",
    "train.batch_size=8",
    "train.lr=2e-3",
]
DIGITS32 = [
    "image.size=32",
    "image.channels=1",
    "model.strides=[2,2]",
    "model.width=32",
    "model.max_width=64",
    "model.res_blocks=1",
    "model.latent_dim=32",
    "train.batch_size=32",
    "train.lr=2e-3",
]


def train(folder: Path, name: str, recipe: dict | None, overrides: list[str], steps: int) -> Path:
    config = cfg.resolve(recipe, overrides, {"train.steps": steps}, get_modality)
    trainer = Trainer(config, get_modality(config.modality), folder / f"{name}.safetensors")
    t = time.perf_counter()
    trainer.run()
    print(f"  trained {name}: {steps} steps in {time.perf_counter() - t:.0f} s", flush=True)
    return trainer.paths.model


def digits(split: str, tok) -> torch.Tensor:
    """The shipped digits of ``split`` as the model is evaluated on them (resized to ``image.size``)."""
    files = sorted((SAMPLES / "digits" / split).rglob("*.png"))
    return torch.stack([tok.modality.evaluation_example(p, tok.config.options) for p in files])


def speech_split(folder: Path) -> tuple[Path, list[Path]]:
    files = sorted((SAMPLES / "speech").iterdir())
    train_dir = folder / "speech-train"
    train_dir.mkdir(exist_ok=True)
    for f in files[2:]:
        if not (train_dir / f.name).exists():
            (train_dir / f.name).symlink_to(f)
    return train_dir, files[:2]


def snr_db(y: torch.Tensor, x: torch.Tensor) -> float:
    return 10 * math.log10(float(x.pow(2).sum()) / max(float((y - x).pow(2).sum()), 1e-12))


def speech_scores(tok, files: list[Path], n_q: int | None = None) -> tuple[float, float]:
    """Mean multi-resolution STFT distance and SNR (dB) over the held-out files."""
    from vqtok_audio import multi_resolution_stft_distance

    stft, snr = [], []
    for f in files:
        x = tok.modality.load(f, tok.config.options)
        y = tok.decode(tok.encode_file(f, n_q))
        stft.append(multi_resolution_stft_distance(y[None], x[None], 8000).item())
        snr.append(snr_db(y, x))
    return sum(stft) / len(stft), sum(snr) / len(snr)


def bench_equal_bits(folder: Path, scale: float) -> None:
    img_steps, aud_steps = int(600 * scale), int(600 * scale)
    print("\nVQ-VAE-2 vs one-level VQ-VAE at equal code bits (held-out data)")
    print("| data | model | codes | bits per input | held-out error |")
    print("|---|---|---|---|---|")
    rows = []
    for name, arch, k, extra in [
        ("digits-vqvae2", "vqvae2", 256, ["vqvae2.top_strides=[2]"]),
        ("digits-vqvae", "vqvae", 1024, []),
    ]:
        recipe = {"modality": "image", "data": str(SAMPLES / "digits" / "train")}
        tok = vqtok.load(
            train(
                folder, name, recipe, DIGITS32 + [f'model.arch="{arch}"', f"model.codebook_size={k}"] + extra, img_steps
            )
        )
        x = digits("test", tok)  # 32 x 32, as trained
        with torch.no_grad():
            mse = torch.stack([(tok.decode(tok.encode(xi)) - xi).pow(2).mean() for xi in x]).mean().item()
        codes = "8x8 + 4x4, K=256" if arch == "vqvae2" else "8x8, K=1024"
        rows.append(f"| 200 MNIST test digits at 32x32 | {arch} | {codes} | 640 | MSE {mse:.4f} |")
    train_dir, held_out = speech_split(folder)
    for name, arch, k, extra in [
        ("speech-vqvae2", "vqvae2", 256, ["vqvae2.top_strides=[4]"]),
        ("speech-vqvae", "vqvae", 1024, []),
    ]:
        recipe = {"modality": "audio", "data": str(train_dir)}
        tok = vqtok.load(
            train(
                folder, name, recipe, SPEECH + [f'model.arch="{arch}"', f"model.codebook_size={k}"] + extra, aud_steps
            )
        )
        stft, snr = speech_scores(tok, held_out)
        codes = "125/s + 31.25/s, K=256" if arch == "vqvae2" else "125/s, K=1024"
        rows.append(
            f"| 2 held-out speech files, 8 kHz | {arch} | {codes} | 1250 bit/s | MR-STFT {stft:.3f}, SNR {snr:.2f} dB |"
        )
    print("\n".join(rows))


def bench_rvq(folder: Path, scale: float) -> None:
    steps = int(600 * scale)
    train_dir, held_out = speech_split(folder)
    recipe = cfg.read_recipe(ROOT / "recipes" / "audio-rvq.toml")
    recipe["data"] = str(train_dir)
    tok = vqtok.load(train(folder, "speech-rvq", recipe, [], steps))
    print(f"\nResidual VQ on speech (recipes/audio-rvq.toml, {steps} steps, trained without the 2 held-out files)")
    print("| codebooks K | bit/s | MR-STFT distance | SNR (dB) |")
    print("|---|---|---|---|")
    for k in range(1, tok.specs["codes"].depth + 1):
        stft, snr = speech_scores(tok, held_out, n_q=k)
        print(f"| {k} | {k * 1000} | {stft:.3f} | {snr:.2f} |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps-scale", type=float, default=1.0, help="Multiply every training budget.")
    parser.add_argument("--only", default="equal-bits,rvq")
    args = parser.parse_args()
    benches = {"equal-bits": bench_equal_bits, "rvq": bench_rvq}
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.only.split(","):
            benches[name](Path(tmp), args.steps_scale)


if __name__ == "__main__":
    main()
