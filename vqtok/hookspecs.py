"""The plugin contract: the hooks a vqtok plugin may implement.

A plugin is a module (or object) registered under the ``vqtok`` entry-point group::

    # pyproject.toml of the plugin
    [project.entry-points.vqtok]
    sensor = "vqtok_sensor"

    # vqtok_sensor.py
    import vqtok

    @vqtok.hookimpl
    def vqtok_modalities():
        return [SensorModality()]

A plugin may also add model families (``vqtok_families``). The built-in ``image`` and ``audio``
modalities and the built-in families (``vqtok.models.builtin``) use exactly this path. ``HOOK_API_VERSION`` rises whenever
a hook changes in a way that breaks existing plugins; ``docs/plugins.md`` is the tutorial.
"""

import pluggy

HOOK_API_VERSION = 2  # 2: vqtok_families

hookspec = pluggy.HookspecMarker("vqtok")
hookimpl = pluggy.HookimplMarker("vqtok")


@hookspec
def vqtok_modalities():
    """Return a list of :class:`vqtok.modality.Modality` instances this plugin provides.

    Each modality's ``name`` must be unique across all installed plugins.
    """


@hookspec
def vqtok_families():
    """Return a list of model family classes, subclasses of :class:`vqtok.models.base.Family`.

    Each family's ``name`` (what ``--arch`` / ``model.arch`` takes) must be unique across all installed
    plugins.
    """
