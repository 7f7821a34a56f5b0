"""The plugin manager: every plugin, built-in or third-party, comes through the ``vqtok`` entry points.

Plugins provide modalities (``vqtok_modalities``), model families (``vqtok_families``) and commands
(``vqtok_commands``). A plugin that fails to import, whose hook raises, whose hooks are misspelled or
unmarked, or that was written for another major hook API is reported once on stderr, listed as failed
by ``vqtok plugins``, and skipped; the rest keep working. Two plugins claiming one modality, family or
command name is an error naming both, raised only when that name is used or listed.
"""

from __future__ import annotations

import contextlib
import functools
import os
import sys
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata

import pluggy

from .. import __version__
from ..errors import PluginError, UsageError
from ..models.base import Family
from . import hookspecs
from .modality import Modality, declaration_problems

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
    commands: list[str] = field(default_factory=list)
    hooks: list[str] = field(default_factory=list)  # the hooks it implements


@dataclass
class Registry:
    plugins: list[PluginInfo]
    modalities: dict[str, Modality]
    conflicts: dict[str, list[str]]  # modality name -> the plugins that claim it
    families: dict[str, type[Family]] = field(default_factory=dict)
    family_conflicts: dict[str, list[str]] = field(default_factory=dict)
    commands: dict[str, object] = field(default_factory=dict)  # name -> typer.Typer or function
    command_conflicts: dict[str, list[str]] = field(default_factory=dict)

    def modality(self, name: str) -> Modality:
        return _lookup("modality", name, self.modalities, self.conflicts, "--modality")

    def family(self, name: str) -> type[Family]:
        return _lookup("model family", name, self.families, self.family_conflicts, "--arch")


def _lookup(kind: str, name: str, items: dict, conflicts: dict, flag: str):
    if name in conflicts:
        raise PluginError(
            f"{kind} {name!r} is claimed by several plugins: {', '.join(conflicts[name])}; uninstall one of them"
        )
    try:
        return items[name]
    except KeyError:
        known = ", ".join(sorted(items)) or "none"
        raise UsageError(f"unknown {kind} {name!r} ({flag}); installed: {known} (see 'vqtok plugins')") from None


def _warn(message: str) -> None:
    print(f"vqtok: warning: {message}", file=sys.stderr)


def _entry_points() -> list[metadata.EntryPoint]:
    return sorted(metadata.entry_points(group=GROUP), key=lambda ep: ep.name)


_IN_PROCESS: dict[str, object] = {}  # plugins registered by installed(), not through an entry point


@contextlib.contextmanager
def installed(plugin, name: str):
    """Register ``plugin`` (a module or object with hook functions) as if it were installed under the entry
    point ``name``, for this process and the ``with`` block: what ``vqtok.testing`` does for a plugin
    under test."""
    if name in _IN_PROCESS:
        raise PluginError(f"a plugin named {name!r} is already registered in this process")
    _IN_PROCESS[name] = plugin
    registry.cache_clear()
    try:
        yield
    finally:
        _IN_PROCESS.pop(name, None)
        registry.cache_clear()


def _sources() -> list[tuple[PluginInfo, Callable[[], object]]]:
    """Every plugin to load: the entry points of installed packages, then those of :func:`installed`."""
    found = [
        (PluginInfo(ep.name, ep.value, ep.dist.name if ep.dist else "?", ep.dist.version if ep.dist else "?"), ep.load)
        for ep in _entry_points()
    ]
    for name, plugin in _IN_PROCESS.items():
        module = getattr(plugin, "__name__", type(plugin).__name__)
        found.append((PluginInfo(name, module, "(registered in this process)", "-"), lambda p=plugin: p))
    return found


@functools.cache
def registry() -> Registry:
    """Load every plugin once per process."""
    pm = pluggy.PluginManager(GROUP)
    pm.add_hookspecs(hookspecs)
    infos: dict[str, PluginInfo] = {}
    for info, load in _sources():
        infos[info.name] = info
        try:
            plugin = load()
            problems = api_problems(plugin) + hook_problems(plugin)
            if problems:
                raise PluginError("; ".join(problems))
            pm.register(plugin, name=info.name)
            info.hooks = sorted(impl.name for impl in pm.get_hookcallers(plugin) or [])
        except Exception as e:  # a broken plugin must never take vqtok down
            _fail(info, e)

    modalities, conflicts = _collect(pm.hook.vqtok_modalities, infos, "modalities", _check_modality)
    families, family_conflicts = _collect(pm.hook.vqtok_families, infos, "families", _check_family)
    commands, command_conflicts = _collect(pm.hook.vqtok_commands, infos, "commands", command_name)
    return Registry(
        list(infos.values()), modalities, conflicts, families, family_conflicts, commands, command_conflicts
    )


