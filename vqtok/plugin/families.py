"""Building the model of a run: the family named by ``model.arch``, sized for the modality."""

from __future__ import annotations

from ..config import RunConfig
from ..models.base import Family
from .modality import Modality
from .registry import get_family


def build_model(config: RunConfig, modality: Modality, label_names: list[str] = ()) -> Family:
    """The family's model for ``config``; a conditional family gets one class per label name."""
    family = get_family(config.model.arch)
    n_labels = len(label_names) if family.conditional else 0
    return family(modality.dims, modality.channels(config.options), config.model, config.family_options, n_labels)
