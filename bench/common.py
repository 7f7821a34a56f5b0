"""Helpers shared by the benchmarks: medians, a default model file, long test recordings."""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import soundfile as sf

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "vqtok" / "samples"
SAMPLE_DATA = {"image": SAMPLES / "images", "audio": SAMPLES / "speech"}  # shipped training data per modality


def on_samples_option(ap) -> None:
    ap.add_argument(
        "--on-samples",
        action="store_true",
        help="train every recipe on the samples vqtok ships "
        "(vqtok/samples/images or speech) instead of its own data: for a speed check on a machine "
        "without bench/data (a GPU machine)",
    )


def samples_flags(recipe: dict) -> dict:
    """Flags that train ``recipe`` on the shipped samples of its modality."""
    return {"data": str(SAMPLE_DATA[recipe.get("modality", "image")])}


def allocator_option(ap) -> None:
    """``--system-allocator``: measure without the allocator settings the vqtok CLI applies."""
    ap.add_argument(
        "--system-allocator",
        action="store_true",
        help="leave glibc's malloc settings alone (the vqtok CLI applies vqtok.allocator's)",
    )


def apply_allocator(args) -> str:
    """Apply :mod:`vqtok.allocator`'s settings unless ``--system-allocator``; a line saying which hold."""
    from vqtok.allocator import keep_freed_memory

    tuned = not args.system_allocator and keep_freed_memory()
    return f"allocator: {'vqtok.allocator settings, as the vqtok CLI' if tuned else 'the system defaults'}"


def median_time(fn, repeats: int = 5, warmup: int = 1) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def vqtok_cli(*args) -> None:
    subprocess.run([sys.executable, "-m", "vqtok", *map(str, args)], check=True, stdout=subprocess.DEVNULL)


def default_model(modality: str, folder: Path) -> Path:
    """A model file of the modality's default configuration (1 training step: speed needs no quality)."""
    out = folder / f"default-{modality}.safetensors"
    if not out.exists():
        data = SAMPLES / ("speech" if modality == "audio" else "images")
        vqtok_cli("train", "--modality", modality, "--data", data, "-o", out, "--steps", 1)
    return out


def speech(sample_rate: int) -> np.ndarray:
    """All the recorded speech in the samples (WAV and FLAC, by name), resampled to ``sample_rate`` by
    vqtok's audio loader: float32 ``(T,)``."""
    from vqtok.plugin.registry import get_modality

    audio = get_modality("audio")
    options = audio.config_class(sample_rate=sample_rate)
    files = sorted(p for p in (SAMPLES / "speech").iterdir() if p.suffix.lower() in (".wav", ".flac"))
    return np.concatenate([audio.load(p, options)[0].numpy() for p in files])


def speech_clip(seconds: float, sample_rate: int) -> np.ndarray:
    """:func:`speech` at ``sample_rate``, repeated or cut to ``seconds``: float32 ``(T,)``."""
    x = speech(sample_rate)
    total = int(seconds * sample_rate)
    return np.tile(x, -(-total // len(x)))[:total]


def speech_recording(path: Path, minutes: float, sample_rate: int) -> Path:
    """:func:`speech` at ``sample_rate``, repeated to ``minutes``, written as 16-bit WAV block by block."""
    if path.exists():
        return path
    x = speech(sample_rate)
    total = int(minutes * 60 * sample_rate)
    with sf.SoundFile(path, "w", samplerate=sample_rate, channels=1, subtype="PCM_16") as f:
        written = 0
        while written < total:
            piece = x[: total - written]
            f.write(piece)
            written += len(piece)
    return path
