"""Encoding a corpus into a folder of code files: split over processes and machines, resumable.

``OUT/manifest.jsonl`` has one JSON line per file handled: ``input``, its ``size`` and ``mtime_ns``,
``output`` (relative to OUT), the code ``shapes``, the ``model`` hash, the ``settings`` (format, n_q,
label), ``status`` (``ok`` or ``failed``) and the ``error``. Every process appends its lines with one
``write`` each to the same file (``O_APPEND``), so a killed run leaves at most a torn last line, which is
skipped on reading. A rerun of the same command reads the manifest (for each output, its last line
wins), writes it back compacted, and encodes only what is missing, stale (the input's size or mtime
changed, another model or settings) or failed. Outputs are written atomically before their line, so
nothing is lost or encoded twice by a kill at any moment.

The sorted list of files is split into shards, file ``i`` going to shard ``i mod S``: ``--jobs N`` runs N
processes on this machine (each with its share of the cores); under ``torchrun`` each rank takes
``--jobs`` shards of ``S = WORLD_SIZE x jobs``, so every file is encoded by exactly one process of one
node. The counts at the end are read from the manifest after every rank is done.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import queue
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.progress import Progress

from ..errors import UsageError, VqtokError
from ..files.atomic import atomic_path

MANIFEST = "manifest.jsonl"


@dataclass
class Shard:
    """What one process encodes, and how."""

    jobs: list[tuple[Path, Path]]  # (input file, output path)
    model: Path
    settings: dict  # {"format", "n_q", "label"}
    device: str
    threads: int
    batch: int  # short files of one size encoded together, up to this many
    out: Path
    parent: int  # the process that started it: the shard stops when that one is gone


def read_manifest(out: Path) -> dict[str, dict]:
    """The last record of each output (by its path relative to ``out``); torn or foreign lines skipped."""
    path = out / MANIFEST
    records: dict[str, dict] = {}
    if not path.is_file():
        return records
    for line in path.read_text(errors="replace").splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue  # torn by a kill in mid-write
        if isinstance(record, dict) and isinstance(record.get("output"), str):
            records[record["output"]] = record
    return records


def compact_manifest(out: Path, records: dict[str, dict]) -> None:
    """Write ``records`` back as the manifest, one line per output."""
    with atomic_path(out / MANIFEST) as tmp:
        tmp.write_text("".join(json.dumps(r, sort_keys=True) + "\n" for r in records.values()))


def is_done(record: dict | None, src: Path, dst: Path, model_hash: str, settings: dict) -> bool:
    """Whether ``record`` says ``src`` was encoded into ``dst`` as this run would encode it now."""
    if record is None or record.get("status") != "ok" or not dst.is_file():
        return False
    try:
        st = src.stat()
    except OSError:
        return False
    return (record.get("size"), record.get("mtime_ns"), record.get("model"), record.get("settings")) == (
        st.st_size,
        st.st_mtime_ns,
        model_hash,
        settings,
    )


def _record(
    src: Path, dst: Path, out: Path, model_hash: str, settings: dict, shapes: dict | None, error: str | None
) -> dict:
    try:
        st = src.stat()
        size, mtime = st.st_size, st.st_mtime_ns
    except OSError:
        size = mtime = None
    return {
        "input": os.fsdecode(src),
        "size": size,
        "mtime_ns": mtime,
        "output": os.fsdecode(dst.relative_to(out)),
        "shapes": shapes,
        "model": model_hash,
        "settings": settings,
        "status": "failed" if error else "ok",
        "error": error,
    }


def _append(path: Path, record: dict) -> None:
    """One line, one ``write`` with ``O_APPEND``: lines of several processes never interleave."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (json.dumps(record, sort_keys=True) + "\n").encode())
    finally:
        os.close(fd)


def encode_shard(shard: Shard, report) -> None:
    """Encode ``shard.jobs``, short files stacked in batches (:mod:`vqtok.codec.batching`), each output
    written atomically, then its manifest line; ``report(status, message)`` after each file. Stops early
    when the process that started it is gone (killed). A wrong --label or --n-q raises before any file."""
    import torch

    from .batching import encode_files
    from .file_io import write_code_file
    from .tokenizer import Tokenizer

    torch.set_num_threads(shard.threads)
    tok = Tokenizer.load(shard.model, device=shard.device)
    settings = shard.settings
    sources = [src for src, _ in shard.jobs]
    for i, cf, failure in encode_files(tok, sources, settings["n_q"], settings["label"], shard.batch):
        if os.getppid() != shard.parent and shard.parent != os.getpid():
            return  # orphaned: the run was killed; a rerun picks up from the manifest
        src, dst = shard.jobs[i]
        shapes, error = None, str(failure) if failure else None
        if cf is not None:
            try:
                write_code_file(cf, dst, settings["format"] == "npz")
                shapes = {k: list(v.shape) for k, v in cf.arrays.items()}
            except VqtokError as e:
                error = str(e)
        _append(shard.out / MANIFEST, _record(src, dst, shard.out, tok.model_hash, settings, shapes, error))
        report("failed" if error else "ok", error)


