"""``vqtok info``: what a model file holds, as a table on stderr or JSON on stdout."""

from __future__ import annotations

import json
import os
import math
from pathlib import Path

from rich.console import Console
from rich.table import Table

from .errors import VqtokError
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
        entry = {"channels": spec["channels"], "hop": spec["hop"], "discrete": sizes is not None,
                 "bits_per_position": sum(math.log2(k) for k in sizes) if sizes else None}
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
        "parameters": sum(t.numel() for k, t in mf.section("model").items() if ".codebook" not in k
                           and not k.split(".")[-1].startswith(("ema_", "initialized"))),
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


def describe_model(path: Path, as_json: bool, console: Console) -> None:
    try:
        report = model_report(path)
        if as_json:
            print(json.dumps(report, indent=2, sort_keys=True))
        else:
            _print_table(path, report, console)
    except (KeyError, IndexError, TypeError, AttributeError) as e:
        raise VqtokError(f"{path}: incomplete vqtok metadata (missing or malformed {e})") from e


def _latent_rows(report: dict) -> list[tuple[str, str]]:
    d = report["decode"]
    rows = []
    for name, r in report["latents"].items():
        if r["discrete"]:
            sizes = d["latents"][name]["codebook_sizes"]
            what = f"{r['channels']} codebook(s) x {sizes[0]} entries, dim {d.get('latent_dim', '?')}"
        else:
            what = f"continuous, {r['channels']} float32 values per position"
        where = (f"{r['positions_per_second']:g} positions/s" if "positions_per_second" in r else
                 f"{r['positions_per_image']} positions/image" if "positions_per_image" in r else "")
        rows.append((f"latents ({name})", f"{what}; hop {r['hop']}" + (f", {where}" if where else "")))
    return rows


def _prior_rows(prior: dict | None) -> list[tuple[str, str]]:
    if not prior:
        return [("prior", "none (vae/cvae sample directly; vqvae/vqvae2: `vqtok train-prior`)")]
    o, t = prior["options"], prior.get("training", {})
    labels = prior.get("label_names") or []
    kind = f"class-conditional ({', '.join(labels)})" if labels else "unconditional"
    rows = [("prior", f"gated PixelCNN over {', '.join(prior['levels'])}: {o['layers']} layers x {o['width']} "
                      f"channels, kernel {o['kernel']}; {kind}; trained {t.get('steps')} steps in "
                      f"{t.get('seconds', 0):.0f} s" + ("" if t.get("completed", True) else " (interrupted)")
                      + _kept(t))]
    return rows + entropy_rows(prior["entropy"]) if "entropy" in prior else rows


def _kept(training: dict) -> str:
    kept = training.get("kept", {}).get("step")
    return f"; kept the weights of step {kept} (lowest held-out bits)" if kept not in (None, training.get("steps")) else ""


def entropy_rows(report: dict) -> list[tuple[str, str]]:
    """A prior's entropy report (:func:`vqtok.prior.entropy.entropy_report`) as ``(what, value)`` rows."""
    bits = report["bits_per_code"]
    rows = [(f"bits per code ({name})", f"prior {bits['prior'][name]:.3f}, unigram {bits['unigram'][name]:.3f}, "
                                        f"uniform {bits['uniform'][name]:.3f}")
            for name in report.get("levels", bits["prior"])]
    if "bitrate" in report:
        rate, unit = report["bitrate"], report["unit"]
        rows.append(("entropy-coded rate", f"{rate['prior']:.1f} {unit} with the prior, {rate['unigram']:.1f} "
                                           f"unigram, {rate['uniform']:.1f} raw (log2 K per code)"))
    rows.append(("measured on", report["held_out"]))
    return rows


