"""The public path of :mod:`vqtok.plugin.testing`, which plugins import: the same module under this name."""

import sys

from .plugin import testing as _module

sys.modules[__name__] = _module
