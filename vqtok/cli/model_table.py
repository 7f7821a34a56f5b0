"""``vqtok info``'s table (stderr) or JSON (stdout) of a model file's facts (:func:`vqtok.info.model_report`),
and the prior's entropy rows that ``train-prior`` prints as well."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from ..errors import VqtokError
from ..info import data_axes, model_report


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
            what = f"{r['depth']} codebook(s) x {sizes[0]} entries, dim {d.get('latent_dim', '?')}"
        else:
            what = f"continuous, {r['depth']} float32 values per position"
        where = (
            f"{r['positions_per_second']:g} positions/s"
            if "positions_per_second" in r
            else f"{r['positions_per_image']} positions/image"
            if "positions_per_image" in r
            else ""
        )
        rows.append((f"latents ({name})", f"{what}; hop {r['hop']}" + (f", {where}" if where else "")))
    return rows


def _prior_rows(prior: dict | None) -> list[tuple[str, str]]:
    if not prior:
        return [("prior", "none (vae/cvae sample directly; vqvae/vqvae2: `vqtok train-prior`)")]
    o, t = prior["options"], prior.get("training", {})
    labels = prior.get("label_names") or []
    kind = f"class-conditional ({', '.join(labels)})" if labels else "unconditional"
    if labels and o.get("label_dropout"):
        kind += f", {o['label_dropout']:g} of its training crops without a label"
    rows = [
        (
            "prior",
            f"gated PixelCNN over {', '.join(prior['levels'])}: {o['layers']} layers x {o['width']} "
            f"channels, kernel {o['kernel']}; {kind}; trained {t.get('steps')} steps in "
            f"{t.get('seconds', 0):.0f} s" + ("" if t.get("completed", True) else " (interrupted)") + _kept(t),
        )
    ]
    return rows + entropy_rows(prior["entropy"]) if "entropy" in prior else rows


def _kept(training: dict) -> str:
    kept = training.get("kept", {}).get("step")
    return (
        f"; kept the weights of step {kept} (lowest held-out bits)" if kept not in (None, training.get("steps")) else ""
    )


def entropy_rows(report: dict) -> list[tuple[str, str]]:
    """A prior's entropy report (:func:`vqtok.prior.entropy.entropy_report`) as ``(what, value)`` rows."""
    bits = report["bits_per_code"]
    unlabelled = "prior_no_label" in bits
    rows = [
        (
            f"bits per code ({name})",
            f"prior {bits['prior'][name]:.3f}"
            + (f" (no label {bits['prior_no_label'][name]:.3f})" if unlabelled else "")
            + f", unigram {bits['unigram'][name]:.3f}, uniform {bits['uniform'][name]:.3f}",
        )
        for name in report.get("levels", bits["prior"])
    ]
    if "bitrate" in report:
        rate, unit = report["bitrate"], report["unit"]
        no_label = f" ({rate['prior_no_label']:.1f} given no label)" if unlabelled else ""
        rows.append(
            (
                "entropy-coded rate",
                f"{rate['prior']:.1f} {unit} with the prior{no_label}, "
                f"{rate['unigram']:.1f} unigram, {rate['uniform']:.1f} raw (log2 K per code)",
            )
        )
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
    rows = [("about", escape(report["about"]))] if report["about"] else []  # words, not rich markup
    if report["config"].get("init"):
        rows.append(("fine-tuned from", _started_from(report["config"]["init"], t.get("started_from"))))
    rows += [
        ("family", report["family"]),
        ("modality", report["modality"]),
        ("model hash", report["model_hash"]),
        ("parameters", f"{report['parameters']:,}"),
    ]
    if report["export"]:
        e = report["export"]
        rows.append(
            (
                "stored as",
                f"{e['dtype']} weights, float32 codebooks (`vqtok export` of {e['from_file']}, "
                f"model {e['from_model_hash']})",
            )
        )
    rows += _latent_rows(report)
    rows += list(data_axes(d)[2].items())
    if "bitrate_bps" in report:
        rows.append(("bitrate", f"{report['bitrate_bps']:g} bit/s (raw, log2 K per code)"))
    if "bits_per_image" in report:
        size = data_axes(d)[1] or []
        per_element = report["bits_per_image"] / max(1, math.prod(size))
        rows.append(
            (
                "bits per item",
                f"{report['bits_per_image']:g} per {' x '.join(map(str, size))}, "
                f"{per_element:.4g} per element (raw, log2 K per code)",
            )
        )
    if d.get("likelihood"):
        rows.append(("likelihood", d["likelihood"]))
    if d.get("label_names"):
        rows.append(("labels", ", ".join(d["label_names"])))
    final = t.get("final", {})
    diag = t.get("diagnostics", {})
    rows += [
        (
            "trained",
            f"{t.get('steps')} steps, {t.get('seconds', 0):.0f} s on {t.get('device')}"
            + ("" if t.get("completed", True) else " (interrupted)"),
        ),
        ("data", f"{os.path.normpath(t.get('data'))} ({t.get('files')} files)" if t.get("data") else "?"),
        ("final loss", f"{final.get('loss', float('nan')):.4f}"),
    ]
    if "elbo" in final:
        rows.append(
            (
                "ELBO (train)",
                f"{final['elbo']:.2f} nats = {final.get('nll_recon', float('nan')):.2f} "
                f"reconstruction + {final['kl']:.2f} KL per example",
            )
        )
    if "active_units" in diag:
        rows.append(
            (
                "active units",
                f"{diag['active_units']} of {diag.get('latent_dim', '?')} (Var over the data of E_q(z_u) > 0.01)",
            )
        )
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
