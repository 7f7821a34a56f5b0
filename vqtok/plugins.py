"""The plugin manager: every plugin, built-in or third-party, comes through the ``vqtok`` entry points.

Plugins provide modalities (``vqtok_modalities``) and model families (``vqtok_families``). A plugin
that fails to import or whose hook raises is reported once on stderr, listed as failed by ``vqtok
plugins``, and skipped; the rest keep working. Two plugins claiming one modality or family name is an
error naming both, raised only when that name is used or listed.
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
from .models.base import Family

GROUP = "vqtok"


@dataclass
class PluginInfo:
    name: str  # the entry point's name
    module: str  # what the entry point points at
    distribution: str  # the installed package that declares it
    version: str
    status: str = "ok"  # "ok" or "failed: <reason>"
    modalities: list[str] = field(default_factory=list)
    families: list[str] = field(default_factory=list)


@dataclass
class Registry:
    plugins: list[PluginInfo]
    modalities: dict[str, Modality]
    conflicts: dict[str, list[str]]  # modality name -> the plugins that claim it
    families: dict[str, type[Family]] = field(default_factory=dict)
    family_conflicts: dict[str, list[str]] = field(default_factory=dict)

    def modality(self, name: str) -> Modality:
        return _lookup("modality", name, self.modalities, self.conflicts, "--modality")

    def family(self, name: str) -> type[Family]:
        return _lookup("model family", name, self.families, self.family_conflicts, "--arch")


def _lookup(kind: str, name: str, items: dict, conflicts: dict, flag: str):
    if name in conflicts:
        raise PluginError(f"{kind} {name!r} is claimed by several plugins: {', '.join(conflicts[name])}; "
                          "uninstall one of them")
    try:
        return items[name]
    except KeyError:
        known = ", ".join(sorted(items)) or "none"
        raise UsageError(f"unknown {kind} {name!r} ({flag}); installed: {known} (see 'vqtok plugins')") from None


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

    modalities, conflicts = _collect(pm.hook.vqtok_modalities, infos, "modalities", _check_modality)
    families, family_conflicts = _collect(pm.hook.vqtok_families, infos, "families", _check_family)
    return Registry(list(infos.values()), modalities, conflicts, families, family_conflicts)


def _check_modality(m) -> str | None:
    return m.name if isinstance(m, Modality) and m.name else None


def _check_family(f) -> str | None:
    return f.name if isinstance(f, type) and issubclass(f, Family) and f.name else None


def _collect(hook, infos: dict[str, PluginInfo], kind: str, name_of) -> tuple[dict, dict]:
    """Call one hook of every plugin: ``({name: item}, {name: [plugins]} for names claimed twice)``.
    ``name_of(item)`` is the item's name, or None when the item is not a valid one."""
    owners: dict[str, list[str]] = {}
    items: dict = {}
    for impl in hook.get_hookimpls():
        info = infos[impl.plugin_name]
        try:
            provided = list(impl.function() or [])
            bad = [item for item in provided if name_of(item) is None]
            if bad:
                what = "Modality" if kind == "modalities" else "Family subclass"
                raise TypeError(f"vqtok_{kind} returned {bad[0]!r}, not a named vqtok {what}")
        except Exception as e:
            _fail(info, e)
            continue
        for item in provided:
            name = name_of(item)
            owners.setdefault(name, []).append(impl.plugin_name)
            items.setdefault(name, item)
            getattr(info, kind).append(name)
    conflicts = {name: sorted(who) for name, who in owners.items() if len(who) > 1}
    for name in conflicts:
        items.pop(name)
    return items, conflicts


def _fail(info: PluginInfo, error: Exception) -> None:
    reason = f"{type(error).__name__}: {error}".splitlines()[0]
    info.status = f"failed: {reason}"
    _warn(f"plugin {info.name!r} ({info.module}) failed to load: {reason}")


def get_modality(name: str) -> Modality:
    return registry().modality(name)


def get_family(name: str) -> type[Family]:
    return registry().family(name)
