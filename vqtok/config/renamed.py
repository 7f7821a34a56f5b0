"""Settings that have been renamed, read under their current names wherever settings come in.

A recipe, an override or a plugin's defaults that use an old name still work, with a warning that names
the new one; settings stored in model files and checkpoints written before a rename are read silently
(their owner cannot edit them). Giving both names of one setting is an error.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

from ..errors import UsageError

# (section, old key) -> current key. Each name means one thing: ``width`` a network's conv width,
# ``channels`` the channels of the signal (e.g. ``image.channels``).
RENAMED = {
    ("model", "channels"): "width",
    ("model", "max_channels"): "max_width",
    ("adversarial", "channels"): "width",
}


class RenamedSettingWarning(FutureWarning):
    """A setting given under a name it no longer has."""


def warn_renamed(message: str) -> None:
    warnings.warn(message, RenamedSettingWarning, stacklevel=3)


def current_names(settings: dict, source: str = "", on_old: Callable[[str], None] | None = None) -> dict:
    """A copy of the nested ``settings`` (``{section: {key: value}}`` plus top-level text) with each
    renamed key under its current name; ``on_old(message)`` is told of each (None: renamed silently).
    ``source`` names where the settings came from, for the messages."""
    out = dict(settings)
    for (section, old), new in RENAMED.items():
        table = out.get(section)
        if not isinstance(table, dict) or old not in table:
            continue
        where = f" in {source}" if source else ""
        if new in table:
            raise UsageError(f"{section}.{old} and {section}.{new} both given{where}: {old} is the old name of {new}")
        table = dict(table)
        table[new] = table.pop(old)
        out[section] = table
        if on_old is not None:
            on_old(f"{section}.{old} is now called {section}.{new}{where}; read as {section}.{new}")
    return out
