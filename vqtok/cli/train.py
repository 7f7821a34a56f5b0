"""``vqtok train`` and ``vqtok train-prior``."""

from __future__ import annotations

from pathlib import Path

import typer

from .app import MODEL_HELP, _model_path, _overrides, app, err, path_option


# ---- train --------------------------------------------------------------------------------------------
@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": False})
def train(
    ctx: typer.Context,
    modality: str | None = typer.Option(None, "--modality", "-m", help="image, audio, or a plugin's."),
    data: Path | None = path_option(None, "--data", "-d", help="Folder of training files (recursive)."),
    out: Path = path_option(Path("model.safetensors"), "--out", "-o", help="Model file to write."),
    recipe: Path | None = path_option(None, "--recipe", "-r", help="TOML recipe (see recipes/)."),
    steps: int | None = typer.Option(None, "--steps", help="Training steps (train.steps)."),
    batch_size: int | None = typer.Option(None, "--batch-size", help="Batch size (train.batch_size)."),
    seed: int | None = typer.Option(None, "--seed", help="Random seed (train.seed)."),
    device: str | None = typer.Option(None, "--device", help="auto, cpu, cuda or cuda:N."),
    arch: str | None = typer.Option(
        None, "--arch", help="Model family (model.arch): vqvae (default), vqvae2, vae, cvae, or a plugin's."
    ),
    init: str | None = typer.Option(
        None,
        "--init",
        help="Fine-tune: start from this trained model (a model file, or @audio / @image for a "
        "shipped default), taking its modality, signal and [model] settings; or from "
        "what a recipe (FILE.toml) trains, which is trained first.",
    ),
    resume: bool = typer.Option(False, "--resume", help="Continue the interrupted run that writes --out."),
):
    """Train a model and save it as one .safetensors file.

    Families: vqvae (discrete codes; model.n_q=N for residual VQ, model.quantizer_dropout for any
    1..N at decode time), vqvae2 (top and bottom codes), vae (continuous latents), cvae (a vae
    conditioned on the class = the first sub-folder of each file). Extra arguments are key=value
    overrides of the recipe, e.g. model.codebook_size=256 train.lr=1e-3 audio.sample_rate=8000
    vae.likelihood=bernoulli vae.kl_warmup_steps=500 vqvae2.top_strides=[4]. Beside the model it writes
    NAME.metrics.jsonl (one line per log step), NAME.preview.png (originals above reconstructions) and, while
    running, NAME.ckpt.safetensors. Ctrl-C saves and exits; --resume continues. --init MODEL fine-tunes a
    trained model (or a shipped default: --init @audio) on --data: the run takes its modality, signal and
    [model] settings, and its weights, codebooks included. A recipe whose init names another recipe
    (init = "first.toml") is a chain: the first recipe's model is trained beside --out
    (first.safetensors) unless a finished one made by it is there, then this one starts from it; --resume
    continues whichever stage stopped.
    """
    from .. import config as cfg
    from ..plugin.registry import get_modality
    from ..train.chain import build_stages, names_recipe
    from ..train.loop import RunPaths

    overrides = _overrides(ctx)
    recipe_dict = cfg.read_recipe(recipe) if recipe else {}
    if init is not None:  # --init wins over the recipe's init: a model file, or other.toml (a chain)
        recipe_dict, init = {**recipe_dict, "init": str(Path(init).resolve()) if names_recipe(init) else init}, None

    def train_stage(config, model: Path) -> None:
        _train_run(config, model, resume and RunPaths.for_model(model).checkpoint.exists())

    chain = names_recipe(recipe_dict.get("init"))
    recipe_dict = build_stages(
        recipe_dict, out, train_stage, lambda text: err.print(text, highlight=False), get_modality, device, resume
    )
    flags = {
        "modality": modality,
        "data": str(data) if data else None,
        "train.steps": steps,
        "train.batch_size": batch_size,
        "train.seed": seed,
        "train.device": device,
        "model.arch": arch,
        "init": init,
    }
    if chain:  # --resume continues the chain: this last stage may not have started yet
        resume = resume and RunPaths.for_model(out).checkpoint.exists()
    _train_run(cfg.resolve(recipe_dict or None, overrides, flags, get_modality), out, resume)


