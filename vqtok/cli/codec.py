"""``vqtok encode``, ``vqtok decode``, ``vqtok compress``, ``vqtok decompress`` and ``vqtok export``: files to
codes and back, to entropy-coded .vqz files and back, and shipping a model."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from ..errors import UsageError
from .app import MODEL_HELP, _model_path, app, err, path_argument, path_option


# ---- encode / decode ----------------------------------------------------------------------------------
def _refuse_terminal(force: bool) -> None:
    if sys.stdout.isatty() and not force:
        raise UsageError("refusing to write binary codes to a terminal; use -o FILE, a pipe, or -f")


@app.command()
def encode(
    inputs: list[Path] = path_argument(..., help="Files or folders to encode; - reads a file from stdin."),
    model: Path | None = path_option(None, "--model", help=MODEL_HELP),
    out: Path | None = path_option(None, "--out", "-o", help="Code file (.npy/.npz), folder, or - for stdout."),
    fmt: str | None = typer.Option(None, "--format", help="npy (codes only) or npz (codes + meta)."),
    n_q: int | None = typer.Option(None, "--n-q", help="Residual VQ: use only the first N codebooks."),
    label: str | None = typer.Option(None, "--label", help="Class label (cvae models need one)."),
    force: bool = typer.Option(False, "--force", "-f", help="Write binary to a terminal anyway."),
    device: str = typer.Option("cpu", "--device", help="cpu, cuda or cuda:N."),
    jobs: int = typer.Option(1, "--jobs", "-j", help="Processes that encode a folder together (each file by one)."),
    batch: int = typer.Option(
        32,
        "--batch",
        help="Into a folder: short files of one size go through the network together, up to N at a time "
        "(1: one by one, each file's codes bit for bit as encoding it alone).",
    ),
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
    Short files of the same size (clips of one length, images of one size) are encoded in batches of up
    to --batch: the same codes as one by one, except that a position whose two nearest codebook entries
    are equally near up to float rounding may get the other one.
    """
    if fmt not in (None, "npy", "npz"):
        raise UsageError(f"--format {fmt!r}: use npy or npz")
    model = _model_path(model, inputs)  # before the imports below, which take seconds (torch)
    from ..codec.file_io import encode_inputs

    if encode_inputs(inputs, model, out, fmt, n_q, label, force, device, err, _refuse_terminal, jobs, batch):
        raise typer.Exit(1)  # some files failed: each was named above, the rest were written


@app.command()
def decode(
    codes: Path = path_argument(..., help="Code file (.npy/.npz); - reads stdin."),
    model: Path | None = path_option(None, "--model", help=MODEL_HELP),
    out: Path = path_option(..., "--out", "-o", help="Output file; its suffix picks the format (.wav, .png...)."),
    label: str | None = typer.Option(None, "--label", help="Class label (cvae; default: the .npz's)."),
    device: str = typer.Option("cpu", "--device", help="cpu, cuda or cuda:N."),
):
    """Decode a code file (or vae latent means) back into an audio file or an image."""
    model = _model_path(model, [out])  # before the imports below, which take seconds (torch)
    from ..codec import Tokenizer
    from ..codec.file_io import read_code_input

    tok = Tokenizer.load(model, device=device)
    cf, name = read_code_input(codes)
    if not tok.modality.can_write(out):
        raise UsageError(
            f"--out {out}: not a suffix this {tok.modality.name} model writes ({', '.join(tok.modality.writes())})"
        )
    tok.decode_to_file(cf, out, name, label)
    err.print(f"wrote {out}")


