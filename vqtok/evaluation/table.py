"""The ``vqtok eval`` report as a table (stderr)."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table


def report_rows(report: dict) -> list[tuple[str, str]]:
    rows = [
        ("model", f"{report['family']} {report['modality']} model {report['model_hash']}"),
        ("data", f"{report['data']} ({report['files']} files)"),
    ]
    if "n_q" in report:
        rows.append(("codebooks used", f"the first {report['n_q']}"))
    labels = report.get("quality_labels", {})  # the modality's (Modality.quality_labels)
    rows += [(labels.get(k, k), f"{v:.4g}") for k, v in report["quality"].items()]
    if "likelihood" in report:
        lik = report["likelihood"]
        data = "binarized data (one fixed draw)" if lik["binarized"] else "the data"
        rows += [
            ("ELBO", f"{lik['elbo_nats']:.2f} nats ({-lik['elbo_bits_per_dim']:.4f} bits/dim)"),
            (
                "NLL",
                f"{lik['nll_nats']:.2f} ± {lik['nll_stderr_nats']:.2f} nats ({lik['nll_bits_per_dim']:.4f} "
                f"bits/dim), importance-sampled with k = {lik['iw_samples']}, {lik['likelihood']} likelihood "
                f"on {data}; ± one standard error over the files",
            ),
        ]
        fewer = {m: v for m, v in lik["nll_nats_by_k"].items() if int(m) != lik["iw_samples"]}
        if fewer:
            rows.append(
                ("NLL, fewer samples", ", ".join(f"k = {m}: {v:.2f}" for m, v in fewer.items()) + " (the same draws)")
            )
    if "bound" in report:
        b = report["bound"]
        rows.append(
            (
                "NLL bound",
                f"{b['nll_bound_nats']:.2f} nats ({b['bits_per_dim']:.4f} bits/dim) = "
                f"reconstruction {b['recon_nats']:.2f} (Gaussian, sigma {b['recon_sigma']:.4g}) + "
                f"codes {b['code_nats']:.2f} ({b['code_model']})",
            )
        )
    for name, per_q in report.get("codebooks", {}).items():
        for q, c in enumerate(per_q):
            rows.append(
                (
                    f"codebook {name}[{q}]",
                    f"perplexity {c['perplexity']:.1f} of {c['size']}, {c['used']:.0%} of the codes used",
                )
            )
    rate = report.get("bitrate") or {}
    if rate:
        rows.append(("bitrate", f"{rate['raw']:.6g} {rate['unit']} raw (log2 K per code)"))
        if "entropy_coded" in rate:
            rows.append(
                (
                    "entropy-coded",
                    f"{rate['entropy_coded']:.6g} {rate['unit']} under the prior "
                    f"({rate['bits_per_code']:.3f} bits per code on these files)",
                )
            )
    return rows


def print_report(report: dict, console: Console, title: str) -> None:
    table = Table(title=title, show_header=False)
    table.add_column(style="bold")
    table.add_column()
    for k, v in report_rows(report):
        table.add_row(k, v)
    console.print(table)
