"""File handling for ``vqtok compress`` and ``vqtok decompress``: which model, which inputs and outputs,
one file or a folder (the entropy coding itself: :mod:`vqtok.codec.compression`)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.progress import Progress

from ..errors import UsageError, VqtokError
from ..files.atomic import atomic_path
from ..files.codes import CodeFile, code_bytes, parse_codes
from ..files.vqz import SUFFIX, container_bytes, read_container
from ..plugin.defaults import model_by_hash, model_path
from ..plugin.modality import find_files
from .compression import Codec
from .file_io import CODE_SUFFIXES, read_code_input
from .tokenizer import Tokenizer

_PER_FILE = ".per-file"  # a stand-in output suffix: each .vqz's own is chosen once it is read


@dataclass
class CompressSettings:
    n_q: int | None = None  # --n-q: encode media with the first N codebooks
    label: str | None = None  # --label: the class of a conditional model or prior
    device: str = "cpu"
    prior: Path | None = None  # --prior: a prior file beside the model


# ---- which model ----------------------------------------------------------------------------------------
def model_for_codes(model: Path | None, inputs: list[Path]) -> Path:
    """--model, or else the shipped model that made the codes (a .npz names it), or the default of the
    modality that reads the media files."""
    if model is not None or not inputs or inputs[0].suffix.lower() not in CODE_SUFFIXES:
        return model_path(model, inputs)
    cf, name = read_code_input(inputs[0])
    made_by = (cf.meta or {}).get("model_hash")
    if made_by is None:
        raise UsageError(f"{name}: a bare .npy does not name its model: pass --model")
    return _shipped(made_by, name)


def model_for_container(model: Path | None, first: Path) -> Path:
    """--model, or else the shipped model a .vqz was compressed with."""
    if model is not None:
        return model_path(model)
    box = read_container(first)
    return _shipped(str(box.header.get("model")), str(first))


def _shipped(model_hash: str, name: str) -> Path:
    found = model_by_hash(model_hash)
    if found is None:
        raise UsageError(f"{name}: made with model {model_hash}, which is not a shipped one: pass --model FILE")
    return found


# ---- compress ---------------------------------------------------------------------------------------------
def compress_inputs(
    inputs: list[Path], model: Path, out: Path | None, settings: CompressSettings, console: Console
) -> int:
    """Compress every input (a media or code file, or a folder of media files); returns how many failed.
    A single file's error is raised; in a folder each failure is named and the rest are written."""
    tok = Tokenizer.load(model, device=settings.device, prior=settings.prior)
    codec = Codec(tok)
    jobs, into_folder = _pairs(inputs, out, SUFFIX, lambda root: find_files(root, tok.modality))
    failed, total_bytes = 0, 0
    for src, dst in _with_progress(jobs, into_folder, console, "compress"):
        try:
            box = codec.compress(
                *_codes_of(tok, src, settings), label=None if tok.model.conditional else settings.label
            )
            if src.suffix.lower() not in CODE_SUFFIXES:
                box.header["suffix"] = src.suffix.lower()  # decompress writes this kind of file by default
            data = container_bytes(box)
            with atomic_path(dst) as tmp:
                tmp.write_bytes(data)
            total_bytes += len(data)
        except VqtokError as e:
            if not into_folder:
                raise
            failed += 1
            console.print(f"[red]error:[/] {e}")
    done = len(jobs) - failed
    console.print(
        f"wrote {done} .vqz file(s), {total_bytes} bytes"
        + (f" into {out}" if into_folder else f": {dst}")
        + (f"; {failed} failed" if failed else "")
    )
    return failed


def _codes_of(tok: Tokenizer, src: Path, settings: CompressSettings) -> tuple[dict, dict | None]:
    """The codes of ``src`` (a code file, checked against the model, or a media file, encoded) and meta."""
    if src.suffix.lower() in CODE_SUFFIXES:
        if settings.n_q is not None:
            raise UsageError("--n-q applies to media files; a code file keeps the codebooks it has")
        cf = parse_codes(src.read_bytes(), str(src))
        return tok.check(cf, str(src)), cf.meta
    tok.check_supported(src, nor="a code file (.npy/.npz)")
    cf = tok.encode_file(src, settings.n_q, settings.label if tok.model.conditional else None)
    return tok.from_file_arrays(cf, str(src)), cf.meta


