"""Training speed of the default image and audio configurations and of every recipe: median steps per second.

    python bench/bench_train.py [--device cpu|cuda] [--steps 8] [--warmup 2] [--recipes NAME ...] [--no-defaults]
                                [--system-allocator] [--compile]

Each row builds the run as ``vqtok train`` does (``vqtok.train.Trainer`` on the resolved configuration:
defaults, the modality's defaults, the recipe) and drives its own loop: ``--warmup`` untimed steps
(k-means initialisation happens in the first), then ``--steps`` timed ones. A timed step is what the
training loop does per step: draw the batch (read and crop the examples) and take the optimisation step;
the step alone is timed too. The allocator settings ``vqtok train`` applies (:mod:`vqtok.allocator`) hold,
unless ``--system-allocator``. Figures are medians over the timed steps; examples/s is the batch size times
steps/s. On CUDA the loop runs under bf16 autocast, as ``vqtok train`` does.

``--compile`` measures each row twice, eager and with ``train.compile = true`` (``torch.compile`` of the
encoder and decoder, :mod:`vqtok.speed`; the compilation happens in the warm-up steps and is timed apart),
and prints the compiled optimisation steps/s and their ratio to the eager ones measured in the same run.

``--recipes`` picks recipes by name (``audio-rvq``) or path; default: every ``recipes/*.toml``. A recipe
whose data folder is missing (``mnist-vae`` needs ``python bench/data.py mnist``) is listed as skipped.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import tempfile
import time
from pathlib import Path

import torch
from common import ROOT, SAMPLE_DATA, allocator_option, apply_allocator, on_samples_option, samples_flags
from torch.utils.flop_counter import FlopCounterMode

from vqtok import config as cfg
from vqtok.plugin.registry import get_modality
from vqtok.train import Trainer

RECIPES = ROOT / "recipes"


def measure(config: cfg.RunConfig, steps: int, warmup: int, out: Path) -> dict:
    """Median seconds per whole step (batch + optimisation) and per optimisation step, and facts of the run."""
    trainer = Trainer(config, get_modality(config.modality), out)
    trainer.model.train()
    sync = torch.cuda.synchronize if trainer.device.type == "cuda" else (lambda: None)
    whole, step_only = [], []
    for i in range(warmup + steps):
        sync()
        t0 = time.perf_counter()
        batch = trainer.batch(trainer.step)
        sync()
        t1 = time.perf_counter()
        trainer.train_step(batch)
        trainer.step += 1  # as the loop counts it: lr warm-up, KL warm-up and quantizer dropout read it
        sync()
        t2 = time.perf_counter()
        if i >= warmup:
            whole.append(t2 - t0)
            step_only.append(t2 - t1)
    x = batch[0]
    memory = torch.cuda.max_memory_allocated() / 2**30 if trainer.device.type == "cuda" else None
    flops = float("nan")
    if not config.train.compile:  # the same arithmetic either way; counted on the eager modules
        with FlopCounterMode(display=False) as counter:  # one more step, counted: forward and backward
            trainer.train_step(batch)
        flops = counter.get_total_flops()
    return {
        "whole": statistics.median(whole),
        "step": statistics.median(step_only),
        "batch": tuple(x.shape),
        "gpu_gib": memory,
        "tflop_per_step": flops / 1e12,
        "params": sum(p.numel() for p in trainer.model.parameters()),
        "files": len(trainer.data),
    }


def recipe_paths(names: list[str] | None) -> list[Path]:
    if not names:
        return sorted(RECIPES.glob("*.toml"))
    paths = []
    for name in names:
        p = Path(name)
        if not p.suffix:
            p = RECIPES / f"{name}.toml"
        if not p.exists():
            known = ", ".join(q.stem for q in sorted(RECIPES.glob("*.toml")))
            raise SystemExit(f"--recipes: no recipe {name!r}; known: {known}")
        paths.append(p)
    return paths


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--steps", type=int, default=8, help="timed steps per row")
    ap.add_argument("--warmup", type=int, default=2, help="untimed steps first (k-means init in the first)")
    ap.add_argument("--recipes", nargs="*", help="recipe names or paths (default: every recipes/*.toml)")
    ap.add_argument("--no-defaults", action="store_true", help="skip the default image and audio configurations")
    on_samples_option(ap)
    ap.add_argument(
        "--peak-tflops",
        type=float,
        default=None,
        help="the device's peak TFLOP/s (e.g. 790 for an "
        "H200's bf16 matrix products): adds the share of it the training step reaches",
    )
    ap.add_argument("--compile", action="store_true", help="also measure with train.compile = true, and the ratio")
    allocator_option(ap)
    args = ap.parse_args()
    started = time.perf_counter()
    print(apply_allocator(args))
    load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    print(
        f"torch {torch.__version__}, torch.get_num_threads() = {torch.get_num_threads()}, device {args.device}, "
        f"{os.cpu_count()} CPUs, load average {load}; median of {args.steps} timed steps after {args.warmup} "
        f"warm-up\n"
    )

    runs: list[tuple[str, dict | None, dict]] = []  # (name, recipe or None, flags)
    if not args.no_defaults:
        for modality in ("image", "audio"):
            runs.append((f"default {modality}", None, {"modality": modality, "data": str(SAMPLE_DATA[modality])}))
    for path in recipe_paths(args.recipes):
        runs.append((path.stem, cfg.read_recipe(path), {}))

    header = (
        f"{'recipe':<20}{'family':<14}{'modality':<9}{'batch':>6}  {'batch shape':<20}{'params':>11}"
        f"{'steps/s':>9}{'examples/s':>12}{'step only/s':>13}{'loader %':>9}{'TFLOP/s':>9}"
        + (f"{'% peak':>8}" if args.peak_tflops else "")
        + f"{'total s':>9}"
        + (f"{'GPU GiB':>9}" if args.device.startswith("cuda") else "")
        + (f"{'compiled/s':>12}{'ratio':>7}{'compile s':>11}" if args.compile else "")
    )
    print(header, flush=True)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, recipe, flags in runs:
            if args.on_samples and recipe is not None:
                flags = samples_flags(recipe)
            if args.device.startswith("cuda"):
                torch.cuda.reset_peak_memory_stats()
            config = cfg.resolve(recipe, flags={**flags, "train.device": args.device}, get_modality=get_modality)
            family = config.model.arch + (f" n_q={config.model.n_q}" if config.model.n_q > 1 else "")
            if not Path(config.data).exists():
                rows.append(
                    f"{name:<20}{family:<14}{config.modality:<9}{config.train.batch_size:>6}  "
                    f"skipped: no data at {config.data}"
                )
                print(rows[-1], flush=True)
                continue
            t = time.perf_counter()
            r = measure(config, args.steps, args.warmup, Path(tmp) / f"{name.replace(' ', '-')}.safetensors")
            sps = 1.0 / r["whole"]
            rows.append(
                f"{name:<20}{family:<14}{config.modality:<9}{config.train.batch_size:>6}  "
                f"{str(r['batch']):<20}{r['params']:>11,}{sps:>9.2f}{sps * r['batch'][0]:>12.1f}"
                f"{1.0 / r['step']:>13.2f}{100 * (1 - r['step'] / r['whole']):>9.0f}"
                f"{r['tflop_per_step'] / r['step']:>9.3f}"
                + (f"{100 * r['tflop_per_step'] / r['step'] / args.peak_tflops:>8.1f}" if args.peak_tflops else "")
                + f"{time.perf_counter() - t:>9.0f}"
                + (f"{r['gpu_gib']:>9.2f}" if r["gpu_gib"] is not None else "")
            )
            if args.compile:
                compiled = dataclasses.replace(config, train=dataclasses.replace(config.train, compile=True))
                t = time.perf_counter()
                c = measure(compiled, args.steps, args.warmup, Path(tmp) / f"{name.replace(' ', '-')}-c.safetensors")
                rows[-1] += f"{1.0 / c['step']:>12.2f}{r['step'] / c['step']:>7.2f}{time.perf_counter() - t:>11.0f}"
            print(rows[-1], flush=True)
    print(
        f"\nsteps/s and examples/s: whole steps (batch drawn from the data + optimisation step); "
        f"step only/s: the optimisation step alone; loader %: the share of a whole step spent drawing the batch in the "
        f"training process (what data-loading workers take off it); TFLOP/s: the step's convolution and matrix "
        f"FLOPs (torch's FlopCounterMode, forward and backward) times step only/s, and % peak its share of "
        f"--peak-tflops (how FLOP-bound the step is); GPU GiB: peak memory allocated; total s: the row's wall "
        f"time with set-up and warm-up; "
        f"compiled/s, ratio, compile s: the optimisation step with train.compile, its speed-up over the eager "
        f"one, and that row's wall time with the compilation. "
        f"Run took {time.perf_counter() - started:.0f} s; load average now "
        f"{', '.join(f'{v:.1f}' for v in os.getloadavg())}"
    )


if __name__ == "__main__":
    main()
