"""The built-in audio modality: reading, exact streaming, segments, writing, errors, loss, preview."""

from __future__ import annotations

import math
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from PIL import Image
from vqtok_audio import AudioModality, AudioOptions, multi_resolution_stft_distance, vqtok_modalities
from vqtok_audio.loss import log_spectral_l1
from vqtok_audio.spectral import magnitudes

from vqtok.config import SAMPLES_DIR, resolve
from vqtok.errors import UsageError, VqtokError

SPEECH = SAMPLES_DIR / "speech"
OGG = SAMPLES_DIR / "speech-ogg" / "demo-thanks.ogg"
AUDIO = AudioModality()
OPTIONS = AudioOptions()  # 16 kHz: the 8 kHz samples are resampled


def write_noise(path: Path, sample_rate: int, seconds: float, channels: int = 1, seed: int = 0) -> np.ndarray:
    """Write ``(frames, channels)`` of uniform noise in [-0.9, 0.9] as 32-bit float; return it."""
    rng = np.random.default_rng(seed)
    data = rng.uniform(-0.9, 0.9, (round(sample_rate * seconds), channels)).astype(np.float32)
    sf.write(path, data, sample_rate, subtype="FLOAT")
    return data


def joined(pieces) -> torch.Tensor:
    return torch.cat(list(pieces), dim=-1)


# ---- registration and configuration ---------------------------------------------------------------


def test_hook_returns_the_audio_modality():
    (modality,) = vqtok_modalities()
    assert isinstance(modality, AudioModality)
    assert (modality.name, modality.dims, modality.channels(OPTIONS)) == ("audio", 1, 1)
    assert {".wav", ".flac", ".ogg", ".aiff"} <= set(modality.suffixes)
    assert modality.describe(AudioOptions(sample_rate=8000)) == {"sample_rate": 8000}


def test_defaults_resolve_into_a_run_config():
    config = resolve({"modality": "audio", "audio": {"sample_rate": 8000}}, get_modality=lambda name: AUDIO)
    assert config.model.strides == [2, 4, 5, 8]
    assert (config.model.width, config.model.codebook_size, config.train.batch_size) == (32, 1024, 8)
    assert config.options == AudioOptions(sample_rate=8000, segment_seconds=1.0)


@pytest.mark.parametrize("values", [{"sample_rate": 0}, {"segment_seconds": 0.0}])
def test_bad_options_are_usage_errors(values):
    with pytest.raises(UsageError):
        AudioOptions(**values)


# ---- reading ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", [SPEECH / "demo-thanks.wav", SPEECH / "vm-opts.flac", OGG])
def test_real_samples_load_as_mono_at_the_model_rate(path):
    x = AUDIO.load(path, OPTIONS)
    frames = sf.info(path).frames
    assert x.dtype == torch.float32 and x.shape == (1, 2 * frames)  # 8 kHz -> 16 kHz
    assert 0.1 < x.abs().max() <= 1.0


def test_native_rate_load_is_the_file_itself():
    path = SPEECH / "vm-opts.flac"
    x = AUDIO.load(path, AudioOptions(sample_rate=8000))
    assert torch.equal(x[0], torch.from_numpy(sf.read(path, dtype="float32")[0]))


def test_ogg_holds_the_same_speech_as_its_wav():
    wav, ogg = AUDIO.load(SPEECH / "demo-thanks.wav", OPTIONS), AUDIO.load(OGG, OPTIONS)
    assert wav.shape == ogg.shape
    assert torch.corrcoef(torch.cat([wav, ogg]))[0, 1] > 0.95


def test_stereo_is_averaged(tmp_path):
    path = tmp_path / "stereo.wav"
    data = write_noise(path, 16000, 0.1, channels=2)
    x = AUDIO.load(path, OPTIONS)
    assert torch.allclose(x[0], torch.from_numpy(data.mean(axis=1)), atol=1e-7)


@pytest.mark.parametrize("rate", [8000, 11025, 16000, 22050, 44100, 48000])
def test_length_from_the_header_matches_load(tmp_path, rate):
    path = tmp_path / f"{rate}.wav"
    write_noise(path, rate, 0.1234)
    assert AUDIO.length(path, OPTIONS) == AUDIO.load(path, OPTIONS).shape[-1]


@pytest.mark.parametrize("path", [*sorted(SPEECH.iterdir()), OGG], ids=lambda p: p.name)
def test_length_of_the_real_samples_matches_load(path):
    assert AUDIO.length(path, OPTIONS) == AUDIO.load(path, OPTIONS).shape[-1]


# ---- streaming ----------------------------------------------------------------------------------


@pytest.mark.parametrize("rate, channels", [(44100, 2), (8000, 1), (16000, 1), (22050, 3)])
@pytest.mark.parametrize("block", [3, 5000, 100_000])
def test_stream_joins_to_load(tmp_path, rate, channels, block):
    path = tmp_path / "in.wav"
    write_noise(path, rate, 0.7, channels)
    pieces = list(AUDIO.stream(path, OPTIONS, block))
    assert all(p.shape == (1, block) for p in pieces[:-1]) and 0 < pieces[-1].shape[-1] <= block
    x = AUDIO.load(path, OPTIONS)
    assert joined(pieces).shape == x.shape
    assert (joined(pieces) - x).abs().max() < 1e-5


