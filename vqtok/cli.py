"""The ``vqtok`` command line: thin commands over the library.

stdout carries data only (code files, ``--json``); tables, progress and messages go to stderr. Exit
codes: 0 ok, 1 runtime error (bad file, bad model), 2 usage error, 130 interrupted (143: SIGTERM). Expected errors are
one line; ``--debug`` (or ``VQTOK_DEBUG=1``) shows the traceback. torch is imported only by commands
that need it, so ``--help`` and ``--version`` stay fast.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Optional

import typer
from rich.markup import escape

from . import __version__
from .allocator import keep_freed_memory
from .defaults import MODEL_ENV
from .console import stderr_console
from .errors import UsageError, VqtokError, first_line

err = stderr_console()
app = typer.Typer(
    name="vqtok",
    help="Train image and audio tokenizers and turn files into tokens and back.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

MODEL_HELP = (f"Model file, or @audio / @image / @digits for a shipped model (default: ${MODEL_ENV}, else the "
              "default model of the files' modality).")


# Paths are not checked by typer (its "is not readable" box is a usage error, exit 2): vqtok reads them
# itself and reports a file it may not read as one line, exit 1, like every other unreadable input.
def path_option(*args, **kwargs):
    return typer.Option(*args, readable=False, **kwargs)


def path_argument(*args, **kwargs):
    return typer.Argument(*args, readable=False, **kwargs)


def _version(value: bool):
    if value:
        print(f"vqtok {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version."),
    debug: bool = typer.Option(False, "--debug", help="Show Python tracebacks for errors."),
):
    """Train VQ-VAE, VQ-VAE-2, VAE and CVAE models on your images and audio, encode files to codes
    (or latent means) and decode them back, sample new ones.

    Start with `vqtok quickstart`, then `vqtok train --help`.
    """
    if debug:
        os.environ["VQTOK_DEBUG"] = "1"


def _model_path(model: Optional[Path], files: list[Path] = ()) -> Path:
    """--model, $VQTOK_MODEL, or the shipped default of the modality of ``files`` (vqtok.defaults)."""
    from .defaults import model_path

    return model_path(model, files)


def _overrides(ctx: typer.Context) -> list[str]:
    """The extra ``section.key=value`` arguments of ``train`` and ``train-prior``."""
    for o in ctx.args:
        if "=" not in o:
            raise UsageError(f"unexpected argument {o!r}: overrides look like section.key=value")
    return list(ctx.args)


# ---- plugins ------------------------------------------------------------------------------------------
@app.command()
def plugins(
    as_json: bool = typer.Option(False, "--json", help="Print each plugin's package, version, hooks, "
                                 "modalities, families, commands and status as JSON on stdout."),
):
    """List installed plugins: the modalities, model families and commands they add, version, origin and
    status."""
    from dataclasses import asdict

    from rich.table import Table

    from .defaults import installed_defaults, installed_models
    from .hookspecs import HOOK_API_MINOR, HOOK_API_VERSION
    from .plugins import registry

    reg = registry()
    if as_json:
        import json

        print(json.dumps({"vqtok": __version__, "hook_api": f"{HOOK_API_VERSION}.{HOOK_API_MINOR}",
                          "plugins": [asdict(p) for p in reg.plugins]}, indent=2))
    table = Table(title="vqtok plugins")
    for col in ("plugin", "modalities", "families", "commands", "package", "version", "module", "status"):
        table.add_column(col)
    conflicted = lambda names, conflicts: ", ".join(  # noqa: E731
        f"[red]{n} (conflict)[/]" if n in conflicts else n for n in names) or "-"
    for p in reg.plugins:
        status = "[green]ok[/]" if p.status == "ok" else f"[red]{escape(p.status)}[/]"
        table.add_row(p.name, conflicted(p.modalities, reg.conflicts), conflicted(p.families, reg.family_conflicts),
                      conflicted(p.commands, reg.command_conflicts), p.distribution, p.version, p.module, status)
    err.print(table)
    for kind, conflicts in (("modality", reg.conflicts), ("model family", reg.family_conflicts),
                            ("command", reg.command_conflicts)):
        for name, who in conflicts.items():
            err.print(f"[red]conflict:[/] {kind} {name!r} is claimed by {', '.join(who)}; it is disabled")
    defaults = installed_defaults()
    for name, path in installed_models().items():
        state = "" if path.is_file() else " [red](missing)[/]"
        kind = "default model" if name in defaults else "shipped model"
        err.print(f"{kind} @{name}: {path}{state}", highlight=False)


# ---- train --------------------------------------------------------------------------------------------
@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": False})
def train(
    ctx: typer.Context,
    modality: Optional[str] = typer.Option(None, "--modality", "-m", help="image, audio, or a plugin's."),
    data: Optional[Path] = path_option(None, "--data", "-d", help="Folder of training files (recursive)."),
    out: Path = path_option(Path("model.safetensors"), "--out", "-o", help="Model file to write."),
    recipe: Optional[Path] = path_option(None, "--recipe", "-r", help="TOML recipe (see recipes/)."),
    steps: Optional[int] = typer.Option(None, "--steps", help="Training steps (train.steps)."),
    batch_size: Optional[int] = typer.Option(None, "--batch-size", help="Batch size (train.batch_size)."),
    seed: Optional[int] = typer.Option(None, "--seed", help="Random seed (train.seed)."),
    device: Optional[str] = typer.Option(None, "--device", help="auto, cpu, cuda or cuda:N."),
    arch: Optional[str] = typer.Option(
        None, "--arch", help="Model family (model.arch): vqvae (default), vqvae2, vae, cvae, or a plugin's."),
    init: Optional[str] = typer.Option(
        None, "--init", help="Fine-tune: start from this trained model (a model file, or @audio / @image for a "
                             "shipped default), taking its modality, signal and [model] settings; or from "
                             "what a recipe (FILE.toml) trains, which is trained first."),
    resume: bool = typer.Option(False, "--resume", help="Continue the interrupted run that writes --out."),
):
    """Train a model and save it as one .safetensors file.

    Families: vqvae (discrete codes; model.n_q=N for residual VQ, model.quantizer_dropout for any
    1..N at decode time), vqvae2 (top and bottom codes), vae (continuous latents), cvae (a vae
    conditioned on the class = the first sub-folder of each file). Extra arguments are key=value
    overrides of the recipe, e.g. model.codebook_size=256 train.lr=1e-3 audio.sample_rate=8000
    vae.likelihood=bernoulli vae.kl_warmup_steps=500 vqvae2.top_strides=[4]. Beside the model it writes NAME.metrics.jsonl (one line per log step),
    NAME.preview.png (originals above reconstructions) and, while running, NAME.ckpt.safetensors.
    Ctrl-C saves and exits; --resume continues. --init MODEL fine-tunes a trained model (or a shipped
    default: --init @audio) on --data: the run takes its modality, signal and [model] settings, and its
    weights, codebooks included. A recipe whose init names another recipe (init = "first.toml") is a
    chain: the first recipe's model is trained beside --out (first.safetensors) unless a finished one
    made by it is there, then this one starts from it; --resume continues whichever stage stopped.
    """
    from . import config as cfg
    from .chain import build_stages, names_recipe
    from .loop import RunPaths
    from .plugins import get_modality

    overrides = _overrides(ctx)
    recipe_dict = cfg.read_recipe(recipe) if recipe else {}
    if init is not None:  # --init wins over the recipe's init: a model file, or other.toml (a chain)
        recipe_dict, init = {**recipe_dict, "init": str(Path(init).resolve()) if names_recipe(init) else init}, None

    def train_stage(config, model: Path) -> None:
        _train_run(config, model, resume and RunPaths.for_model(model).checkpoint.exists())

    chain = names_recipe(recipe_dict.get("init"))
    recipe_dict = build_stages(recipe_dict, out, train_stage, lambda text: err.print(text, highlight=False),
                               get_modality, device, resume)
    flags = {"modality": modality, "data": str(data) if data else None, "train.steps": steps,
             "train.batch_size": batch_size, "train.seed": seed, "train.device": device, "model.arch": arch,
             "init": init}
    if chain:  # --resume continues the chain: this last stage may not have started yet
        resume = resume and RunPaths.for_model(out).checkpoint.exists()
    _train_run(cfg.resolve(recipe_dict or None, overrides, flags, get_modality), out, resume)


def _train_run(config, out: Path, resume: bool) -> None:
    """Train ``config`` into ``out``, reporting on rank 0; an interrupted run exits 130."""
    from . import distributed
    from .plugins import get_modality
    from .train import Trainer

    mod = get_modality(config.modality)
    trainer = Trainer(config, mod, out, err)
    if not distributed.is_main():  # under torchrun only rank 0 reports
        trainer.run(resume=resume)
        return
    err.print(f"training {config.model.arch} on {len(trainer.data)} {mod.name} file(s) from "
              f"{trainer.data_root} on {trainer.device} x {distributed.world_size()} process(es)"
              + (f", {trainer.workers} data-loading worker(s) each" if trainer.workers else "")
              + (f", starting from {trainer.init}" if trainer.init else ""))
    result = trainer.run(resume=resume)
    p = result.paths
    if result.interrupted:
        err.print(f"[yellow]interrupted[/] at step {result.step}: model saved to {p.model}, checkpoint "
                  f"{p.checkpoint}; continue with the same command plus --resume")
        raise typer.Exit(result.exit_code)
    final = result.summary["final"]
    err.print(f"[green]done[/]: {result.step} steps in {result.summary['seconds']:.0f} s, "
              f"loss {final.get('loss', float('nan')):.4f}; model {p.model}, metrics {p.metrics}"
              + (f", preview {p.preview}" if p.preview.exists() else ""))


# ---- train-prior ----------------------------------------------------------------------------------------
@app.command("train-prior", context_settings={"allow_extra_args": True, "ignore_unknown_options": False})
def train_prior(
    ctx: typer.Context,
    model: Optional[Path] = path_option(None, "--model", help=MODEL_HELP),
    data: Optional[Path] = path_option(None, "--data", "-d", help="Folder of files to encode and learn from."),
    valid: Optional[Path] = path_option(None, "--valid", help="Held-out folder for bits per code (default: "
                                         "prior.valid_share of --data, not trained on)."),
    out: Optional[Path] = path_option(None, "--out", "-o", help="Write the prior to this file instead of "
                                       "into the model file."),
    recipe: Optional[Path] = path_option(None, "--recipe", "-r",
                                          help="TOML recipe with a prior table and a train table."),
    steps: Optional[int] = typer.Option(None, "--steps", help="Training steps (train.steps, default 2000)."),
    batch_size: Optional[int] = typer.Option(None, "--batch-size", help="Batch size (train.batch_size)."),
    seed: Optional[int] = typer.Option(None, "--seed", help="Random seed (train.seed)."),
    device: Optional[str] = typer.Option(None, "--device", help="auto, cpu, cuda or cuda:N."),
    resume: bool = typer.Option(False, "--resume", help="Continue the interrupted run."),
):
    """Train a PixelCNN prior over a vqvae or vqvae2 model's codes, so that it can sample.

    Encodes --data with the model once, trains a gated PixelCNN per code level (vqvae2: top, then
    bottom conditioned on top; audio: causal 1-D), and stores it in the model file (or -o FILE, which
    then only works beside this model: `vqtok sample --prior FILE`). When every file lies in a class
    sub-folder the prior is class-conditional (prior.labels=auto|yes|no): `vqtok sample --label NAME`.
    At the end it prints the bits per code on held-out files under the prior, the code frequencies
    (unigram) and the uniform code model, and the bitrate an entropy coder reaches with each. Extra
    arguments are key=value overrides, e.g. prior.width=128 prior.layers=12 prior.kernel=5
    prior.window=256 train.lr=3e-4. Beside the model: NAME.prior.metrics.jsonl, NAME.prior.preview.png
    (images), and while running NAME.prior.ckpt.safetensors. Ctrl-C saves; --resume continues.
    """
    overrides = _overrides(ctx)
    model = _model_path(model)
    from rich.table import Table

    from . import distributed
    from .info import entropy_rows
    from .prior.train import PriorTrainer, resolve_prior_run
    from .codec import Tokenizer

    run = resolve_prior_run(recipe, overrides, {"data": str(data) if data else None,
                                                "valid": str(valid) if valid else None, "train.steps": steps,
                                                "train.batch_size": batch_size, "train.seed": seed,
                                                "train.device": device})
    tok = Tokenizer.load(model)
    trainer = PriorTrainer(tok, model, run, out, err)
    if not distributed.is_main():  # under torchrun only rank 0 reports
        trainer.run(resume=resume)
        return
    kind = f"class-conditional on {', '.join(trainer.label_names)}" if trainer.label_names else "unconditional"
    levels = trainer.model.order
    what = "codes" if levels == ["codes"] else " and ".join(levels) + " codes"
    err.print(f"training a prior ({kind}) over the {what} of {len(trainer.train_set)} file(s) on {trainer.device}")
    result = trainer.run(resume=resume)
    table = Table(title="the prior as an entropy model", show_header=False)
    for row in entropy_rows(trainer.info["entropy"]):
        table.add_row(*row)
    err.print(table)
    if result.interrupted:
        err.print(f"[yellow]interrupted[/] at step {result.step}: prior saved to {trainer.saved_to}; continue "
                  "with the same command plus --resume")
        raise typer.Exit(result.exit_code)
    preview = f", preview {result.paths.preview}" if result.paths.preview.exists() else ""
    kept = result.summary["kept"]["step"]
    best = f" (kept step {kept}'s weights: the lowest held-out bits per code)" if kept != result.step else ""
    err.print(f"[green]done[/]: {result.step} steps in {result.summary['seconds']:.0f} s{best}; prior stored in "
              f"{trainer.saved_to}{preview}")


# ---- encode / decode ----------------------------------------------------------------------------------
def _refuse_terminal(force: bool) -> None:
    if sys.stdout.isatty() and not force:
        raise UsageError("refusing to write binary codes to a terminal; use -o FILE, a pipe, or -f")


@app.command()
def encode(
    inputs: list[Path] = path_argument(..., help="Files or folders to encode; - reads a file from stdin."),
    model: Optional[Path] = path_option(None, "--model", help=MODEL_HELP),
    out: Optional[Path] = path_option(None, "--out", "-o", help="Code file (.npy/.npz), folder, or - for stdout."),
    fmt: Optional[str] = typer.Option(None, "--format", help="npy (codes only) or npz (codes + meta)."),
    n_q: Optional[int] = typer.Option(None, "--n-q", help="Residual VQ: use only the first N codebooks."),
    label: Optional[str] = typer.Option(None, "--label", help="Class label (cvae models need one)."),
    force: bool = typer.Option(False, "--force", "-f", help="Write binary to a terminal anyway."),
    device: str = typer.Option("cpu", "--device", help="cpu, cuda or cuda:N."),
    jobs: int = typer.Option(1, "--jobs", "-j", help="Processes that encode a folder together (each file by one)."),
):
    """Encode files into integer codes (.npy, or .npz with the metadata for exact decoding).

    One input goes to stdout, to -o FILE, or into -o FOLDER when that folder exists. A folder, or
    several inputs, need -o FOLDER: one code file per input, mirroring the tree. .npy holds codes only
    ((n_q, T) audio, (H, W) images; vae/cvae: float32 latent means (D, *grid)); .npz also keeps the
    original length/size, the label and the model's hash, so decode restores the exact size and refuses
    codes of another model. vqvae2 codes (top and bottom) are always .npz.

    Into a folder, OUT/manifest.jsonl records each file (input, size, mtime, output, code shapes, model,
    status, error): running the same command again encodes only what is missing, changed or failed, so
    a killed run resumes. --jobs N splits the files over N processes; under torchrun (torchrun
    --nproc-per-node N -m vqtok encode DIR -o OUT, on one machine or several) over the ranks too.
    """
    if fmt not in (None, "npy", "npz"):
        raise UsageError(f"--format {fmt!r}: use npy or npz")
    model = _model_path(model, inputs)  # before the imports below, which take seconds (torch)
    from .encode import encode_inputs

    if encode_inputs(inputs, model, out, fmt, n_q, label, force, device, err, _refuse_terminal, jobs):
        raise typer.Exit(1)  # some files failed: each was named above, the rest were written


@app.command()
def decode(
    codes: Path = path_argument(..., help="Code file (.npy/.npz); - reads stdin."),
    model: Optional[Path] = path_option(None, "--model", help=MODEL_HELP),
    out: Path = path_option(..., "--out", "-o", help="Output file; its suffix picks the format (.wav, .png...)."),
    label: Optional[str] = typer.Option(None, "--label", help="Class label (cvae; default: the .npz's)."),
    device: str = typer.Option("cpu", "--device", help="cpu, cuda or cuda:N."),
):
    """Decode a code file (or vae latent means) back into an audio file or an image."""
    model = _model_path(model, [out])  # before the imports below, which take seconds (torch)
    from .encode import read_code_input
    from .codec import Tokenizer

    tok = Tokenizer.load(model, device=device)
    cf, name = read_code_input(codes)
    if not tok.modality.can_write(out):
        raise UsageError(f"--out {out}: not a suffix this {tok.modality.name} model writes "
                         f"({', '.join(tok.modality.writes())})")
    tok.decode_to_file(cf, out, name, label)
    err.print(f"wrote {out}")


# ---- sample -------------------------------------------------------------------------------------------
@app.command()
def sample(
    model: Optional[Path] = path_option(None, "--model", help=MODEL_HELP),
    out: Path = path_option(..., "--out", "-o", help="A file (.png grid, .wav for -n 1) or a folder."),
    n: int = typer.Option(8, "-n", help="Number of samples."),
    label: Optional[str] = typer.Option(None, "--label", help="Class to sample (cvae, class-conditional "
                                        "prior); default: every class in turn."),
    temperature: float = typer.Option(1.0, "--temperature", help="vae/cvae: scale of the prior's standard "
                                      "deviation; vqvae/vqvae2: divides the prior's logits (0: likeliest code)."),
    top_k: int = typer.Option(0, "--top-k", help="vqvae/vqvae2: draw each code from the k likeliest (0: all)."),
    seed: int = typer.Option(0, "--seed", help="Random seed: the same seed gives the same samples."),
    seconds: Optional[float] = typer.Option(None, "--seconds", help="Length of samples of data with a time "
                                            "axis, e.g. audio (default: the training segment)."),
    prior: Optional[Path] = path_option(None, "--prior", help="Prior file from `train-prior -o` (default: "
                                         "the prior in the model file)."),
    device: str = typer.Option("cpu", "--device", help="cpu, cuda or cuda:N."),
):
    """Generate new images or sounds: vae/cvae from z ~ N(0, temperature^2 I); vqvae/vqvae2 by drawing
    codes from their PixelCNN prior (`vqtok train-prior`), top level first, then decoding them.

    -o grid.png writes one picture of all samples; -o FOLDER writes sample-000.png (.wav) ... files,
    named with the label for a conditional model or prior.
    """
    model = _model_path(model, [out])
    from .sampling import sample_targets, write_samples
    from .codec import Tokenizer

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


# ---- eval and plot ------------------------------------------------------------------------------------
@app.command("eval")
def eval_command(
    data: Path = path_option(..., "--data", "-d", help="Held-out files: a folder (class sub-folders give the "
                              "labels of conditional models and priors) or one file."),
    model: Optional[Path] = path_option(None, "--model", help=MODEL_HELP),
    iw_samples: int = typer.Option(100, "--iw-samples", "-k", help="vae/cvae: importance samples per file for "
                                   "the NLL (Burda et al. report k = 5000)."),
    as_json: bool = typer.Option(False, "--json", help="Also print the report as JSON on stdout."),
    plots: Optional[Path] = path_option(None, "--plots", help="Folder for pictures: reconstructions (image "
                                         "grid; audio waveforms and spectrograms) and code usage."),
    prior: Optional[Path] = path_option(None, "--prior", help="Prior file from `train-prior -o` (default: "
                                         "the prior in the model file)."),
    n_q: Optional[int] = typer.Option(None, "--n-q", help="Residual VQ: use only the first N codebooks."),
    seed: int = typer.Option(0, "--seed", help="Seed of the importance samples and of the binarization of "
                             "data for binarized-Bernoulli VAEs."),
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

    from .evaluation import EvalOptions, evaluate
    from .evaluation.table import print_report
    from .codec import Tokenizer

    tok = Tokenizer.load(model, device=device, prior=prior)
    report = evaluate(tok, data, EvalOptions(iw_samples, seed, n_q, batch_size), err, plots)
    print_report(report, err, f"vqtok eval {model}")
    for path in report.get("plots", []):
        err.print(f"wrote {path}")
    if as_json:
        print(json.dumps(report, indent=2))


@app.command()
def plot(
    logs: list[Path] = path_argument(..., help="Metrics logs (NAME.metrics.jsonl, written beside the model "
                                      "while it trains; train-prior writes NAME.prior.metrics.jsonl)."),
    out: Path = path_option(..., "--out", "-o", help="The PNG to write."),
    metrics: Optional[str] = typer.Option(None, "--metrics", help="Comma-separated metrics to draw (default: "
                                          "all in the log)."),
):
    """Draw training curves: one panel per metric (loss, reconstruction, perplexity per codebook, KL,
    held-out bits, ...) against the step. Several logs are overlaid to compare runs."""
    if out.suffix.lower() != ".png":
        raise UsageError(f"--out {out}: vqtok plot writes PNG; name it .png")
    from .plots import training_curves

    drawn = training_curves(logs, out, [m.strip() for m in metrics.split(",")] if metrics else None)
    err.print(f"wrote {out} ({', '.join(drawn)})")


# ---- info ---------------------------------------------------------------------------------------------
@app.command()
def info(
    model: Path = path_argument(..., help="Model file, or @audio / @image for a shipped default."),
    as_json: bool = typer.Option(False, "--json", help="Print the metadata as JSON on stdout."),
):
    """Show a model file: what it is and what data it was trained on, family, modality, codebooks,
    bitrate, config and training summary."""
    from .info import describe_model

    describe_model(_model_path(model), as_json, err)


@app.command()
def export(
    model: Path = path_argument(..., help="The model file to export (or @audio / @image / @digits)."),
    out: Path = path_option(..., "--out", "-o", help="The .safetensors file to write."),
    dtype: str = typer.Option("bfloat16", "--dtype", help="How to store the network weights: bfloat16 (half "
                              "the bytes) or float32."),
):
    """Write a copy of a model for shipping: network and prior weights stored in bfloat16 (codebooks stay
    float32), about half the file. It loads and computes in float32 as before; its codes name the exported
    model's own hash, so encode with the file you ship."""
    from .export import export_model

    if out.suffix != ".safetensors":
        raise UsageError(f"-o {out}: a model file is named .safetensors")
    done = export_model(_model_path(model), out, dtype)
    err.print(f"wrote {out}: {done['bytes_after'] / 1e6:.1f} MB (was {done['bytes_before'] / 1e6:.1f} MB; "
              f"{done['tensors_narrowed']} weight tensors as {dtype}), model hash {done['model_hash']}")


