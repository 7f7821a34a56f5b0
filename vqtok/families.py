"""Building the model of a run: the family named by ``model.arch``, sized for the modality."""

from __future__ import annotations

from .config import RunConfig
from .modality import Modality
from .models.base import Family
from .plugins import get_family


def build_model(config: RunConfig, modality: Modality, n_labels: int = 0) -> Family:
    """The family's model for ``config``; ``n_labels`` is the number of classes of a conditional family."""
    family = get_family(config.model.arch)
    return family(modality.dims, modality.channels(config.options), config.model, config.family_options,
                  n_labels)
