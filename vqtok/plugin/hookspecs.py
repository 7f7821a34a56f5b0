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

A plugin may also add model families (``vqtok_families``) and commands (``vqtok_commands``). A plugin
module may state the hook API it was written for, ``VQTOK_HOOK_API = 2``: a plugin written for another
major version is refused with a message saying so. The built-in ``image`` and ``audio``
modalities and the built-in families (``vqtok.models.builtin``) use exactly this path.
``HOOK_API_VERSION`` rises whenever a hook changes in a way that breaks existing plugins; ``docs/plugins.md``
is the tutorial.
"""

import pluggy

HOOK_API_VERSION = 2  # major version: rises when a hook changes so that existing plugins break
HOOK_API_MINOR = 2  # rises when hooks are added or names change, the old still read: 2.0 vqtok_families,
# 2.1 vqtok_commands, 2.2 ModelConfig.width / max_width and LatentSpec.depth (were channels / max_channels / channels)
# and Family.code_counts

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


@hookspec
def vqtok_commands():
    """Return a list of commands to add to the ``vqtok`` command line: ``typer.Typer`` apps (added as a
    command group under their ``info.name``) or plain functions (added as one command, named after the
    function with ``_`` as ``-``; typer reads its options from the signature, its help from the docstring).

    Keep the plugin module's imports light (import torch inside the command): ``vqtok --help`` loads
    every plugin to list their commands. A name that a built-in or another plugin's command has is refused.
    """