# ---- quickstart ---------------------------------------------------------------------------------------
@app.command()
def quickstart(
    out: Path = path_option(Path("quickstart"), "--out", "-o", help="Folder for the results."),
    steps: Optional[int] = typer.Option(None, "--steps", help="Override the recipes' step counts."),
):
    """Train small audio and image tokenizers on the samples shipped with vqtok, then encode and decode.

    Uses recipes/quickstart-audio.toml and recipes/quickstart-image.toml; takes a few minutes on a
    laptop CPU. Look at the results in the --out folder.
    """
    from .quickstart import run_quickstart

    run_quickstart(out, steps, err)


def builtin_commands() -> set[str]:
    return {c.name or c.callback.__name__.replace("_", "-") for c in app.registered_commands}


def add_plugin_commands(argv: list[str]) -> None:
    """Put the plugins' commands (``vqtok_commands``) on the command line, unless ``argv`` asks for a
    built-in command, which then starts without loading every plugin. A plugin command named like a
    built-in one is refused with a warning."""
    builtin = builtin_commands()
    words = [a for a in argv if not a.startswith("-")]
    if words and words[0] in builtin:
        return
    from .plugins import registry

    reg = registry()
    for name, command in reg.commands.items():
        if name in builtin:
            err.print(f"vqtok: warning: a plugin's command {name!r} has the name of a built-in command; it is "
                      "not added", highlight=False)
        elif isinstance(command, typer.Typer):
            app.add_typer(command, name=name)
        else:
            app.command(name)(command)