@pytest.mark.parametrize("path", [SPEECH / "tt-weasels.flac", OGG], ids=lambda p: p.suffix)
def test_stream_of_real_speech_joins_to_load(path):
    x = AUDIO.load(path, OPTIONS)
    assert (joined(AUDIO.stream(path, OPTIONS, 7)) - x).abs().max() < 1e-5


def test_stream_memory_stays_bounded_for_a_long_file(tmp_path):
    """Ten minutes at 8 kHz (19 MB of float32 once decoded) streamed to 16 kHz in 10-second pieces:
    the numpy buffers soundfile reads into must stay small; reading the whole file would not."""
    path, rate = tmp_path / "long.wav", 8000
    t = np.arange(10 * rate) / rate
    with sf.SoundFile(path, "w", rate, 1, "PCM_16") as f:
        for second in range(0, 600, 10):
            f.write(0.5 * np.sin(2 * np.pi * (220 + second) * t))
    bound = 4 * 2**20

    tracemalloc.start()
    try:
        total = sum(piece.shape[-1] for piece in AUDIO.stream(path, OPTIONS, 160_000))
        _, streaming_peak = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        AUDIO.load(path, OPTIONS)  # the control: the measurement sees a whole-file read
        _, whole_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert total == 2 * 600 * rate
    assert streaming_peak < bound < whole_peak


# ---- training segments ----------------------------------------------------------------------------


def test_training_example_is_reproducible_and_a_slice_of_load(tmp_path):
    path = tmp_path / "in.wav"
    write_noise(path, 44100, 0.5)
    options = AudioOptions(segment_seconds=0.05)

    def draw(seed: int) -> torch.Tensor:
        return AUDIO.training_example(path, options, torch.Generator().manual_seed(seed))

    first, again, other = draw(3), draw(3), draw(4)
    assert first.shape == (1, 800) and torch.equal(first, again) and not torch.equal(first, other)
    windows = AUDIO.load(path, options)[0].unfold(0, 800, 1)  # every segment load could give
    assert (windows - first[0]).abs().amax(dim=1).min() < 1e-5


def test_training_example_pads_a_short_file_with_zeros(tmp_path):
    path = tmp_path / "short.wav"
    data = write_noise(path, 16000, 0.01)
    x = AUDIO.training_example(path, AudioOptions(segment_seconds=0.1), torch.Generator())
    assert x.shape == (1, 1600)
    assert torch.equal(x[0, :160], torch.from_numpy(data[:, 0])) and not x[0, 160:].any()


def test_training_example_of_real_speech():
    x = AUDIO.training_example(SPEECH / "vm-newuser.flac", OPTIONS, torch.Generator().manual_seed(0))
    assert x.shape == (1, 16000) and x.abs().max() > 0.05


# ---- bad files ------------------------------------------------------------------------------------


def _truncated_wav(path: Path) -> None:
    write_noise(path, 8000, 0.5)
    path.write_bytes(path.read_bytes()[:3000])


def _text_file(path: Path) -> None:
    path.write_text("this is not a sound\n")


def _empty_file(path: Path) -> None:
    path.write_bytes(b"")


READS = {
    "load": lambda p: AUDIO.load(p, OPTIONS),
    "length": lambda p: AUDIO.length(p, OPTIONS),
    "stream": lambda p: list(AUDIO.stream(p, OPTIONS, 1000)),
    "training_example": lambda p: AUDIO.training_example(p, OPTIONS, torch.Generator()),
}