# ---- decompress -------------------------------------------------------------------------------------------
def decompress_inputs(
    inputs: list[Path],
    model: Path,
    out: Path | None,
    codes: bool,
    suffix: str | None,
    device: str,
    console: Console,
    prior: Path | None = None,
) -> int:
    """Decompress every .vqz (or every one in a folder) into a media file or, with ``codes``, the code file
    ``vqtok encode`` wrote; returns how many failed (a single file's error is raised)."""
    tok = Tokenizer.load(model, device=device, prior=prior)
    codec = Codec(tok)
    if suffix is not None and not suffix.startswith("."):
        suffix = "." + suffix
    jobs, into_folder = _pairs(inputs, out, suffix or _PER_FILE, _vqz_files)
    failed = 0
    for src, dst in _with_progress(jobs, into_folder, console, "decompress"):
        try:
            box = read_container(src)
            if dst.suffix == _PER_FILE:  # the suffix of the file compressed, where the modality writes it
                dst = dst.with_suffix(".npz" if codes else _media_suffix(tok, box.header.get("suffix")))
            _check_output(tok, dst, codes)
            latents, meta = codec.decompress(box, str(src))
            cf = CodeFile(tok.to_file_arrays(latents), meta)
            if codes:
                with atomic_path(dst) as tmp:
                    tmp.write_bytes(code_bytes(cf, dst.suffix.lower() == ".npz"))
            else:
                tok.decode_to_file(cf, dst, str(src))
        except VqtokError as e:
            if not into_folder:
                raise
            failed += 1
            console.print(f"[red]error:[/] {e}")
    console.print(
        f"wrote {len(jobs) - failed} file(s)"
        + (f" into {out}" if into_folder else f": {dst}")
        + (f"; {failed} failed" if failed else "")
    )
    return failed


def _media_suffix(tok: Tokenizer, original: str | None) -> str:
    return original if original and tok.modality.can_write(Path("x" + original)) else tok.modality.output_suffix()


def _check_output(tok: Tokenizer, dst: Path, codes: bool) -> None:
    if codes and dst.suffix.lower() not in CODE_SUFFIXES:
        raise UsageError(f"--codes writes a code file: -o {dst} must end in .npy or .npz")
    if not codes and not tok.modality.can_write(dst):
        raise UsageError(
            f"-o {dst}: not a suffix this {tok.modality.name} model writes "
            f"({', '.join(tok.modality.writes())}; --codes writes .npy/.npz)"
        )


def _vqz_files(root: Path) -> list[Path]:
    files = sorted(p for p in root.rglob("*" + SUFFIX) if p.is_file())
    if not files:
        raise VqtokError(f"{root}: no .vqz files in this folder")
    return files


def _with_progress(jobs: list, shown: bool, console: Console, what: str) -> Iterator:
    """``jobs`` one by one, with a progress bar on the console when ``shown`` (a folder)."""
    if not shown:
        yield from jobs
        return
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task(f"{what} {len(jobs)} file(s)", total=len(jobs))
        for job in jobs:
            yield job
            progress.advance(task)


# ---- inputs and outputs -------------------------------------------------------------------------------------
def _pairs(inputs: list[Path], out: Path | None, suffix: str, files_in) -> tuple[list[tuple[Path, Path]], bool]:
    """(input file, output file) for every file, and whether they go into a folder. One file goes to
    ``out`` (default: beside it with ``suffix``; an existing folder: into it); a folder or several inputs
    need ``out``, a folder, mirroring each input folder's tree. Writing over an input is refused."""
    for item in inputs:
        if not item.exists():
            raise VqtokError(f"{item}: no such file or folder")
    if len(inputs) == 1 and inputs[0].is_file():
        src = inputs[0]
        dst = out / src.with_suffix(suffix).name if out is not None and out.is_dir() else out or src.with_suffix(suffix)
        pairs, into_folder = [(src, dst)], False
    else:
        if out is None or (out.exists() and not out.is_dir()):
            raise UsageError("a folder or several inputs need -o FOLDER")
        pairs, into_folder = [], True
        for item in inputs:
            if item.is_dir():
                pairs += [(f, out / f.relative_to(item).with_suffix(suffix)) for f in files_in(item)]
            else:
                pairs.append((item, out / item.with_suffix(suffix).name))
    seen: dict[Path, Path] = {}
    for src, dst in pairs:
        if dst.resolve() == src.resolve():
            raise UsageError(f"-o {dst}: the output would overwrite its input")
        if dst in seen:
            raise UsageError(f"{seen[dst]} and {src} would both be written to {dst}; rename one")
        seen[dst] = src
    return pairs, into_folder