def main() -> None:
    """Entry point: typer handles usage errors (exit 2); vqtok's own errors become one line."""
    debug = os.environ.get("VQTOK_DEBUG") == "1" or "--debug" in sys.argv
    keep_freed_memory()
    try:
        add_plugin_commands(sys.argv[1:])
        app()
    except VqtokError as e:
        if debug:
            raise
        err.print(f"[red]vqtok: error:[/] {escape(str(e))}", highlight=False, soft_wrap=True)
        sys.exit(e.exit_code)
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(130)
    except OSError as e:  # a file the system refused (permissions, a vanished folder): one line naming it
        if debug:
            raise
        where = f"{e.filename}: " if e.filename else ""
        err.print(f"[red]vqtok: error:[/] {escape(where + (e.strerror or first_line(e)))}", highlight=False,
                  soft_wrap=True)
        sys.exit(1)
    except Exception as e:  # a bug: in a plugin (named) or in vqtok; one line, the traceback with --debug
        if debug:
            raise
        from .plugins import blame

        plugin = blame(e)
        culprit = f"in plugin {plugin.name!r} ({plugin.module})" if plugin else "inside vqtok (a bug: please report it)"
        err.print(f"[red]vqtok: error:[/] {escape(f'{type(e).__name__}: {first_line(e)}')} {escape(culprit)}; "
                  "run with --debug for the traceback", highlight=False, soft_wrap=True)
        sys.exit(1)
