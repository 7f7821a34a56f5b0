"""Typed run configuration: defaults, TOML recipes and ``key=value`` overrides, validated with clear errors.

A recipe is a TOML file::

    # vqtok train --recipe recipes/quickstart-audio.toml -o speech.safetensors
    modality = "audio"
    data = "@samples/speech"      # relative to the recipe; "@samples/..." = data shipped with vqtok

    [audio]                       # the modality's own options (its ``config_class``)
    sample_rate = 8000

    [model]
    codebook_size = 256

    [train]
    steps = 600

Precedence, lowest first: built-in defaults, the modality's defaults, the settings of the model a
fine-tuning run starts from (``init``, :mod:`vqtok.train.finetune`), the recipe, ``key=value`` overrides, then
explicit flags such as ``--steps``. Unknown keys and ill-typed values are errors.
"""

from .parsing import build_section, layered, parse_override, read_recipe, resolve_data_path
from .resolution import from_dict, resolve, validate
from .schema import MAX_CODEBOOK, SAMPLES_DIR, AdversarialConfig, ModelConfig, RunConfig, TrainConfig

__all__ = [
    "SAMPLES_DIR",
    "MAX_CODEBOOK",
    "ModelConfig",
    "TrainConfig",
    "AdversarialConfig",
    "RunConfig",
    "parse_override",
    "read_recipe",
    "resolve_data_path",
    "build_section",
    "layered",
    "resolve",
    "from_dict",
    "validate",
]
