"""File handling for ``vqtok encode`` and ``vqtok decode``: inputs, folders, stdin and stdout."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from rich.progress import Progress

from .atomic import atomic_path
from .errors import UsageError, VqtokError
from .formats import CodeFile, code_bytes, parse_codes
from .modality import find_files
from .tokenizer import Tokenizer

CODE_SUFFIXES = (".npy", ".npz")


def read_code_input(path: Path) -> tuple[CodeFile, str]:
    """A code file from a path or from stdin (``-``); ``np.load`` cannot read pipes, so read bytes."""
    if str(path) == "-":
        return parse_codes(sys.stdin.buffer.read(), "<stdin>"), "<stdin>"
    if not path.is_file():
        raise VqtokError(f"{path}: no such file")
    return parse_codes(path.read_bytes(), str(path)), str(path)


def _stdin_to_file(suffix_hint: str) -> Path:
    data = sys.stdin.buffer.read()
    tmp = tempfile.NamedTemporaryFile(prefix="vqtok-stdin-", suffix=suffix_hint, delete=False)
    tmp.write(data)
    tmp.close()
    return Path(tmp.name)


def _jobs(inputs: list[Path], tok: Tokenizer, out: Path | None, fmt: str) -> list[tuple[Path, Path | None]]:
    """(input file, output path or None for stdout) for every file to encode."""
    for item in inputs:
        if str(item) != "-" and not item.exists():
            raise VqtokError(f"{item}: no such file or folder")
    single = len(inputs) == 1 and not inputs[0].is_dir()  # a file, or - for stdin
    to_stdout = out is None or str(out) == "-"
    if single and (to_stdout or not out.is_dir()):
        if not to_stdout and out.suffix.lower() not in CODE_SUFFIXES:  # e.g. -o x.wav: never over a recording
            raise UsageError(f"-o {out}: codes are written to .npy or .npz files")
        return [(inputs[0], None if to_stdout else out)]
    if single and str(inputs[0]) == "-":
        raise UsageError(f"-o {out} is a folder; name the code file to write from stdin, e.g. -o codes.npy")
    if to_stdout:
        raise UsageError("encoding a folder or several files needs -o FOLDER")
    if out.exists() and not out.is_dir():
        raise UsageError(f"-o {out}: must be a folder when encoding a folder or several files")
    suffix = "." + fmt
    jobs = []
    for item in inputs:
        if item.is_dir():
            jobs += [(f, out / f.relative_to(item).with_suffix(suffix)) for f in find_files(item, tok.modality)]
        elif item.is_file():
            jobs.append((item, out / item.with_suffix(suffix).name))
        else:
            raise UsageError(f"{item}: stdin (-) takes a single input" if str(item) == "-" else
                             f"{item}: neither a file nor a folder")
    seen: dict[Path, Path] = {}
    for src, dst in jobs:
        if dst in seen:
            raise UsageError(f"{seen[dst]} and {src} would both be written to {dst}; "
                             "encode them separately or rename one")
        seen[dst] = src
    return jobs


def encode_inputs(inputs, model_path, out, fmt, n_q, label, force, device, console, refuse_terminal) -> int:
    """Encode every input; returns how many files failed. With several files, one that cannot be read is
    reported and skipped and the others are all written; a single file's error is raised."""
    tok = Tokenizer.load(model_path, device=device)
    several = len(tok.specs) > 1  # e.g. VQ-VAE-2's top and bottom: only .npz holds them
    jobs = _jobs(inputs, tok, out, fmt or ("npz" if several else "npy"))
    failed = 0
    with Progress(console=console, transient=True, disable=len(jobs) < 2) as progress:
        task = progress.add_task("encode", total=len(jobs))
        for src, dst in jobs:
            try:
                _encode_one(tok, src, dst, fmt, several, n_q, label, force, refuse_terminal)
            except VqtokError as e:
                if len(jobs) == 1 or isinstance(e, UsageError):
                    raise
                failed += 1
                console.print(f"skipped: {e}", highlight=False, markup=False)
            progress.advance(task)
    if out is not None and str(out) != "-":
        console.print(f"wrote {len(jobs) - failed} code file(s) to {out}" + (f"; {failed} failed" if failed else ""))
    return failed


def _encode_one(tok: Tokenizer, src: Path, dst: Path | None, fmt, several: bool, n_q, label, force,
                refuse_terminal) -> None:
    as_npz = (fmt == "npz") if fmt else (dst.suffix.lower() == ".npz" if dst is not None else several)
    if several and not as_npz:
        raise UsageError(f"a {tok.family} model's codes have {len(tok.specs)} levels "
                         f"({', '.join(tok.specs)}), which only .npz holds: use -o FILE.npz")
    if dst is None:
        refuse_terminal(force)
    if str(src) == "-":
        tmp = _stdin_to_file(tok.modality.suffixes[0] if tok.modality.suffixes else "")
        try:
            cf = tok.encode_file(tmp, n_q, label)
        except VqtokError as e:  # name the input as the user gave it, not the temporary file
            raise type(e)(str(e).replace(str(tmp), "<stdin>")) from None
        finally:
            tmp.unlink(missing_ok=True)
    else:
        if not tok.modality.is_supported(src):
            raise VqtokError(f"{src}: not a file this {tok.modality.name} model reads "
                             f"({', '.join(tok.modality.suffixes)})")
        cf = tok.encode_file(src, n_q, label)
    data = code_bytes(cf, as_npz)
    if dst is None:
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
    else:
        with atomic_path(dst) as tmp_out:
            tmp_out.write_bytes(data)
