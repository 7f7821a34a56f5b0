"""Two mistakes pluggy would accept silently: a hook name misspelled (``vqtok_modality``) and a hook
function left unmarked (``vqtok_families`` without ``@vqtok.hookimpl``)."""

from __future__ import annotations

from vqtok_sensor import SensorModality

import vqtok


@vqtok.hookimpl
def vqtok_modality():  # should be vqtok_modalities
    return [SensorModality()]


def vqtok_families():  # not marked
    return []
