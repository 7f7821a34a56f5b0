"""The built-in image modality: Pillow I/O in [-1, 1], training crops, save/load, bad files, previews."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from vqtok_image import ImageModality, ImageOptions

import vqtok
from vqtok.errors import VqtokError

SAMPLES = Path(vqtok.__file__).parent / "samples" / "images"
STEP = 1 / 127.5  # one 8-bit level in [-1, 1]


@pytest.fixture(scope="module")
def mod() -> ImageModality:
    return ImageModality()


def rgb_array(h: int, w: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def expected_tensor(a: np.ndarray) -> torch.Tensor:
    """``(H, W, 3)`` or ``(H, W)`` uint8 -> ``(C, H, W)`` in [-1, 1], computed independently."""
    a = a.astype(np.float64)
    a = a[None] if a.ndim == 2 else a.transpose(2, 0, 1)
    return torch.from_numpy(a * 2 / 255 - 1).float()


def generator() -> torch.Generator:
    return torch.Generator().manual_seed(0)


# ---- loading ---------------------------------------------------------------------------------------


def test_png_loads_exactly(mod, tmp_path):
    a = rgb_array(12, 20)
    a[0, 0] = 0
    a[0, 1] = 255
    Image.fromarray(a).save(tmp_path / "x.png")
    x = mod.load(tmp_path / "x.png", ImageOptions(channels=3))
    assert x.dtype == torch.float32 and x.shape == (3, 12, 20)
    assert torch.allclose(x, expected_tensor(a), atol=1e-6)
    assert float(x.min()) == -1.0 and float(x.max()) == 1.0


def test_jpeg_loads_close_to_the_original(mod, tmp_path):
    yy, xx = np.mgrid[0:32, 0:48]
    a = np.stack([xx * 5, yy * 7, (xx + yy) * 3], axis=-1).clip(0, 255).astype(np.uint8)  # smooth: JPEG-friendly
    Image.fromarray(a).save(tmp_path / "x.jpg", quality=95)
    x = mod.load(tmp_path / "x.jpg", ImageOptions(channels=3))
    assert x.shape == (3, 32, 48)
    assert float(x.min()) >= -1 and float(x.max()) <= 1
    assert float((x - expected_tensor(a)).abs().mean()) < 0.03


def test_grayscale_image_as_three_channels(mod, tmp_path):
    g = np.random.default_rng(3).integers(0, 256, (9, 14), dtype=np.uint8)
    Image.fromarray(g, mode="L").save(tmp_path / "g.png")
    x = mod.load(tmp_path / "g.png", ImageOptions(channels=3))
    assert x.shape == (3, 9, 14)
    for c in range(3):
        assert torch.allclose(x[c], expected_tensor(g)[0], atol=1e-6)
    one = mod.load(tmp_path / "g.png", ImageOptions(channels=1))
    assert one.shape == (1, 9, 14)
    assert torch.allclose(one, expected_tensor(g), atol=1e-6)


@pytest.mark.parametrize("channels", [1, 3])
def test_sixteen_bit_grayscale_png_keeps_its_range(mod, tmp_path, channels):
    """16-bit grayscale PNGs (scans, microscopy, depth maps) span 0..65535: 0 is black, 65535 white.

    Currently FAILS: Pillow opens them in mode ``I;16`` and ``convert("L")``/``convert("RGB")`` clip every
    value above 255 to 255 instead of scaling, so a full-range ramp loads as 99.6 % pure white.
    """
    ramp = (np.arange(16 * 64).reshape(16, 64) * 64).astype(np.uint16)  # 0 .. 65472
    Image.fromarray(ramp).save(tmp_path / "deep.png")
    with Image.open(tmp_path / "deep.png") as img:
        assert img.mode.startswith("I")  # really stored with 16 bits
    x = mod.load(tmp_path / "deep.png", ImageOptions(channels=channels))
    assert x.shape == (channels, 16, 64)
    expected = torch.from_numpy(ramp.astype(np.float64) / 65535 * 2 - 1).float()
    assert float((x - expected).abs().max()) <= 2 * STEP


def test_rgb_image_as_one_channel(mod, tmp_path):
    a = rgb_array(10, 11, seed=4)
    Image.fromarray(a).save(tmp_path / "c.png")
    x = mod.load(tmp_path / "c.png", ImageOptions(channels=1))
    assert x.shape == (1, 10, 11)
    luma = a[..., 0] * 0.299 + a[..., 1] * 0.587 + a[..., 2] * 0.114  # ITU-R 601-2, as Pillow's "L"
    assert torch.allclose(x[0], torch.from_numpy(luma * 2 / 255 - 1).float(), atol=STEP + 1e-6)


def test_palette_and_alpha_images_load_as_rgb(mod, tmp_path):
    a = rgb_array(8, 8, seed=5)
    Image.fromarray(a).convert("P").save(tmp_path / "p.png")
    Image.fromarray(np.dstack([a, np.full((8, 8), 255, np.uint8)]), mode="RGBA").save(tmp_path / "a.png")
    assert mod.load(tmp_path / "p.png", ImageOptions(channels=3)).shape == (3, 8, 8)
    rgba = mod.load(tmp_path / "a.png", ImageOptions(channels=3))
    assert torch.allclose(rgba, expected_tensor(a), atol=1e-6)


def test_exif_orientation_is_applied(mod, tmp_path):
    img = Image.fromarray(rgb_array(20, 40, seed=6))  # 40 wide, 20 high
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90 degrees clockwise to display
    img.save(tmp_path / "rot.jpg", exif=exif.tobytes())
    assert mod.load(tmp_path / "rot.jpg", ImageOptions()).shape == (3, 40, 20)


@pytest.mark.parametrize("name", ["astronaut.png", "camera.png", "china.jpg", "coins.png", "hubble_deep_field.jpg"])
def test_real_sample_photos(mod, name):
    path = SAMPLES / name
    with Image.open(path) as img:
        w, h = img.size
        gray = img.mode == "L"
    x = mod.load(path, ImageOptions(channels=3))
    assert x.shape == (3, h, w)
    assert float(x.min()) >= -1 and float(x.max()) <= 1
    assert float(x.std()) > 0.1  # a photo, not a flat field
    if gray:
        assert torch.equal(x[0], x[1]) and torch.equal(x[1], x[2])
    one = mod.load(path, ImageOptions(channels=1))
    assert one.shape == (1, h, w)


# ---- training examples --------------------------------------------------------------------------------


def bands(h: int, w: int, vertical: bool) -> np.ndarray:
    """Three equal bands (red, blue, green) along the long side."""
    a = np.zeros((h, w, 3), np.uint8)
    n = (h if vertical else w) // 3
    for i, channel in enumerate((0, 2, 1)):
        if vertical:
            a[i * n : (i + 1) * n, :, channel] = 255
        else:
            a[:, i * n : (i + 1) * n, channel] = 255
    return a


@pytest.mark.parametrize("h, w, vertical", [(30, 90, False), (96, 32, True)])
def test_training_example_is_a_center_crop(mod, tmp_path, h, w, vertical):
    Image.fromarray(bands(h, w, vertical)).save(tmp_path / "b.png")
    x = mod.training_example(tmp_path / "b.png", ImageOptions(size=16, channels=3), generator())
    assert x.shape == (3, 16, 16)
    inner = x[:, 3:13, 3:13]  # away from the bicubic ringing at the crop's edges
    # the middle (blue) band fills the crop: resized and cropped, not squashed
    assert float(inner[2].mean()) > 0.8
    assert float(inner[0].mean()) < -0.8 and float(inner[1].mean()) < -0.8


@pytest.mark.parametrize("h, w", [(20, 200), (200, 20), (5, 3), (16, 16), (1, 1)])
@pytest.mark.parametrize("channels", [1, 3])
def test_training_example_size(mod, tmp_path, h, w, channels):
    Image.fromarray(rgb_array(h, w, seed=h * w)).save(tmp_path / "i.png")
    x = mod.training_example(tmp_path / "i.png", ImageOptions(size=24, channels=channels), generator())
    assert x.shape == (channels, 24, 24)
    assert x.dtype == torch.float32
    assert float(x.min()) >= -1 and float(x.max()) <= 1


def test_training_example_of_a_real_photo(mod):
    x = mod.training_example(SAMPLES / "chelsea.png", ImageOptions(size=32, channels=3), generator())
    assert x.shape == (3, 32, 32) and float(x.std()) > 0.05


def ramp(h: int, w: int) -> np.ndarray:
    """``(h, w, 3)``: red rises by one level per column, green per row, blue is 128."""
    a = np.zeros((h, w, 3), dtype=np.uint8)
    a[..., 0] = np.arange(w)[None, :]
    a[..., 1] = np.arange(h)[:, None]
    a[..., 2] = 128
    return a


def random_crop_of(mod, path, seed: int = 0, **options) -> torch.Tensor:
    opts = ImageOptions(**{"size": 16, "crop": "random", **options})
    return mod.training_example(path, opts, torch.Generator().manual_seed(seed))


def test_random_crop_at_scale_one_is_an_exact_window(mod, tmp_path):
    a = rgb_array(60, 90, seed=3)
    Image.fromarray(a).save(tmp_path / "p.png")
    crop = random_crop_of(mod, tmp_path / "p.png", 0, scale=[1.0, 1.0])
    windows = {
        (y, x)
        for y in range(60 - 15)
        for x in range(90 - 15)
        if torch.allclose(crop, expected_tensor(a[y : y + 16, x : x + 16]), atol=1e-6)
    }
    assert len(windows) == 1
    crops = [random_crop_of(mod, tmp_path / "p.png", seed, scale=[1.0, 1.0]) for seed in range(6)]
    assert len({c.sum().item() for c in crops}) > 1  # the place is drawn


def test_random_crop_scale_shrinks_the_photo(mod, tmp_path):
    Image.fromarray(ramp(200, 250)).save(tmp_path / "r.png")
    for factor in (1.0, 0.5, 0.25):
        x = random_crop_of(mod, tmp_path / "r.png", 1, scale=[factor, factor])
        inner = x[:, 4:12, 4:12] * 127.5  # in 8-bit levels, away from the edges
        per_column = float((inner[0, :, 1:] - inner[0, :, :-1]).mean())
        per_row = float((inner[1, 1:, :] - inner[1, :-1, :]).mean())
        assert per_column == pytest.approx(1 / factor, rel=0.05) and per_row == pytest.approx(1 / factor, rel=0.05)


def test_random_crop_never_goes_below_the_shorter_side(mod, tmp_path):
    Image.fromarray(ramp(40, 250)).save(tmp_path / "r.png")
    x = random_crop_of(mod, tmp_path / "r.png", 2, scale=[0.01, 0.01])  # at most 40 / 16 smaller
    assert float((x[1, 1:, 4:12] - x[1, :-1, 4:12]).mean()) * 127.5 == pytest.approx(40 / 16, rel=0.1)


def test_random_crops_flip_half_of_the_time_when_asked(mod, tmp_path):
    Image.fromarray(ramp(64, 128)).save(tmp_path / "r.png")

    def rising(seed: int, flip: bool) -> bool:
        x = random_crop_of(mod, tmp_path / "r.png", seed, scale=[1.0, 1.0], flip=flip)
        return float(x[0, :, -1].mean()) > float(x[0, :, 0].mean())

    assert all(rising(seed, False) for seed in range(20))
    assert 4 <= sum(rising(seed, True) for seed in range(20)) <= 16


@pytest.mark.parametrize("h, w", [(20, 200), (5, 3), (1, 1), (300, 400)])
@pytest.mark.parametrize("channels", [1, 3])
def test_random_crop_size_and_reproducibility(mod, tmp_path, h, w, channels):
    Image.fromarray(rgb_array(h, w, seed=h * w)).save(tmp_path / "i.png")
    x = random_crop_of(mod, tmp_path / "i.png", 4, size=24, channels=channels, flip=True)
    assert x.shape == (channels, 24, 24) and float(x.min()) >= -1 and float(x.max()) <= 1
    assert torch.equal(x, random_crop_of(mod, tmp_path / "i.png", 4, size=24, channels=channels, flip=True))


def test_random_crops_of_any_size_and_scale_stay_inside_the_photo(mod, tmp_path):
    rng = np.random.default_rng(5)
    for i in range(60):  # small photos: the window often touches the far edge, where rounding could overshoot
        h, w = (int(v) for v in rng.integers(17, 60, 2))
        Image.fromarray(rgb_array(h, w, seed=i)).save(tmp_path / "i.png")
        low = float(rng.uniform(0.05, 1.0))
        x = random_crop_of(mod, tmp_path / "i.png", i, size=16, scale=[low, float(rng.uniform(low, 1.5))])
        assert x.shape == (3, 16, 16)


def test_decoded_photos_are_kept_within_the_byte_limit_and_renewed_when_the_file_changes(tmp_path):
    from vqtok_image.cache import DecodedPhotos

    cache, decoded = DecodedPhotos(limit=3 * 10 * 10 * 3), []

    def get(name: str) -> Image.Image:
        path = tmp_path / f"{name}.png"
        return cache.get(path, "RGB", lambda: decoded.append(name) or Image.open(path).convert("RGB"))

    for i, name in enumerate("abcd"):
        Image.fromarray(rgb_array(10, 10, seed=i)).save(tmp_path / f"{name}.png")
    get("a"), get("b"), get("a"), get("c")
    assert decoded == ["a", "b", "c"]  # three 10 x 10 RGB photos fit
    get("d")  # the least recently used, b, makes room
    get("a"), get("b")
    assert decoded == ["a", "b", "c", "d", "b"] and cache.used <= cache.limit
    Image.fromarray(rgb_array(12, 10, seed=9)).save(tmp_path / "a.png")
    assert get("a").size == (10, 12) and decoded[-1] == "a"


def test_random_crops_decode_each_photo_once(tmp_path, monkeypatch):
    fresh = ImageModality()
    Image.fromarray(rgb_array(80, 90)).save(tmp_path / "p.png")
    opened = []
    original = ImageModality.open
    monkeypatch.setattr(ImageModality, "open", lambda self, *a, **k: opened.append(1) or original(self, *a, **k))
    crops = [random_crop_of(fresh, tmp_path / "p.png", seed) for seed in range(5)]
    assert len(opened) == 1 and len({float(c.sum()) for c in crops}) > 1


@pytest.mark.parametrize(
    "values",
    [{"crop": "centre"}, {"scale": [0.5]}, {"scale": [1.0, 0.5]}, {"scale": [0.0, 1.0]}, {"channels": 4}, {"size": 0}],
)
def test_bad_image_options_are_usage_errors(values):
    from vqtok.errors import UsageError

    with pytest.raises(UsageError, match="image."):
        ImageOptions(**values)


# ---- saving -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("channels", [1, 3])
def test_png_save_load_round_trip(mod, tmp_path, channels):
    x = torch.rand(channels, 13, 17, generator=generator()) * 2 - 1
    x[0, 0, 0], x[0, 0, 1] = -1.0, 1.0
    path = tmp_path / "out.png"
    mod.save(x, path, ImageOptions(channels=channels))
    with Image.open(path) as img:
        assert img.format == "PNG" and img.size == (17, 13)
    y = mod.load(path, ImageOptions(channels=channels))
    assert y.shape == x.shape
    assert float((y - x).abs().max()) <= STEP + 1e-6
    assert float(y[0, 0, 0]) == -1.0 and float(y[0, 0, 1]) == 1.0


def test_save_clamps_out_of_range_values(mod, tmp_path):
    x = torch.tensor([[[-3.0, 5.0, 0.0]]])
    mod.save(x, tmp_path / "c.png", ImageOptions(channels=1))
    y = mod.load(tmp_path / "c.png", ImageOptions(channels=1))
    assert y[0, 0, 0] == -1.0 and y[0, 0, 1] == 1.0


def test_save_picks_the_format_from_the_suffix(mod, tmp_path):
    x = torch.zeros(3, 8, 8)
    mod.save(x, tmp_path / "o.jpg", ImageOptions())
    with Image.open(tmp_path / "o.jpg") as img:
        assert img.format == "JPEG"
    with pytest.raises(VqtokError, match="o.unknownsuffix"):
        mod.save(x, tmp_path / "o.unknownsuffix", ImageOptions())


# ---- bad files -------------------------------------------------------------------------------------------


def test_text_file_named_png_is_refused(mod, tmp_path):
    bad = tmp_path / "notes.png"
    bad.write_text("this is not a picture\n")
    with pytest.raises(VqtokError) as info:
        mod.load(bad, ImageOptions())
    assert str(bad) in str(info.value)
    with pytest.raises(VqtokError, match="notes.png"):
        mod.training_example(bad, ImageOptions(), generator())


@pytest.mark.parametrize("keep", [0.5, 0.1])
def test_truncated_png_is_refused(mod, tmp_path, keep):
    good = tmp_path / "good.png"
    Image.fromarray(rgb_array(64, 64, seed=7)).save(good)  # noise: barely compressible, many bytes of pixel data
    data = good.read_bytes()
    bad = tmp_path / "cut.png"
    bad.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(VqtokError) as info:
        mod.load(bad, ImageOptions())
    assert str(bad) in str(info.value)


def test_missing_image_is_refused(mod, tmp_path):
    with pytest.raises(VqtokError, match="absent.png"):
        mod.load(tmp_path / "absent.png", ImageOptions())


def test_decompression_bomb_is_refused_with_the_name(mod, tmp_path, monkeypatch):
    """An image larger than Pillow's bomb limit (2 x MAX_IMAGE_PIXELS, about 179 megapixels by default, e.g. a
    big panorama) must give a one-line VqtokError.

    Currently FAILS: ``ImageModality.open`` catches UnidentifiedImageError, OSError, SyntaxError and ValueError,
    but ``PIL.Image.DecompressionBombError`` derives from ``Exception`` only, so it escapes as a traceback.
    """
    Image.fromarray(rgb_array(30, 30, seed=8)).save(tmp_path / "big.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # 900 pixels > 2 x 100: stands in for a huge image
    with pytest.raises(VqtokError, match="big.png"):
        mod.load(tmp_path / "big.png", ImageOptions())


# ---- preview -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("n, channels", [(3, 3), (1, 1), (10, 3)])
def test_preview_grid(mod, tmp_path, n, channels):
    g = generator()
    originals = torch.rand(n, channels, 8, 6, generator=g) * 2 - 1
    recons = torch.rand(n, channels, 8, 6, generator=g) * 2 - 1
    path = tmp_path / "preview.png"
    assert mod.preview(originals, recons, path, ImageOptions(channels=channels)) is True
    columns, gap = min(n, 8), 2
    with Image.open(path) as img:
        assert img.format == "PNG"
        assert img.size == (columns * (6 + gap) - gap, 2 * (8 + gap) - gap)
    grid = mod.load(path, ImageOptions(channels=channels))
    # top row: the originals; bottom row: their reconstructions
    assert float((grid[:, :8, :6] - originals[0]).abs().max()) <= STEP
    assert float((grid[:, 10:18, :6] - recons[0]).abs().max()) <= STEP
    last = columns - 1
    assert float((grid[:, 10:18, last * 8 : last * 8 + 6] - recons[last]).abs().max()) <= STEP


def test_suffixes_include_common_formats(mod):
    for suffix in (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".webp"):
        if suffix == ".webp" and ".webp" not in Image.registered_extensions():
            continue
        assert suffix in mod.suffixes
        assert mod.is_supported(Path("x" + suffix.upper()))
    assert not mod.is_supported(Path("x.wav"))
