"""Random training crops of photos: a ``size x size`` window at a random scale and place, maybe mirrored.

Photos are larger than what a network trains on, and a tokenizer for any photo must see them at the
scales people use: the full-resolution texture of a camera file as well as a downscaled picture. So each
example draws a scale factor log-uniformly from ``scale`` (1.0 is the file's own resolution; never so small
that the shorter side drops under ``size``), a window of that scale at a uniform position, and resamples
just that window (Pillow's ``resize`` with a ``box``, antialiased), which costs far less than resizing
the whole photo.
"""

from __future__ import annotations

import math

import torch
from PIL import Image


def _uniform(low: float, high: float, generator: torch.Generator) -> float:
    return low + (high - low) * float(torch.rand((), generator=generator))


def random_crop(img: Image.Image, size: int, scale: list[float], flip: bool, generator: torch.Generator) -> Image.Image:
    """A ``size x size`` crop of ``img`` at a scale drawn from ``scale``, mirrored left-right half the
    time when ``flip``."""
    width, height = img.size
    smallest = size / min(width, height)  # the factor that makes the shorter side exactly `size`
    low, high = max(scale[0], smallest), max(scale[1], smallest)
    factor = math.exp(_uniform(math.log(low), math.log(high), generator))
    span = size / factor  # the window's side in the file's pixels
    # The window starts on a whole pixel of the scaled photo, so that at scale 1 the crop is exact.
    left, top = (
        int(torch.randint(max(math.floor(side * factor) - size, 0) + 1, (), generator=generator)) / factor
        for side in (width, height)
    )
    box = (left, top, min(left + span, width), min(top + span, height))  # rounding must not leave the photo
    crop = img.resize((size, size), Image.Resampling.BICUBIC, box=box)
    if flip and float(torch.rand((), generator=generator)) < 0.5:
        crop = crop.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    return crop
