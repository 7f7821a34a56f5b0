"""The console vqtok writes tables, progress and messages to: stderr, at the terminal's width, and when
stderr is a file or a pipe (a log, CI, ``2>&1 | less``) wide enough that no table is cut (Rich would
otherwise assume 80 columns and shorten cells with "…"). ``COLUMNS`` still sets the width when given."""

from __future__ import annotations

import os
import sys

from rich.console import Console

PIPED_WIDTH = 240  # columns when stderr is not a terminal: whole rows of every table vqtok prints


def stderr_console() -> Console:
    piped = not sys.stderr.isatty() and "COLUMNS" not in os.environ
    return Console(stderr=True, width=PIPED_WIDTH if piped else None)
