"""``ImageModality``: Pillow I/O, resize + center crop or random crops for training, reconstruction grids."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from vqtok.errors import UsageError, VqtokError
from vqtok.modality import Modality

from .cache import DecodedPhotos
from .convert import to_8bit, to_pil, to_tensor
from .crops import random_crop
from .discriminator import PatchDiscriminator
from .grid import image_grid


@dataclass
class ImageOptions:
    size: int = 64  # training images are size x size
    channels: int = 3  # 3: RGB, 1: grayscale (every input is converted)
    # How a training example is cut: "fit" resizes the whole image and centre-crops it to size x size
    # (small images, digits); "random" takes a size x size window at a random scale and place (photos).
    crop: str = "fit"
    scale: list[float] = field(default_factory=lambda: [0.25, 1.0])  # "random": scale factors, log-uniform
    flip: bool = False  # "random": mirror half the crops left-right

    def __post_init__(self):
        if self.size < 1 or self.channels not in (1, 3):
            raise UsageError(f"image.size must be positive and image.channels 1 or 3, got {self.size}, {self.channels}")
        if self.crop not in ("fit", "random"):
            raise UsageError(f"image.crop must be 'fit' or 'random', got {self.crop!r}")
        if len(self.scale) != 2 or not 0 < self.scale[0] <= self.scale[1]:
            raise UsageError(f"image.scale must be [low, high] with 0 < low <= high, got {self.scale}")


def _suffixes(formats: dict) -> tuple[str, ...]:
    """The suffixes of the formats in ``formats`` (Pillow's ``Image.OPEN``: read; ``Image.SAVE``: written)."""
    Image.init()
    return tuple(sorted(ext for ext, fmt in Image.EXTENSION.items() if fmt in formats))


def _writable_format(path: Path) -> str:
    """Pillow's format name for ``path``'s suffix; refuses formats Pillow only reads."""
    fmt = Image.EXTENSION.get(Path(path).suffix.lower())
    if fmt not in Image.SAVE:
        raise VqtokError(f"{path}: Pillow cannot write this format; use .png, .jpg, .webp, ...")
    return fmt


class ImageModality(Modality):
    name = "image"
    description = "still images (PNG, JPEG, WebP, BMP, TIFF, ... via Pillow), grayscale or RGB"
    suffixes = _suffixes(Image.OPEN)
    output_suffixes = _suffixes(Image.SAVE)
    dims = 2
    config_class = ImageOptions
    default_suffix = ".png"
    long_inputs = "tiles"  # any size, in overlapping tiles
    pad_mode = "replicate"  # the edge repeated: no dark border in the codes
    default_model = Path(__file__).parent / "default" / "photo-8x.safetensors"  # recipes/photo-8x.toml
    named_models = {"digits": Path(__file__).parent / "default" / "mnist-vqvae.safetensors"}

    def __init__(self):
        self.decoded = DecodedPhotos()  # random crops come from photos decoded once

    def channels(self, options: ImageOptions) -> int:
        return options.channels

    def default_overrides(self) -> dict:
        return {"model": {"strides": [2, 2], "width": 64, "codebook_size": 512}}

    def discriminator(self, options: ImageOptions, width: int) -> PatchDiscriminator:
        return PatchDiscriminator(options.channels, width)

    def describe(self, options: ImageOptions) -> dict:
        return {"image_size": options.size, "channels": options.channels}

    def facts(self, options: ImageOptions) -> dict[str, str]:
        colour = {1: "grayscale", 3: "RGB"}.get(options.channels, f"{options.channels} channels")
        size = (
            f"any size (trained on {options.size} x {options.size} crops)"
            if options.crop == "random"
            else f"{options.size} x {options.size} (inputs resized and centre-cropped)"
        )
        return {"images": f"{colour}, {size}"}

    def bound_to_weights(self, options: ImageOptions) -> dict:
        return {"channels": options.channels}  # the networks are fully convolutional: any size fine-tunes

    def open(self, path: Path, options: ImageOptions, at_least: int | None = None) -> Image.Image:
        """Decode ``path`` and convert it to the configured mode. With ``at_least``, a JPEG may be
        decoded at a reduced scale whose sides stay at least that large (much faster for photos)."""
        try:
            with Image.open(path) as img:
                if at_least:
                    img.draft(img.mode, (at_least, at_least))
                img.load()
                img = to_8bit(ImageOps.exif_transpose(img))
                return img.convert("L" if options.channels == 1 else "RGB")
        except Image.DecompressionBombError as e:
            raise VqtokError(f"{path}: {e}") from None
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
            reason = "not an image Pillow can read" if isinstance(e, UnidentifiedImageError) else str(e)
            raise VqtokError(f"{path}: {reason}") from None

    def load(self, path: Path, options: ImageOptions) -> torch.Tensor:
        return to_tensor(self.open(path, options))

    def sees_whole_files(self, options: ImageOptions) -> bool:
        """Models trained on random crops encode photos of any size; "fit" models see ``size x size``."""
        return options.crop == "random"

    def evaluation_example(self, path: Path, options: ImageOptions) -> torch.Tensor:
        """The image resized (bicubic) and centre-cropped to ``size x size``."""
        img = self.open(path, options, at_least=options.size)
        return to_tensor(ImageOps.fit(img, (options.size, options.size), Image.Resampling.BICUBIC))

    def training_example(self, path: Path, options: ImageOptions, generator: torch.Generator) -> torch.Tensor:
        """``(C, size, size)``: the whole image fitted (``crop = "fit"``) or a random crop."""
        if options.crop == "fit":
            return self.evaluation_example(path, options)
        img = self.decoded.get(path, "L" if options.channels == 1 else "RGB", lambda: self.open(path, options))
        return to_tensor(random_crop(img, options.size, options.scale, options.flip, generator))

    def save(self, x: torch.Tensor, path: Path, options: ImageOptions) -> None:
        to_pil(x).save(path, format=_writable_format(path))

    def example_size(self, options: ImageOptions) -> list[int]:
        return [options.size, options.size]

    def save_batch(self, x: torch.Tensor, path: Path, options: ImageOptions) -> bool:
        """A grid of ``(N, C, H, W)`` images, up to 8 per row, in any format Pillow writes."""
        image_grid(x, columns=min(8, x.shape[0])).save(path, format=_writable_format(path))
        return True

    def preview(self, originals, reconstructions, path: Path, options: ImageOptions) -> bool:
        """PNG grid: originals on the top row, their reconstructions below."""
        n = min(8, originals.shape[0])
        image_grid(torch.cat([originals[:n], reconstructions[:n]]), columns=n).save(path, format="PNG")
        return True