# ---- compress / decompress --------------------------------------------------------------------------------
@app.command()
def compress(
    inputs: list[Path] = path_argument(..., help="Media files, code files (.npy/.npz) or folders of media files."),
    model: Path | None = path_option(
        None, "--model", help=MODEL_HELP + " A .npz picks the shipped model that made it."
    ),
    out: Path | None = path_option(None, "--out", "-o", help="The .vqz file (default: beside the input), or a folder."),
    n_q: int | None = typer.Option(None, "--n-q", help="Residual VQ: encode with the first N codebooks."),
    label: str | None = typer.Option(
        None,
        "--label",
        help="Class label: of a cvae model, or the class of a "
        "class-conditional prior to code with (default: the one that codes best).",
    ),
    prior: Path | None = path_option(
        None, "--prior", help="A prior file made by `train-prior -o` (default: the model file's own prior)."
    ),
    device: str = typer.Option("cpu", "--device", help="Where the model encodes (the prior codes on the CPU)."),
):
    """Encode files and entropy-code their codes with the model's prior into .vqz files.

    A .vqz holds exactly the codes `vqtok encode` writes, in fewer bits: each code costs -log2 p under
    the PixelCNN prior (about what `vqtok info` estimates), or log2 K without one. It is cut into chunks
    that decode on their own, each with a CRC32; `vqtok decompress` gives back the file or the codes.
    docs/formats.md describes the container.
    """
    from ..codec.compress_files import CompressSettings, compress_inputs, model_for_codes

    model = model_for_codes(model, inputs)
    if compress_inputs(inputs, model, out, CompressSettings(n_q, label, device, prior), err):
        raise typer.Exit(1)


@app.command()
def decompress(
    inputs: list[Path] = path_argument(..., help=".vqz files or folders of them."),
    model: Path | None = path_option(
        None, "--model", help="The model file it was compressed with (default: the shipped model the .vqz names)."
    ),
    out: Path | None = path_option(
        None,
        "--out",
        "-o",
        help="Output file (its suffix picks the format: .wav, .png, ...; default beside the input), or a folder.",
    ),
    codes: bool = typer.Option(False, "--codes", help="Write the code file (.npy/.npz) instead of decoding."),
    suffix: str | None = typer.Option(
        None,
        "--suffix",
        help="The output suffix without -o FILE (default: the modality's first, e.g. .wav; .npz with --codes).",
    ),
    prior: Path | None = path_option(
        None, "--prior", help="The prior file it was compressed with, where that was not the model file's own."
    ),
    device: str = typer.Option("cpu", "--device", help="Where the model decodes (the prior decodes on the CPU)."),
):
    """Turn .vqz files back into media files, or with --codes into the exact code files `vqtok encode` wrote.

    A file made with another model, truncated, damaged (a chunk's CRC32) or of a newer format version is
    refused with what is wrong, and nothing is written.
    """
    from ..codec.compress_files import decompress_inputs, model_for_container

    if not inputs:
        raise UsageError("name a .vqz file or folder")
    first = next((p for p in inputs if p.is_file()), None)
    if first is None and inputs[0].is_dir():
        first = next(iter(sorted(inputs[0].rglob("*.vqz"))), None)
    model = model_for_container(model, first) if first is not None else _model_path(model)
    if decompress_inputs(inputs, model, out, codes, suffix, device, err, prior):
        raise typer.Exit(1)


@app.command()
def export(
    model: Path = path_argument(..., help="The model file to export (or @audio / @image / @digits)."),
    out: Path = path_option(..., "--out", "-o", help="The .safetensors file to write."),
    dtype: str = typer.Option(
        "bfloat16", "--dtype", help="How to store the network weights: bfloat16 (half the bytes) or float32."
    ),
):
    """Write a copy of a model for shipping: network and prior weights stored in bfloat16 (codebooks stay
    float32), about half the file. It loads and computes in float32 as before; its codes name the exported
    model's own hash, so encode with the file you ship."""
    from ..export import export_model

    if out.suffix != ".safetensors":
        raise UsageError(f"-o {out}: a model file is named .safetensors")
    done = export_model(_model_path(model), out, dtype)
    err.print(
        f"wrote {out}: {done['bytes_after'] / 1e6:.1f} MB (was {done['bytes_before'] / 1e6:.1f} MB; "
        f"{done['tensors_narrowed']} weight tensors as {dtype}), model hash {done['model_hash']}"
    )
