"""The plugin machinery: the hook specifications (``hookspecs``, small and versioned), the registry of
built-in and installed plugins, validated (``registry``), the modality contract (``modality``), how a
family is chosen for a run (``families``), the shipped default models (``defaults``) and the pytest plugin
for plugin authors (``testing``). Plugins import the public paths ``vqtok.modality``, ``vqtok.hookspecs``
and ``vqtok.testing``, which are these modules under their old names."""
