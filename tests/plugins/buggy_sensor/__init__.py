"""The sensor modality with a bug in its reader: ``load`` divides by zero, an error no plugin means to
raise. vqtok must name this plugin in one line, and show the traceback into this file with --debug."""

from __future__ import annotations

from vqtok_sensor import SensorModality

import vqtok


class BuggySensor(SensorModality):
    name = "buggy"

    def load(self, path, options):
        return self._scale(path) / 0

    def _scale(self, path):
        return len(str(path)) // 0  # the bug


@vqtok.hookimpl
def vqtok_modalities():
    return [BuggySensor()]
