"""The built-in image modality: every format Pillow reads, grayscale or RGB, in [-1, 1].

Training brings each image to ``size x size`` (resize the shorter side, then center crop). Encoding
is fully convolutional: an image keeps its own size, padded at the right and bottom (edge pixels
repeated) up to a multiple of the model's downsampling factor; the ``.npz`` code file records the
original size so that decoding crops back to it.
"""

from __future__ import annotations

from vqtok.hookspecs import hookimpl

from .modality import ImageModality, ImageOptions

__all__ = ["ImageModality", "ImageOptions", "vqtok_modalities"]


@hookimpl
def vqtok_modalities():
    return [ImageModality()]
