"""The tokenizer at run time: loading a model (:mod:`.tokenizer`), code file arrays (:mod:`.arrays`), long
inputs streamed or tiled in bounded memory (:mod:`.long_inputs`, :mod:`.chunking`, :mod:`.tiling`), short
files stacked in batches (:mod:`.batching`), entropy coding with the prior (:mod:`.compression`); and the
files and folders of the commands: encode and decode (:mod:`.file_io`, a corpus into a folder:
:mod:`.corpus`), compress and decompress (:mod:`.compress_files`), samples (:mod:`.sample_files`)."""

from .tokenizer import Tokenizer, crop_batch

__all__ = ["Tokenizer", "crop_batch"]
