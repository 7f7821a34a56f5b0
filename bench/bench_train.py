"""Training speed of the default image and audio configurations: median steps per second.

    python bench/bench_train.py [--device cpu|cuda] [--steps 20]

Each figure is the median over timed steps after warm-up steps (k-means initialisation happens in the
first). On CUDA the loop runs under bf16 autocast, as `vqtok train` does.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from common import SAMPLES
from vqtok import config as cfg
from vqtok.plugins import get_modality
from vqtok.train import Trainer

DATA = {"image": SAMPLES / "images", "audio": SAMPLES / "speech"}


def steps_per_second(modality: str, device: str, steps: int, out) -> tuple[float, dict]:
    config = cfg.resolve(flags={"modality": modality, "data": str(DATA[modality]), "train.device": device},
                         get_modality=get_modality)
    trainer = Trainer(config, get_modality(modality), out / f"{modality}.safetensors")
    trainer.model.train()
    for step in range(3):  # warm-up, k-means init
        trainer.train_step(trainer.batch(step))
    times = []
    for step in range(3, 3 + steps):
        x = trainer.batch(step)
        if trainer.device.type == "cuda":
            torch.cuda.synchronize()
        t = time.perf_counter()
        trainer.train_step(x)
        if trainer.device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t)
    shape = tuple(trainer.batch(0).shape)
    return 1.0 / statistics.median(times), {"batch": shape, "params": sum(p.numel() for p in trainer.model.parameters())}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--steps", type=int, default=20)
    args = ap.parse_args()
    import tempfile
    from pathlib import Path

    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, device {args.device}")
    print(f"{'config':<16}{'batch shape':<22}{'params':>10}{'steps/s (median)':>20}")
    with tempfile.TemporaryDirectory() as tmp:
        for modality in ("image", "audio"):
            sps, info = steps_per_second(modality, args.device, args.steps, Path(tmp))
            print(f"{'default ' + modality:<16}{str(info['batch']):<22}{info['params']:>10,}{sps:>20.2f}")


if __name__ == "__main__":
    main()
