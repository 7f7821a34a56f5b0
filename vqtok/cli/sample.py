"""``vqtok sample``."""

from __future__ import annotations

from pathlib import Path

import typer

from ..errors import UsageError
from .app import MODEL_HELP, _model_path, app, err, path_option


# ---- sample -------------------------------------------------------------------------------------------
@app.command()
def sample(
    model: Path | None = path_option(None, "--model", help=MODEL_HELP),
    out: Path = path_option(..., "--out", "-o", help="A file (.png grid, .wav for -n 1) or a folder."),
    n: int = typer.Option(8, "-n", help="Number of samples."),
    label: str | None = typer.Option(
        None, "--label", help="Class to sample (cvae, class-conditional prior); default: every class in turn."
    ),
    temperature: float = typer.Option(
        1.0,
        "--temperature",
        help="vae/cvae: scale of the prior's standard "
        "deviation; vqvae/vqvae2: divides the prior's logits (0: likeliest code).",
    ),
    top_k: int = typer.Option(0, "--top-k", help="vqvae/vqvae2: draw each code from the k likeliest (0: all)."),
    seed: int = typer.Option(0, "--seed", help="Random seed: the same seed gives the same samples."),
    seconds: float | None = typer.Option(
        None,
        "--seconds",
        help="Length of samples of data with a time axis, e.g. audio (default: the training segment).",
    ),
    prior: Path | None = path_option(
        None, "--prior", help="Prior file from `train-prior -o` (default: the prior in the model file)."
    ),
    device: str = typer.Option("cpu", "--device", help="cpu, cuda or cuda:N."),
):
    """Generate new images or sounds: vae/cvae from z ~ N(0, temperature^2 I); vqvae/vqvae2 by drawing
    codes from their PixelCNN prior (`vqtok train-prior`), top level first, then decoding them.

    -o grid.png writes one picture of all samples; -o FOLDER writes sample-000.png (.wav) ... files,
    named with the label for a conditional model or prior.
    """
    model = _model_path(model, [out])
    from ..codec import Tokenizer
    from ..codec.sample_files import sample_targets, write_samples

    tok = Tokenizer.load(model, device=device, prior=prior)
    size = None
    if seconds is not None:
        rate = tok.modality.time_axis(tok.config.options)
        if not rate:
            raise UsageError(f"--seconds applies to data with a time axis; the {tok.modality.name} modality has none")
        if seconds <= 0:
            raise UsageError("--seconds must be positive")
        across = (tok.modality.example_size(tok.config.options) or [])[:-1]  # the other axes, as trained
        size = [*across, max(1, round(seconds * rate))]
    _, names = tok.sample_labels(label, max(n, 1))
    cycled = label is None and any(names)
    one, files = sample_targets(out, n, tok.modality, names[:n])
    x = tok.sample(n, size, label, temperature, seed, top_k)
    write_samples(x, one, files, tok.modality, tok.config.options)
    what = f" of label {label}" if label else (" cycling through its labels" if cycled else "")
    err.print(f"wrote {n} sample(s){what} to {out}")
