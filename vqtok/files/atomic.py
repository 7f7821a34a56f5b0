"""Writes that never leave a partial file: write to a temporary name beside the target, then rename.

The file that lands has the permissions a plain ``open(path, "w")`` would give it: an existing target's
mode, or else ``0o666`` less the umask. Writers that make their file private themselves (safetensors
0.8 creates every file with mode 0600, safetensors/safetensors#782, so a model trained by one user
could not be read by another) are corrected before the rename.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
from pathlib import Path

FULL_BELOW_BYTES = 16 * 1024  # a file system with less room than this counts as full
DISK_FULL = (errno.ENOSPC, errno.EDQUOT)
NOT_ALLOWED = (errno.EACCES, errno.EPERM, errno.EROFS)


@contextlib.contextmanager
def atomic_path(path: Path):
    """Yield a temporary path (same folder, same suffix) that becomes ``path`` only if the block succeeds.

    On any exception, Ctrl-C included, the temporary file is removed and ``path`` is untouched.
    The result's permissions are those of the file it replaces, or those of a newly created file.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise write_error(e, path, _disk_full(path.parent)) from None
    tmp = path.with_name(f".{path.stem}.partial-{secrets.token_hex(4)}{path.suffix}")
    try:
        yield tmp
        _sync(tmp)  # the data is on the disk before the name points at it
        if os.name == "posix":
            os.chmod(tmp, _mode_for(path))
        os.replace(tmp, path)
    except BaseException as e:
        full = _disk_full(path.parent)  # before the partial file goes and frees its space
        tmp.unlink(missing_ok=True)
        clear = write_error(e, path, full)
        if clear is e:
            raise
        raise clear from None


def _sync(path: Path) -> None:
    with open(path, "rb+") as f:
        os.fsync(f.fileno())


def _disk_full(folder: Path) -> bool:
    """Whether the file system of ``folder`` (or its nearest existing parent) has (almost) no room left."""
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    try:
        st = os.statvfs(folder)
    except (OSError, AttributeError):  # AttributeError: no statvfs on this system
        return False
    return min(st.f_bavail, st.f_bfree) * st.f_frsize < FULL_BELOW_BYTES


def write_error(error: BaseException, path: Path, disk_full: bool = False) -> BaseException:
    """A full disk or a folder one may not write to, as one line naming ``path``; other errors as they are.
    Writers report a full disk as an ``OSError`` (ENOSPC), in their own words (safetensors: "os error 28") or
    not at all (libsndfile: "System error."): an error while the disk is full counts as a full disk."""
    from ..errors import VqtokError

    text = str(error)
    if not isinstance(error, Exception):  # Ctrl-C, exit: as they are
        return error
    if (
        disk_full
        or getattr(error, "errno", None) in DISK_FULL
        or "os error 28" in text
        or "No space left on device" in text
    ):
        return VqtokError(f"{path}: no space left on the device; nothing was written")
    if getattr(error, "errno", None) in NOT_ALLOWED:
        return VqtokError(f"{path}: cannot write there ({error.strerror}); nothing was written")
    return error


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
