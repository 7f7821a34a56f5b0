"""The plugin manager: every plugin, built-in or third-party, comes through the ``vqtok`` entry points.

A plugin that fails to import or whose hook raises is reported once on stderr, listed as failed by
``vqtok plugins``, and skipped; the rest keep working. Two plugins claiming one modality name is an
error naming both, raised only when that modality is used or listed.
"""

from __future__ import annotations

import functools
import sys
from dataclasses import dataclass, field
from importlib import metadata

import pluggy

from . import hookspecs
from .errors import PluginError, UsageError
from .modality import Modality

GROUP = "vqtok"


@dataclass
class PluginInfo:
    name: str  # the entry point's name
    module: str  # what the entry point points at
    distribution: str  # the installed package that declares it
    version: str
    status: str = "ok"  # "ok" or "failed: <reason>"
    modalities: list[str] = field(default_factory=list)


@dataclass
class Registry:
    plugins: list[PluginInfo]
    modalities: dict[str, Modality]
    conflicts: dict[str, list[str]]  # modality name -> the plugins that claim it

    def modality(self, name: str) -> Modality:
        if name in self.conflicts:
            raise PluginError(
                f"modality {name!r} is claimed by several plugins: {', '.join(self.conflicts[name])}; "
                "uninstall one of them"
            )
        try:
            return self.modalities[name]
        except KeyError:
            known = ", ".join(sorted(self.modalities)) or "none"
            raise UsageError(f"unknown modality {name!r}; installed: {known} (see 'vqtok plugins')") from None


def _warn(message: str) -> None:
    print(f"vqtok: warning: {message}", file=sys.stderr)


def _entry_points() -> list[metadata.EntryPoint]:
    return sorted(metadata.entry_points(group=GROUP), key=lambda ep: ep.name)


@functools.cache
def registry() -> Registry:
    """Load every plugin once per process."""
    pm = pluggy.PluginManager(GROUP)
    pm.add_hookspecs(hookspecs)
    infos: dict[str, PluginInfo] = {}
    for ep in _entry_points():
        info = PluginInfo(ep.name, ep.value, ep.dist.name if ep.dist else "?",
                          ep.dist.version if ep.dist else "?")
        infos[ep.name] = info
        try:
            pm.register(ep.load(), name=ep.name)
        except Exception as e:  # a broken plugin must never take vqtok down
            _fail(info, e)

    owners: dict[str, list[str]] = {}
    modalities: dict[str, Modality] = {}
    for impl in pm.hook.vqtok_modalities.get_hookimpls():
        info = infos[impl.plugin_name]
        try:
            provided = list(impl.function() or [])
            bad = [m for m in provided if not isinstance(m, Modality) or not m.name]
            if bad:
                raise TypeError(f"vqtok_modalities returned {bad[0]!r}, not a named vqtok Modality")
        except Exception as e:
            _fail(info, e)
            continue
        for m in provided:
            owners.setdefault(m.name, []).append(impl.plugin_name)
            modalities.setdefault(m.name, m)
            info.modalities.append(m.name)
    conflicts = {name: sorted(who) for name, who in owners.items() if len(who) > 1}
    for name in conflicts:
        modalities.pop(name)
    return Registry(list(infos.values()), modalities, conflicts)


def _fail(info: PluginInfo, error: Exception) -> None:
    reason = f"{type(error).__name__}: {error}".splitlines()[0]
    info.status = f"failed: {reason}"
    _warn(f"plugin {info.name!r} ({info.module}) failed to load: {reason}")


def get_modality(name: str) -> Modality:
    return registry().modality(name)
