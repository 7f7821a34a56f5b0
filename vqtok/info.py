"""``vqtok info``: what a model file holds, as a table on stderr or JSON on stdout."""

from __future__ import annotations

import json
import math
from pathlib import Path

from rich.console import Console
from rich.table import Table

from .errors import VqtokError
from .formats import read_model


def model_report(path: Path) -> dict:
    mf = read_model(path)
    meta = mf.meta
    decode = meta["decode"]
    sizes = decode.get("codebook_sizes", [])
    bits = sum(math.log2(k) for k in sizes)
    report = {
        "file": str(path),
        "family": meta.get("family"),
        "modality": meta.get("modality"),
        "format_version": meta.get("format_version"),
        "vqtok_version": meta.get("vqtok_version"),
        "model_hash": meta.get("model_hash"),
        "parameters": sum(t.numel() for k, t in mf.section("model").items() if ".codebook" not in k
                           and not k.split(".")[-1].startswith(("ema_", "initialized"))),
        "decode": decode,
        "bits_per_code_position": bits,
        "config": meta["config"],
        "training": meta["training"],
    }
    if decode.get("sample_rate"):
        rate = decode["sample_rate"] / decode["hop"]
        report["codes_per_second"] = rate
        report["bitrate_bps"] = rate * bits
    elif decode.get("image_size"):
        side = decode["image_size"] // decode["hop"]
        report["bits_per_image"] = side * side * bits
    return report


def describe_model(path: Path, as_json: bool, console: Console) -> None:
    try:
        report = model_report(path)
        if as_json:
            print(json.dumps(report, indent=2, sort_keys=True))
        else:
            _print_table(path, report, console)
    except (KeyError, IndexError, TypeError) as e:
        raise VqtokError(f"{path}: incomplete vqtok metadata (missing or malformed {e})") from e


def _print_table(path: Path, report: dict, console: Console) -> None:
    d, t = report["decode"], report["training"]
    table = Table(title=str(path), show_header=False)
    table.add_column(style="bold")
    table.add_column()
    rows = [
        ("family", report["family"]), ("modality", report["modality"]),
        ("model hash", report["model_hash"]), ("parameters", f"{report['parameters']:,}"),
        ("codebooks", f"{d['n_q']} x {d['codebook_sizes'][0]} entries, dim {d['latent_dim']}"),
        ("hop / downsampling", str(d["hop"])),
    ]
    if "bitrate_bps" in report:
        rows += [("sample rate", f"{d['sample_rate']} Hz"),
                 ("bitrate", f"{report['codes_per_second']:g} codes/s x {report['bits_per_code_position']:g} "
                             f"bits = {report['bitrate_bps']:g} bit/s")]
    if "bits_per_image" in report:
        side = d["image_size"] // d["hop"]
        rows += [("image size", f"{d['image_size']} x {d['image_size']}, {d['channels']} channel(s)"),
                 ("codes per image", f"{side} x {side} = {report['bits_per_image']:g} bits")]
    if d.get("label_names"):
        rows.append(("labels", ", ".join(d["label_names"])))
    final = t.get("final", {})
    perplexity = [f"{final[k]:.1f}" for k in sorted(final) if k.startswith("perplexity")]
    usage = [f"{final[k]:.0%}" for k in sorted(final) if k.startswith("usage")]
    rows += [
        ("trained", f"{t.get('steps')} steps, {t.get('seconds', 0):.0f} s on {t.get('device')}"
                    + ("" if t.get("completed", True) else " (interrupted)")),
        ("data", f"{t.get('data')} ({t.get('files')} files)"),
        ("final loss", f"{final.get('loss', float('nan')):.4f} (recon {final.get('recon', float('nan')):.4f})"),
        ("perplexity", " ".join(perplexity) or "-"), ("codes alive", " ".join(usage) or "-"),
        ("written by", f"vqtok {report['vqtok_version']} (format {report['format_version']})"),
    ]
    for k, v in rows:
        table.add_row(k, str(v))
    console.print(table)
    cfg = report["config"]
    console.print("config: " + json.dumps({k: cfg[k] for k in ("model", "train", cfg["modality"])}),
                  highlight=False, soft_wrap=True)
