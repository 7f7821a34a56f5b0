"""Keep freed memory for the next layer: a glibc allocator setting that speeds up vqtok's CPU work.

A convolution network over a long signal allocates and frees activations of several MB at every layer
(a 2**17-sample chunk at 32 channels is 16 MB). glibc's ``malloc`` serves blocks that large with ``mmap``
and gives them back to the system on ``free``, and it trims the top of its heap whenever more than a
few MB lie free there; every new block then costs a page fault per 4 KiB page on first touch, which is
dear on virtual machines. On the 2-core CPU of our CI machine, with the default speech model
(``python bench/bench_codec.py --model ...speech-8k.safetensors`` with and without ``--system-allocator``),
30 s of speech in one tensor encode at 85x real time with these settings against 49x without (decode 82x
against 46x); through the file path, which works in smaller chunks, 80x against 73x; a training step of
``recipes/speech-8k.toml`` ran 1.0 against 0.7-0.85 steps per second (``bench/bench_train.py``, the
same thresholds set through glibc's ``MALLOC_*`` environment), and the adversarial fine-tune of
``recipes/speech-8k-gan.toml`` 0.39-0.46 against 0.32 when resumed under this module's settings.

:func:`keep_freed_memory` serves blocks up to 32 MB from the heap and trims it only above 256 MB of free
memory, so a freed activation is reused by the next layer. Resident memory stays bounded (by the peak
working set plus the trim threshold). It changes the whole process's allocator, so the CLI calls it at
start (``vqtok ...``); a program that uses vqtok as a library may call it too. Nothing happens where the
C library is not glibc, or where the user set the allocator's own environment (``MALLOC_*`` or
``GLIBC_TUNABLES``), which then wins.
"""

from __future__ import annotations

import ctypes
import os
import sys

M_TRIM_THRESHOLD, M_TOP_PAD, M_MMAP_THRESHOLD = -1, -2, -3  # glibc's <malloc.h> parameter numbers
SETTINGS = {M_MMAP_THRESHOLD: 32 << 20, M_TRIM_THRESHOLD: 256 << 20, M_TOP_PAD: 64 << 20}


def user_tuned() -> bool:
    """Whether the environment already sets glibc's allocator (the user's choice wins)."""
    return "GLIBC_TUNABLES" in os.environ or any(k.startswith("MALLOC_") for k in os.environ)


def keep_freed_memory() -> bool:
    """Apply :data:`SETTINGS` with glibc's ``mallopt``; True when every setting took effect."""
    if not sys.platform.startswith("linux") or user_tuned():
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt  # the C library the interpreter runs on
    except (OSError, AttributeError):  # musl and others have no mallopt
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    return all(mallopt(param, value) == 1 for param, value in SETTINGS.items())
