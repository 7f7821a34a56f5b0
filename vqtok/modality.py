"""The public path of :mod:`vqtok.plugin.modality`, which plugins import: the same module under this name."""

import sys

from .plugin import modality as _module

sys.modules[__name__] = _module
