"""The ``vqtok`` command line: thin commands over the library.

stdout carries data only (code files, ``--json``); tables, progress and messages go to stderr. Exit
codes: 0 ok, 1 runtime error (bad file, bad model), 2 usage error, 130 interrupted (143: SIGTERM). Expected errors are
one line; ``--debug`` (or ``VQTOK_DEBUG=1``) shows the traceback. torch is imported only by commands
that need it, so ``--help`` and ``--version`` stay fast.
"""

# the commands register themselves on ``app``, in the order ``vqtok --help`` lists them
from . import codec, evaluate, info, plugins_command, quickstart, sample, train  # noqa: E402,F401
from .app import app, main

__all__ = ["app", "main"]
