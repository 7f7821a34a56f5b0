"""Two mistakes pluggy would accept silently: a hook name misspelled (``vqtok_modality``) and a hook
function left unmarked (``vqtok_families`` without ``@vqtok.hookimpl``)."""

from __future__ import annotations

import vqtok
from vqtok_sensor import SensorModality


@vqtok.hookimpl
def vqtok_modality():  # should be vqtok_modalities
    return [SensorModality()]


def vqtok_families():  # not marked
    return []