def api_problems(plugin) -> list[str]:
    """A plugin that states another major hook API version than this vqtok's (``VQTOK_HOOK_API``)."""
    stated = getattr(plugin, "VQTOK_HOOK_API", None)
    if stated is None or str(stated).split(".")[0] == str(hookspecs.HOOK_API_VERSION):
        return []
    return [
        f"written for vqtok hook API {stated}, but this vqtok {__version__} has hook API "
        f"{hookspecs.HOOK_API_VERSION}.{hookspecs.HOOK_API_MINOR}: install a version of the plugin made for it"
    ]


def command_name(command) -> str | None:
    """The name a plugin's command goes by on the command line: a ``typer.Typer``'s ``info.name``, a
    function's name with ``-`` for ``_``; None for anything else."""
    import typer

    if isinstance(command, typer.Typer):
        name = command.info.name
        return name if isinstance(name, str) and name else None
    if callable(command) and getattr(command, "__name__", "").isidentifier():
        return command.__name__.replace("_", "-")
    return None


def hook_problems(plugin) -> list[str]:
    """What is wrong with a plugin's hooks, as pluggy would silently accept it: a function marked
    ``@vqtok.hookimpl`` whose name is no vqtok hook (misspelled), and a function named like a hook but not
    marked (so never called)."""
    known = {name for name in dir(hookspecs) if name.startswith("vqtok_")}
    problems = []
    for name in dir(plugin):
        if not name.startswith("vqtok_"):
            continue
        value = getattr(plugin, name, None)
        marked = hasattr(value, f"{GROUP}_impl")
        if marked and name not in known:
            problems.append(
                f"{name} is marked @vqtok.hookimpl but is no vqtok hook (known: {', '.join(sorted(known))})"
            )
        elif callable(value) and not marked and name in known:
            problems.append(f"{name} is not marked @vqtok.hookimpl, so vqtok would never call it")
    return problems


def _check_modality(m) -> str | None:
    if not isinstance(m, Modality):
        return None
    problems = declaration_problems(m)
    if problems:
        raise PluginError(f"modality {m.name!r}: {'; '.join(problems)}")
    return m.name or None


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
                what = {
                    "modalities": "a named vqtok Modality",
                    "families": "a named vqtok Family subclass",
                    "commands": "a typer.Typer with a name or a function",
                }[kind]
                raise TypeError(f"vqtok_{kind} returned {bad[0]!r}, not {what}")
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
    """Mark a plugin failed and say so in one line; with ``--debug`` / ``VQTOK_DEBUG=1`` also the traceback."""
    reason = f"{type(error).__name__}: {error}".splitlines()[0]
    info.status = f"failed: {reason}"
    _warn(f"plugin {info.name!r} ({info.module}) failed to load: {reason}")
    if debugging():
        traceback.print_exception(error, file=sys.stderr)


def debugging() -> bool:
    """Whether errors show their full traceback (``vqtok --debug`` sets ``VQTOK_DEBUG=1``)."""
    return os.environ.get("VQTOK_DEBUG") == "1"


def blame(error: BaseException) -> PluginInfo | None:
    """The installed plugin whose code raised ``error``: the innermost frame of its traceback (or of the
    errors it was raised from) that lies in a plugin's package; None when none does (vqtok's own code)."""
    loaded = registry.cache_info().currsize > 0
    roots = {p.module.split(":")[0].split(".")[0]: p for p in registry().plugins} if loaded else {}
    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        found = None
        tb = error.__traceback__
        while tb is not None:
            module = tb.tb_frame.f_globals.get("__name__", "")
            found = roots.get(module.split(".")[0], found)
            tb = tb.tb_next
        if found is not None:
            return found
        error = error.__cause__ or error.__context__
    return None


def get_modality(name: str) -> Modality:
    return registry().modality(name)


def get_family(name: str) -> type[Family]:
    return registry().family(name)
