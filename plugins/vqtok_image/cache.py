"""A byte-bounded cache of decoded photos for random-crop training.

Random crops read the same photos over and over, and decoding a multi-megapixel PNG costs tens of
milliseconds, as much as a training step's share of the network on a small CPU. Decoded photos are kept
(most recently used first) up to ``limit`` bytes; a file that changed on disk is decoded again.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path

from PIL import Image

LIMIT_BYTES = 1 << 30  # 1 GiB: a few hundred photos of a few megapixels


class DecodedPhotos:
    def __init__(self, limit: int = LIMIT_BYTES):
        self.limit, self.used = limit, 0
        self._images: OrderedDict[tuple, Image.Image] = OrderedDict()

    def get(self, path: Path, mode: str, decode: Callable[[], Image.Image]) -> Image.Image:
        """The photo at ``path`` in ``mode``, decoded by ``decode()`` unless it is kept."""
        stat = Path(path).stat()
        key = (str(path), mode, stat.st_mtime_ns, stat.st_size)
        if key in self._images:
            self._images.move_to_end(key)
            return self._images[key]
        img = decode()
        size = img.width * img.height * len(img.getbands())
        if size <= self.limit:
            self._images[key] = img
            self.used += size
            while self.used > self.limit:
                _, old = self._images.popitem(last=False)
                self.used -= old.width * old.height * len(old.getbands())
        return img
