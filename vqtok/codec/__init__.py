"""The tokenizer at run time: loading a model (:mod:`.tokenizer`), code file arrays (:mod:`.arrays`), long
inputs streamed or tiled in bounded memory (:mod:`.long_inputs`, :mod:`.chunking`, :mod:`.tiling`)."""

from .tokenizer import Tokenizer, crop_batch

__all__ = ["Tokenizer", "crop_batch"]
