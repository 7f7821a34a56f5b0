"""``vqtok eval`` and ``vqtok plot``."""

from __future__ import annotations

from pathlib import Path

import typer

from ..errors import UsageError
from .app import MODEL_HELP, _model_path, app, err, path_argument, path_option


# ---- eval and plot ------------------------------------------------------------------------------------
@app.command("eval")
def eval_command(
    data: Path = path_option(
        ...,
        "--data",
        "-d",
        help="Held-out files: a folder (class sub-folders give the "
        "labels of conditional models and priors) or one file.",
    ),
    model: Path | None = path_option(None, "--model", help=MODEL_HELP),
    iw_samples: int = typer.Option(
        100,
        "--iw-samples",
        "-k",
        help="vae/cvae: importance samples per file for the NLL (Burda et al. report k = 5000).",
    ),
    as_json: bool = typer.Option(False, "--json", help="Also print the report as JSON on stdout."),
    plots: Path | None = path_option(
        None,
        "--plots",
        help="Folder for pictures: reconstructions (image grid; audio waveforms and spectrograms) and code usage.",
    ),
    prior: Path | None = path_option(
        None, "--prior", help="Prior file from `train-prior -o` (default: the prior in the model file)."
    ),
    n_q: int | None = typer.Option(None, "--n-q", help="Residual VQ: use only the first N codebooks."),
    seed: int = typer.Option(
        0, "--seed", help="Seed of the importance samples and of the binarization of data for binarized-Bernoulli VAEs."
    ),
    batch_size: int = typer.Option(64, "--batch-size", help="Images decoded together."),
    device: str = typer.Option("cpu", "--device", help="cpu, cuda or cuda:N."),
):
    """Measure a model on held-out files: reconstruction quality (images: MSE, PSNR; audio: SI-SDR,
    multi-resolution STFT and log-mel distances), the likelihood (vae/cvae: ELBO and importance-sampled
    NLL; vqvae/vqvae2: a bound from the reconstruction and the codes' NLL under the prior, or log K per
    code without one), per-codebook perplexity and share of codes used, and the raw and entropy-coded
    bitrates. The table goes to stderr; --json prints the same on stdout.
    """
    model = _model_path(model, [data])
    if plots is not None and plots.exists() and not plots.is_dir():
        raise UsageError(f"--plots {plots}: exists and is not a folder")
    if batch_size < 1:
        raise UsageError("--batch-size must be at least 1")
    import json

    from ..codec import Tokenizer
    from ..evaluation import EvalOptions, evaluate
    from ..evaluation.table import print_report

    tok = Tokenizer.load(model, device=device, prior=prior)
    report = evaluate(tok, data, EvalOptions(iw_samples, seed, n_q, batch_size), err, plots)
    print_report(report, err, f"vqtok eval {model}")
    for path in report.get("plots", []):
        err.print(f"wrote {path}")
    if as_json:
        print(json.dumps(report, indent=2))


@app.command()
def plot(
    logs: list[Path] = path_argument(
        ...,
        help="Metrics logs (NAME.metrics.jsonl, written beside the model "
        "while it trains; train-prior writes NAME.prior.metrics.jsonl).",
    ),
    out: Path = path_option(..., "--out", "-o", help="The PNG to write."),
    metrics: str | None = typer.Option(
        None, "--metrics", help="Comma-separated metrics to draw (default: all in the log)."
    ),
):
    """Draw training curves: one panel per metric (loss, reconstruction, perplexity per codebook, KL,
    held-out bits, ...) against the step. Several logs are overlaid to compare runs."""
    if out.suffix.lower() != ".png":
        raise UsageError(f"--out {out}: vqtok plot writes PNG; name it .png")
    from ..plots import training_curves

    drawn = training_curves(logs, out, [m.strip() for m in metrics.split(",")] if metrics else None)
    err.print(f"wrote {out} ({', '.join(drawn)})")
