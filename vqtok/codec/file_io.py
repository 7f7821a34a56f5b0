"""File handling for ``vqtok encode`` and ``vqtok decode``: inputs, folders, stdin and stdout."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from ..errors import UsageError, VqtokError
from ..files.atomic import atomic_path
from ..files.codes import CodeFile, code_bytes, parse_codes
from ..plugin.modality import find_files
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


def _jobs(
    inputs: list[Path], tok: Tokenizer, out: Path | None, fmt: str
) -> tuple[list[tuple[Path, Path | None]], bool]:
    """(input file, output path or None for stdout) for every file to encode, and whether they go into a
    folder (-o FOLDER) rather than to one file or stdout."""
    for item in inputs:
        if str(item) != "-" and not item.exists():
            raise VqtokError(f"{item}: no such file or folder")
    single = len(inputs) == 1 and not inputs[0].is_dir()  # a file, or - for stdin
    to_stdout = out is None or str(out) == "-"
    if single and (to_stdout or not out.is_dir()):
        if not to_stdout and out.suffix.lower() not in CODE_SUFFIXES:  # e.g. -o x.wav: never over a recording
            raise UsageError(f"-o {out}: codes are written to .npy or .npz files")
        return [(inputs[0], None if to_stdout else out)], False
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
            raise UsageError(
                f"{item}: stdin (-) takes a single input"
                if str(item) == "-"
                else f"{item}: neither a file nor a folder"
            )
    seen: dict[Path, Path] = {}
    for src, dst in jobs:
        if dst in seen:
            raise UsageError(
                f"{seen[dst]} and {src} would both be written to {dst}; encode them separately or rename one"
            )
        seen[dst] = src
    return jobs, True


def encode_inputs(
    inputs, model_path, out, fmt, n_q, label, force, device, console, refuse_terminal, n_jobs: int = 1, batch: int = 1
) -> int:
    """Encode every input; returns how many files failed. Into a folder, the corpus way
    (:mod:`vqtok.codec.corpus`: ``n_jobs`` processes, a manifest, resumable, short files of one size ``batch`` at a
    time): a file that cannot be read is reported and skipped and the others are all written. A single
    file's error is raised."""
    from .corpus import encode_corpus

    if n_jobs < 1:
        raise UsageError(f"--jobs {n_jobs}: use 1 or more processes")
    if batch < 1:
        raise UsageError(f"--batch {batch}: use 1 or more files per batch")
    tok = Tokenizer.load(model_path, device=device)
    several = len(tok.specs) > 1  # e.g. VQ-VAE-2's top and bottom: only .npz holds them
    folder_format = fmt or ("npz" if several else "npy")
    jobs, into_folder = _jobs(inputs, tok, out, folder_format)
    if into_folder:
        _check_format(tok, folder_format == "npz")
        settings = {"format": folder_format, "n_q": n_q, "label": label}
        return encode_corpus(jobs, Path(model_path), tok.model_hash, out, settings, device, n_jobs, console, batch)
    ((src, dst),) = jobs  # --format wins over the name's suffix
    as_npz = fmt == "npz" if fmt else (dst.suffix.lower() == ".npz" if dst is not None else several)
    _check_format(tok, as_npz)
    if dst is not None:
        encode_to_file(tok, src, dst, {"format": "npz" if as_npz else "npy", "n_q": n_q, "label": label})
        console.print(f"wrote 1 code file(s) to {dst}")
        return 0
    refuse_terminal(force)
    sys.stdout.buffer.write(code_bytes(_encoded(tok, src, n_q, label), as_npz))
    sys.stdout.buffer.flush()
    return 0


def encode_to_file(tok: Tokenizer, src: Path, dst: Path, settings: dict) -> CodeFile:
    """Encode ``src`` into the code file ``dst`` (written atomically) with ``settings`` (format, n_q,
    label); returns what was written."""
    cf = _encoded(tok, src, settings["n_q"], settings["label"])
    write_code_file(cf, dst, settings["format"] == "npz")
    return cf


def write_code_file(cf: CodeFile, dst: Path, as_npz: bool) -> None:
    """Write ``cf`` to ``dst`` atomically: the whole file or nothing."""
    with atomic_path(dst) as tmp:
        tmp.write_bytes(code_bytes(cf, as_npz))


def _check_format(tok: Tokenizer, as_npz: bool) -> None:
    if len(tok.specs) > 1 and not as_npz:
        raise UsageError(
            f"a {tok.family} model's codes have {len(tok.specs)} levels "
            f"({', '.join(tok.specs)}), which only .npz holds: use -o FILE.npz"
        )


def _encoded(tok: Tokenizer, src: Path, n_q, label) -> CodeFile:
    """The codes of ``src`` (``-``: stdin), the file's errors naming it as the user gave it."""
    if str(src) == "-":
        tmp = _stdin_to_file(tok.modality.suffixes[0] if tok.modality.suffixes else "")
        try:
            return tok.encode_file(tmp, n_q, label)
        except VqtokError as e:  # name the input as the user gave it, not the temporary file
            raise type(e)(str(e).replace(str(tmp), "<stdin>")) from None
        finally:
            tmp.unlink(missing_ok=True)
    return tok.encode_file(src, n_q, label)