@pytest.mark.parametrize("make", [_truncated_wav, _text_file, _empty_file], ids=lambda f: f.__name__[1:])
@pytest.mark.parametrize("read", READS.values(), ids=READS.keys())
def test_bad_files_raise_one_line_errors_naming_the_file(tmp_path, make, read):
    path = tmp_path / "bad.wav"
    make(path)
    with pytest.raises(VqtokError) as caught:
        read(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: ") and "\n" not in message
    assert caught.value.__cause__ is None  # and no soundfile exception shown as its context:
    assert caught.value.__context__ is None or caught.value.__suppress_context__


def test_truncation_is_named(tmp_path):
    path = tmp_path / "cut.wav"
    _truncated_wav(path)
    with pytest.raises(VqtokError, match="truncated"):
        AUDIO.load(path, OPTIONS)


def test_missing_file(tmp_path):
    with pytest.raises(VqtokError, match="No such file"):
        AUDIO.load(tmp_path / "nowhere.wav", OPTIONS)


# ---- writing --------------------------------------------------------------------------------------


def test_writer_round_trips_within_16_bit_precision(tmp_path):
    path = tmp_path / "out.wav"
    x = AUDIO.load(SPEECH / "demo-thanks.wav", OPTIONS)
    x[0, :10] = torch.tensor([1.5, -1.5, 1.0, -1.0, 0.0, 0.5, -0.5, 0.25, 2.0, -2.0])
    with AUDIO.writer(path, OPTIONS) as writer:
        for piece in x.split(3001, dim=-1):
            writer.write(piece)
    info = sf.info(path)
    assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16")
    back = AUDIO.load(path, OPTIONS)
    assert (back - x.clamp(-1, 1)).abs().max() <= 1 / 32768


@pytest.mark.parametrize("suffix, subtype", [(".flac", "PCM_16"), (".ogg", "VORBIS")])
def test_save_picks_the_format_from_the_suffix(tmp_path, suffix, subtype):
    path = tmp_path / f"out{suffix}"
    x = AUDIO.load(SPEECH / "tt-weasels.flac", OPTIONS)
    AUDIO.save(x, path, OPTIONS)
    assert sf.info(path).subtype == subtype
    assert AUDIO.load(path, OPTIONS).shape == x.shape


def test_a_failed_write_closes_the_file(tmp_path):
    with pytest.raises(RuntimeError), AUDIO.writer(tmp_path / "out.wav", OPTIONS) as writer:
        writer.write(torch.zeros(1, 100))
        raise RuntimeError("interrupted")
    assert writer.file.closed


def test_unwritable_targets(tmp_path):
    with pytest.raises(UsageError, match="cannot write audio as '.mp4'"):
        AUDIO.save(torch.zeros(1, 10), tmp_path / "out.mp4", OPTIONS)
    with pytest.raises(VqtokError, match="No such file or directory"):
        AUDIO.save(torch.zeros(1, 10), tmp_path / "missing" / "out.wav", OPTIONS)


# ---- loss -----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def speech_batch() -> torch.Tensor:
    generator = torch.Generator().manual_seed(0)
    paths = sorted(SPEECH.glob("*.wav"))[:2]
    return torch.stack([AUDIO.training_example(p, OPTIONS, generator) for p in paths])


def test_stft_distance_to_itself_is_zero_and_to_silence_large(speech_batch):
    assert multi_resolution_stft_distance(speech_batch, speech_batch, 16000) < 1e-5
    silence = torch.zeros_like(speech_batch, requires_grad=True)
    distance = multi_resolution_stft_distance(silence, speech_batch, 16000)
    assert 1.0 < distance < math.inf
    distance.backward()
    assert torch.isfinite(silence.grad).all()


def test_loss_range_ignores_what_lies_below_it_and_only_that():
    """A reconstruction that differs from its reference only 100 dB under the reference's peak (a
    sine without the faint hiss beside it) costs nothing in the log term within a 60 dB range, and a
    lot when every bin counts; one that lacks hiss 20 dB under the peak costs within the range too."""
    t = torch.arange(8000) / 8000
    sine = 0.5 * torch.sin(2 * math.pi * 440 * t)[None, None]
    noise = torch.randn(sine.shape, generator=torch.Generator().manual_seed(0))

    def spectrum(x):
        return magnitudes(x, 256, 64)

    faint, audible = sine + 1e-5 * noise, sine + 0.05 * noise
    assert log_spectral_l1(spectrum(sine), spectrum(faint), 60.0) < 1e-3
    assert log_spectral_l1(spectrum(sine), spectrum(faint), None) > 0.3
    assert log_spectral_l1(spectrum(sine), spectrum(audible), 60.0) > 1.0
    silent = torch.zeros_like(sine, requires_grad=True)
    loss = AUDIO.loss(silent, faint, AudioOptions(sample_rate=8000))["recon"]
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(silent.grad).all() and silent.grad.abs().sum() > 0


def test_loss_range_must_not_be_negative():
    with pytest.raises(UsageError, match="loss_range_db"):
        AudioOptions(loss_range_db=-1.0)


def test_loss_adds_l1_and_stft(speech_batch):
    noisy = speech_batch + 0.05 * torch.randn(speech_batch.shape, generator=torch.Generator().manual_seed(1))
    terms = AUDIO.loss(noisy, speech_batch, OPTIONS)
    assert set(terms) == {"recon", "l1", "stft"}
    assert torch.allclose(terms["recon"], terms["l1"] + terms["stft"])
    assert terms["stft"] > AUDIO.loss(speech_batch, speech_batch, OPTIONS)["stft"]


# ---- preview --------------------------------------------------------------------------------------


def test_preview_writes_a_png_of_up_to_four_pairs(tmp_path, speech_batch):
    batch = speech_batch.repeat(3, 1, 1)  # six examples: four are shown
    assert AUDIO.preview(batch, 0.5 * batch, tmp_path / "six.png", OPTIONS)
    assert AUDIO.preview(batch[:1], batch[:1], tmp_path / "one.png", OPTIONS)
    with Image.open(tmp_path / "six.png") as six, Image.open(tmp_path / "one.png") as one:
        assert six.format == "PNG" and six.mode == "RGB"
        assert six.height == one.height and 3 * one.width < six.width < 5 * one.width
