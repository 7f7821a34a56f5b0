"""Writes that never leave a partial file: write to a temporary name beside the target, then rename.

The file that lands has the permissions a plain ``open(path, "w")`` would give it: an existing target's
mode, or else ``0o666`` less the umask. Writers that make their file private themselves (safetensors
0.8 creates every file with mode 0600, safetensors/safetensors#782, so a model trained by one user
could not be read by another) are corrected before the rename.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path


@contextlib.contextmanager
def atomic_path(path: Path):
    """Yield a temporary path (same folder, same suffix) that becomes ``path`` only if the block succeeds.

    On any exception, Ctrl-C included, the temporary file is removed and ``path`` is untouched.
    The result's permissions are those of the file it replaces, or those of a newly created file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.partial-{secrets.token_hex(4)}{path.suffix}")
    try:
        yield tmp
        if os.name == "posix":
            os.chmod(tmp, _mode_for(path))
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _mode_for(path: Path) -> int:
    """The permission bits a plain ``open(path, "w")`` leaves: the existing file's, or a new file's."""
    try:
        return path.stat().st_mode & 0o777
    except FileNotFoundError:
        return 0o666 & ~_umask()


def _umask() -> int:
    """The process's umask, read without changing it where Linux tells it (``/proc/self/status``)."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o077)  # elsewhere: set and restore (the strict value, should another thread create a file)
    os.umask(mask)
    return mask
