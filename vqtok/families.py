"""Model families by ``model.arch`` name, and building one for a modality."""

from __future__ import annotations

from .config import RunConfig
from .errors import UsageError
from .modality import Modality
from .models.vqvae import VQVAE

FAMILIES = {"vqvae": VQVAE}


def build_model(config: RunConfig, modality: Modality):
    try:
        family = FAMILIES[config.model.arch]
    except KeyError:
        raise UsageError(f"unknown model.arch {config.model.arch!r}; available: {', '.join(FAMILIES)}") from None
    return family(modality.dims, modality.channels(config.options), config.model)