def _train_run(config, out: Path, resume: bool) -> None:
    """Train ``config`` into ``out``, reporting on rank 0; an interrupted run exits 130."""
    from .. import distributed
    from ..plugin.registry import get_modality
    from ..train import Trainer

    mod = get_modality(config.modality)
    trainer = Trainer(config, mod, out, err)
    if not distributed.is_main():  # under torchrun only rank 0 reports
        trainer.run(resume=resume)
        return
    err.print(
        f"training {config.model.arch} on {len(trainer.data)} {mod.name} file(s) from "
        f"{trainer.data_root} on {trainer.device} x {distributed.world_size()} process(es)"
        + (f", {trainer.workers} data-loading worker(s) each" if trainer.workers else "")
        + (f", starting from {trainer.init}" if trainer.init else "")
    )
    result = trainer.run(resume=resume)
    p = result.paths
    if result.interrupted:
        err.print(
            f"[yellow]interrupted[/] at step {result.step}: model saved to {p.model}, checkpoint "
            f"{p.checkpoint}; continue with the same command plus --resume"
        )
        raise typer.Exit(result.exit_code)
    final = result.summary["final"]
    err.print(
        f"[green]done[/]: {result.step} steps in {result.summary['seconds']:.0f} s, "
        f"loss {final.get('loss', float('nan')):.4f}; model {p.model}, metrics {p.metrics}"
        + (f", preview {p.preview}" if p.preview.exists() else "")
    )


# ---- train-prior ----------------------------------------------------------------------------------------
@app.command("train-prior", context_settings={"allow_extra_args": True, "ignore_unknown_options": False})
def train_prior(
    ctx: typer.Context,
    model: Path | None = path_option(None, "--model", help=MODEL_HELP),
    data: Path | None = path_option(None, "--data", "-d", help="Folder of files to encode and learn from."),
    valid: Path | None = path_option(
        None,
        "--valid",
        help="Held-out folder for bits per code (default: prior.valid_share of --data, not trained on).",
    ),
    out: Path | None = path_option(
        None, "--out", "-o", help="Write the prior to this file instead of into the model file."
    ),
    recipe: Path | None = path_option(None, "--recipe", "-r", help="TOML recipe with a prior table and a train table."),
    steps: int | None = typer.Option(None, "--steps", help="Training steps (train.steps, default 2000)."),
    batch_size: int | None = typer.Option(None, "--batch-size", help="Batch size (train.batch_size)."),
    seed: int | None = typer.Option(None, "--seed", help="Random seed (train.seed)."),
    device: str | None = typer.Option(None, "--device", help="auto, cpu, cuda or cuda:N."),
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

    from .. import distributed
    from ..codec import Tokenizer
    from ..prior.train import PriorTrainer, resolve_prior_run
    from .model_table import entropy_rows

    run = resolve_prior_run(
        recipe,
        overrides,
        {
            "data": str(data) if data else None,
            "valid": str(valid) if valid else None,
            "train.steps": steps,
            "train.batch_size": batch_size,
            "train.seed": seed,
            "train.device": device,
        },
    )
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
        err.print(
            f"[yellow]interrupted[/] at step {result.step}: prior saved to {trainer.saved_to}; continue "
            "with the same command plus --resume"
        )
        raise typer.Exit(result.exit_code)
    preview = f", preview {result.paths.preview}" if result.paths.preview.exists() else ""
    kept = result.summary["kept"]["step"]
    best = f" (kept step {kept}'s weights: the lowest held-out bits per code)" if kept != result.step else ""
    err.print(
        f"[green]done[/]: {result.step} steps in {result.summary['seconds']:.0f} s{best}; prior stored in "
        f"{trainer.saved_to}{preview}"
    )
