"""What a model file holds, as facts (a dict): its latents, their rates and bitrate, the data the modality
recorded, training and prior. ``vqtok info`` renders them (:mod:`vqtok.cli.model_table`)."""

from __future__ import annotations

import math
from pathlib import Path

from .files.model import read_model


def data_axes(decode: dict) -> tuple[float | None, list[int] | None, dict[str, str]]:
    """The facts a model file records about its modality's data (:func:`vqtok.modality.stored_facts`):
    input elements per second along the last axis (None: no time axis), the training example's size per
    axis, and the facts ``vqtok info`` shows. Files written before these were recorded hold the built-in
    modalities' ``sample_rate`` or ``image_size`` instead, read here and nowhere else."""
    if "elements_per_second" in decode:
        return decode["elements_per_second"], decode.get("example_size"), decode.get("facts") or {}
    if decode.get("sample_rate"):
        return decode["sample_rate"], None, {"sample rate": f"{decode['sample_rate']} Hz"}
    if decode.get("image_size"):
        size = decode["image_size"]
        return None, [size, size], {"image size": f"{size} x {size}, {decode.get('channels')} channel(s)"}
    return None, None, {}


def latent_rates(decode: dict) -> dict[str, dict]:
    """Per latent array: positions per second (data with a time axis: those along it times those across
    the other axes of a training example) or per item (the positions of a training example), and bits per
    position (discrete)."""
    per_second, size, _ = data_axes(decode)
    out = {}
    for name, spec in decode["latents"].items():
        sizes = spec.get("codebook_sizes")
        entry = {
            "depth": spec["depth"] if "depth" in spec else spec["channels"],  # "channels" before 2026-12-07
            "hop": spec["hop"],
            "discrete": sizes is not None,
            "bits_per_position": sum(math.log2(k) for k in sizes) if sizes else None,
        }
        across = math.prod(math.ceil(n / spec["hop"]) for n in (size or [])[:-1])
        if per_second:
            entry["positions_per_second"] = per_second / spec["hop"] * across
        elif size:
            entry["positions_per_image"] = across * math.ceil(size[-1] / spec["hop"])
        out[name] = entry
    return out


def rate_unit(rates: dict[str, dict]) -> tuple[str, str] | None:
    """The key of :func:`latent_rates` that every latent has and its bitrate unit: positions per second
    ("bit/s") or per image ("bits/image"); None when the latents have neither in common."""
    for key, unit in (("positions_per_second", "bit/s"), ("positions_per_image", "bits/image")):
        if all(key in r for r in rates.values()):
            return key, unit
    return None


def model_report(path: Path) -> dict:
    mf = read_model(path)
    meta = mf.meta
    decode = meta["decode"]
    rates = latent_rates(decode)
    report = {
        "file": str(path),
        "family": meta.get("family"),
        "modality": meta.get("modality"),
        "format_version": meta.get("format_version"),
        "vqtok_version": meta.get("vqtok_version"),
        "model_hash": meta.get("model_hash"),
        "about": meta["config"].get("about", ""),
        "parameters": sum(
            t.numel()
            for k, t in mf.section("model").items()
            if ".codebook" not in k and not k.split(".")[-1].startswith(("ema_", "initialized"))
        ),
        "decode": decode,
        "latents": rates,
        "config": meta["config"],
        "training": meta["training"],
        "prior": meta.get("prior") or None,
        "export": meta.get("export") or None,
    }
    discrete = [r for r in rates.values() if r["discrete"]]
    if discrete and all("positions_per_second" in r for r in discrete):
        report["bitrate_bps"] = sum(r["positions_per_second"] * r["bits_per_position"] for r in discrete)
    if discrete and all("positions_per_image" in r for r in discrete):
        report["bits_per_image"] = sum(r["positions_per_image"] * r["bits_per_position"] for r in discrete)
    return report
