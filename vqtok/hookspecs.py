"""The public path of :mod:`vqtok.plugin.hookspecs`, which plugins import: the same module under this name."""

import sys

from .plugin import hookspecs as _module

sys.modules[__name__] = _module