def _started_from(init: str, lineage: dict | None) -> str:
    """The chain of models a fine-tuned one started from, by file name, newest first: ``a.safetensors
    (6000 steps), from b.safetensors (...)``: the folders were those of the machine that trained it."""
    if not lineage:
        return init
    parts = []
    while lineage:
        steps = f" ({lineage['steps']} steps)" if lineage.get("steps") else ""
        parts.append(f"{Path(lineage.get('file', '?')).name}{steps}")
        lineage = lineage.get("started_from")
    named = f"{init}: " if init.startswith("@") else ""  # a shipped model, by the name it was asked for
    return named + ", from ".join(parts)


def _print_table(path: Path, report: dict, console: Console) -> None:
    d, t = report["decode"], report["training"]
    table = Table(title=str(path), show_header=False)
    table.add_column(style="bold")
    table.add_column()
    rows = [("about", report["about"])] if report["about"] else []
    if report["config"].get("init"):
        rows.append(("fine-tuned from", _started_from(report["config"]["init"], t.get("started_from"))))
    rows += [("family", report["family"]), ("modality", report["modality"]),
            ("model hash", report["model_hash"]), ("parameters", f"{report['parameters']:,}")]
    if report["export"]:
        e = report["export"]
        rows.append(("stored as", f"{e['dtype']} weights, float32 codebooks (`vqtok export` of {e['from_file']}, "
                                  f"model {e['from_model_hash']})"))
    rows += _latent_rows(report)
    rows += list(data_axes(d)[2].items())
    if "bitrate_bps" in report:
        rows.append(("bitrate", f"{report['bitrate_bps']:g} bit/s (raw, log2 K per code)"))
    if "bits_per_image" in report:
        size = data_axes(d)[1] or []
        per_element = report["bits_per_image"] / max(1, math.prod(size))
        rows.append(("bits per item", f"{report['bits_per_image']:g} per {' x '.join(map(str, size))}, "
                                      f"{per_element:.4g} per element (raw, log2 K per code)"))
    if d.get("likelihood"):
        rows.append(("likelihood", d["likelihood"]))
    if d.get("label_names"):
        rows.append(("labels", ", ".join(d["label_names"])))
    final = t.get("final", {})
    diag = t.get("diagnostics", {})
    rows += [
        ("trained", f"{t.get('steps')} steps, {t.get('seconds', 0):.0f} s on {t.get('device')}"
                    + ("" if t.get("completed", True) else " (interrupted)")),
        ("data", f"{os.path.normpath(t.get('data'))} ({t.get('files')} files)" if t.get("data") else "?"),
        ("final loss", f"{final.get('loss', float('nan')):.4f}"),
    ]
    if "elbo" in final:
        rows.append(("ELBO (train)", f"{final['elbo']:.2f} nats = {final.get('nll_recon', float('nan')):.2f} "
                                     f"reconstruction + {final['kl']:.2f} KL per example"))
    if "active_units" in diag:
        rows.append(("active units", f"{diag['active_units']} of {diag.get('latent_dim', '?')} "
                                     "(Var over the data of E_q(z_u) > 0.01)"))
    if "recon" in final:
        rows.append(("reconstruction loss", f"{final['recon']:.4f}"))
    perplexity = [f"{k.replace('perplexity', '')} {final[k]:.1f}" for k in sorted(final) if "perplexity" in k]
    usage = [f"{k.replace('usage', '')} {final[k]:.0%}" for k in sorted(final) if "usage" in k]
    if perplexity:
        rows += [("perplexity", ", ".join(perplexity)), ("codes alive", ", ".join(usage) or "-")]
    rows += _prior_rows(report["prior"])
    rows.append(("written by", f"vqtok {report['vqtok_version']} (format {report['format_version']})"))
    for k, v in rows:
        table.add_row(k, str(v))
    console.print(table)
    cfg = report["config"]
    shown = ("model", "train", cfg["modality"], cfg["model"]["arch"])
    console.print("config: " + json.dumps({k: cfg[k] for k in shown if k in cfg}), highlight=False, soft_wrap=True)
