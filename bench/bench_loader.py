"""Is training input-bound? The data loader alone against the model's training step, per default recipe.

    python bench/bench_loader.py [--recipes speech-8k-voices photo-8x] [--workers 0,1,2] [--batches 40]
                                 [--steps 6] [--device cpu|cuda] [--on-samples]

For each recipe (default: the two shipped defaults' first stages; their data comes from
``python bench/data.py voices`` and ``python bench/data.py photos``) the run is built as ``vqtok train``
builds it (``vqtok.train.Trainer``), then:

- the loader alone: ``vqtok.train.loader.batch_stream`` over the recipe's batches, as the training loop draws
  them, with each worker count of ``--workers``; the first batch (worker start-up, the first files opened)
  is left out and the rate is the median of the time between batches over the next ``--batches``;
- the model alone: the optimisation step on one batch (already in memory), the median over ``--steps`` after
  two untimed ones (k-means initialisation happens in the first).

Both are printed as examples per second, with their ratio: the loader must stay ahead of the model (a
ratio well above 1) or the step waits for data. The two run one after the other, never together, so on a
machine where the model uses every core the ratio is what the loader could give if it had them.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import torch
from common import ROOT, on_samples_option, samples_flags

from vqtok import config as cfg
from vqtok.plugin.registry import get_modality
from vqtok.train import Trainer
from vqtok.train.loader import auto_workers, batch_stream

DEFAULT_RECIPES = ["speech-8k-voices", "photo-8x"]


def loader_rate(make, batches: int, workers: int) -> float:
    """Median batches per second of ``batch_stream`` after its first batch."""
    gaps, last = [], None
    for _ in batch_stream(make, 0, batches + 1, workers):
        now = time.perf_counter()
        if last is not None:
            gaps.append(now - last)
        last = now
    return 1.0 / statistics.median(gaps)


def step_rate(trainer: Trainer, steps: int) -> float:
    """Median optimisation steps per second on one batch already on the device."""
    sync = torch.cuda.synchronize if trainer.device.type == "cuda" else (lambda: None)
    batch = trainer.batch(0)
    trainer.model.train()
    times = []
    for i in range(steps + 2):
        sync()
        t = time.perf_counter()
        trainer.train_step(batch)
        trainer.step += 1
        sync()
        if i >= 2:
            times.append(time.perf_counter() - t)
    return 1.0 / statistics.median(times)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--recipes", nargs="*", default=DEFAULT_RECIPES, help="recipe names (recipes/NAME.toml) or paths")
    ap.add_argument("--workers", default="0,1,2", help="worker counts to measure, comma-separated")
    ap.add_argument("--batches", type=int, default=40, help="timed batches per worker count")
    ap.add_argument("--steps", type=int, default=6, help="timed optimisation steps")
    ap.add_argument("--device", default="cpu")
    on_samples_option(ap)
    args = ap.parse_args()
    counts = [int(w) for w in args.workers.split(",")]
    device = torch.device(args.device)
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} CPUs, device {device}, "
        f"train.workers=auto gives {auto_workers(device)} here; load average "
        f"{', '.join(f'{v:.1f}' for v in os.getloadavg())}\n"
    )
    print(
        f"{'recipe':<20}{'batch':>6}{'model ex/s':>12}"
        + "".join(f"{f'{w} workers ex/s':>16}{'ratio':>7}" for w in counts)
    )
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.recipes:
            path = Path(name) if Path(name).suffix else ROOT / "recipes" / f"{name}.toml"
            recipe = cfg.read_recipe(path)
            flags = samples_flags(recipe) if args.on_samples else {}
            config = cfg.resolve(recipe, flags={**flags, "train.device": args.device}, get_modality=get_modality)
            if not Path(config.data).exists():
                print(f"{path.stem:<20}skipped: no data at {config.data}")
                continue
            trainer = Trainer(config, get_modality(config.modality), Path(tmp) / f"{path.stem}.safetensors")
            size = config.train.batch_size
            model = step_rate(trainer, args.steps) * size
            row = f"{path.stem:<20}{size:>6}{model:>12.1f}"
            for w in counts:
                loaded = loader_rate(trainer.batch_maker(), args.batches, w) * size
                row += f"{loaded:>16.1f}{loaded / model:>7.1f}"
            print(row, flush=True)
    print(
        "\nex/s: training examples per second; ratio: the loader's rate over the model's (above 1: the "
        "loader keeps up)."
    )


if __name__ == "__main__":
    main()