def _shard_process(shard: Shard, messages) -> None:
    """A ``--jobs`` child: encode the shard, sending ``(status, message)`` to the parent."""
    try:
        encode_shard(shard, lambda status, message: messages.put((status, message)))
    except VqtokError as e:  # e.g. the model cannot be read, an unknown --label: the same for every file
        messages.put(("usage" if isinstance(e, UsageError) else "error", str(e)))
    except KeyboardInterrupt:
        pass


def plan(
    jobs: list[tuple[Path, Path]], out: Path, model_hash: str, settings: dict, main: bool
) -> tuple[list[tuple[Path, Path]], int]:
    """The jobs still to do (sorted by output) and how many are already done; rank 0 (``main``)
    compacts the manifest."""
    records = read_manifest(out)
    if main and records:
        compact_manifest(out, records)
    todo, done = [], 0
    for src, dst in sorted(jobs, key=lambda j: os.fsencode(j[1])):
        if is_done(records.get(os.fsdecode(dst.relative_to(out))), src, dst, model_hash, settings):
            done += 1
        else:
            todo.append((src, dst))
    return todo, done


def encode_corpus(
    jobs: list[tuple[Path, Path]],
    model: Path,
    model_hash: str,
    out: Path,
    settings: dict,
    device: str,
    n_jobs: int,
    console: Console,
    batch: int = 1,
) -> int:
    """Encode ``jobs`` into ``out`` (see the module) with ``n_jobs >= 1`` processes (checked by the caller,
    :func:`vqtok.codec.file_io.encode_inputs`); returns how many files failed, over all ranks."""
    from .. import distributed

    ranked = distributed.launched_by_torchrun()
    if ranked:
        _join_ranks()
    rank, world = distributed.rank(), distributed.world_size()
    main = rank == 0
    out.mkdir(parents=True, exist_ok=True)
    todo, done = plan(jobs, out, model_hash, settings, main)
    _barrier()  # no rank appends before rank 0 has compacted the manifest
    shards = world * n_jobs
    mine = [rank + world * k for k in range(n_jobs)]
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    threads = max(1, cpus // n_jobs)
    made = [Shard(todo[s::shards], model, settings, device, threads, batch, out, os.getpid()) for s in mine]
    if main and done:
        rest = f"encoding the other {len(todo)}" if todo else "nothing left to encode"
        console.print(
            f"{done} of {len(jobs)} file(s) already encoded (manifest {out / MANIFEST}); {rest}", highlight=False
        )
    count = sum(len(s.jobs) for s in made)
    with Progress(console=console, transient=True, disable=not main or count < 2) as progress:
        task = progress.add_task("encode", total=count)

        def report(status: str, message: str | None) -> None:
            if status == "failed":
                console.print(f"skipped: {message}", highlight=False, markup=False)
            progress.advance(task)

        if n_jobs == 1:
            encode_shard(made[0], report)
        else:
            _run_processes(made, report)
    _barrier()  # every rank's lines are in the manifest
    records = read_manifest(out)
    wanted = {os.fsdecode(dst.relative_to(out)) for _, dst in jobs}
    failed = sum(1 for name in wanted if records.get(name, {}).get("status") != "ok")
    if main:
        console.print(
            f"wrote {len(jobs) - failed} code file(s) to {out}" + (f"; {failed} failed" if failed else ""),
            highlight=False,
        )
    if ranked:
        import torch.distributed as dist

        dist.destroy_process_group()
    return failed


def _run_processes(shards: list[Shard], report) -> None:
    """Run each shard in a process of its own (spawned: torch's threads do not survive a fork), passing
    each file's report on; a child that dies or fails ends the run with a clean error."""
    ctx = multiprocessing.get_context("spawn")
    messages = ctx.Queue()
    procs = [ctx.Process(target=_shard_process, args=(s, messages), daemon=True) for s in shards if s.jobs]
    for p in procs:
        p.start()
    errors = []
    try:
        while True:
            try:
                status, message = messages.get(timeout=0.2)
            except queue.Empty:
                if not any(p.is_alive() for p in procs):
                    break
                continue
            if status in ("error", "usage"):
                errors.append((status, message))
            else:
                report(status, message)
        while not messages.empty():  # what the last ones sent before they ended
            status, message = messages.get()
            errors.append((status, message)) if status in ("error", "usage") else report(status, message)
    finally:
        for p in procs:
            p.join(timeout=5)
            if p.is_alive():
                p.terminate()
    if errors:
        status, message = errors[0]
        raise (UsageError if status == "usage" else VqtokError)(message)
    dead = [p for p in procs if p.exitcode != 0]
    if dead:
        raise VqtokError(
            f"{len(dead)} encoding process(es) died (exit status {dead[0].exitcode}); what they "
            "finished is in the manifest: run the same command again to encode the rest"
        )


def _join_ranks() -> None:
    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group("gloo")


def _barrier() -> None:
    from .. import distributed

    if distributed.is_distributed():
        import torch.distributed as dist

        dist.barrier()
