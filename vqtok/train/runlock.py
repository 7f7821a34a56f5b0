"""One training at a time per output: a lock file beside the model that a dead process does not hold.

``fcntl.flock`` locks belong to the open file: the kernel drops them when the process ends, however it
ends (``kill -9`` too), so a stale lock file never blocks the next run; a second live run is refused.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

from ..errors import UsageError
from ..files.atomic import write_error

try:
    import fcntl
except ImportError:  # not on POSIX: no lock, as before
    fcntl = None


@contextlib.contextmanager
def exclusive(lock: Path, what: str) -> Iterator[None]:
    """Hold ``lock`` (created if missing) for the ``with`` body; a usage error naming ``what`` when another
    live process holds it."""
    if fcntl is None:
        yield
        return
    try:
        lock.parent.mkdir(parents=True, exist_ok=True)
        f = open(lock, "a+")
    except OSError as e:  # before any work: a folder one may not write to, a full disk
        raise write_error(e, Path(what)) from None
    with f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            holder = f.read().strip() or "another process"
            raise UsageError(
                f"{what} is being written by another run ({holder}, lock {lock}); wait for it or write elsewhere"
            ) from None
        f.seek(0)
        f.truncate()
        f.write(f"pid {os.getpid()}")
        f.flush()
        try:
            yield
        finally:
            lock.unlink(missing_ok=True)
            fcntl.flock(f, fcntl.LOCK_UN)
