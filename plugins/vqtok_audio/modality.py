"""``AudioModality``: soundfile I/O, exact block resampling, random segments, STFT loss, an STFT
discriminator, spectrograms."""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import torch

from vqtok.errors import UsageError
from vqtok.metrics import log_mel_distance, si_sdr
from vqtok.modality import Modality

from . import augment, reading, streaming
from .discriminator import MultiResolutionSTFTDiscriminator
from .figures import comparison_figures
from .loss import multi_resolution_stft_distance, waveform_loss
from .preview import save_preview
from .sound_formats import SUFFIXES
from .writer import AudioWriter


@dataclass
class AudioOptions:
    sample_rate: int = 16000  # every file is resampled to this rate; the model works at it
    segment_seconds: float = 1.0  # length of the random training segments
    # The loss's log-spectral term sees each segment's spectrum down to this many dB under its loudest
    # bin; quieter bins (silence, the noise floor) count as that level. 0: every bin, down to 1e-5.
    loss_range_db: float = 70.0
    # Augmentation of the training segments (augment.py); each is off by default.
    speed: list[float] = field(default_factory=lambda: [1.0, 1.0])  # speed factors, drawn log-uniformly
    gain_db: list[float] = field(default_factory=lambda: [0.0, 0.0])  # level change in dB, drawn uniformly
    band_limit: float = 0.0  # probability of a random high-pass and low-pass (telephone-like channels)
    noise: float = 0.0  # probability of added white noise ...
    noise_snr_db: list[float] = field(default_factory=lambda: [20.0, 50.0])  # ... at an SNR drawn from this

    def __post_init__(self):
        if self.sample_rate <= 0:
            raise UsageError(f"audio.sample_rate must be positive, got {self.sample_rate}")
        if self.segment_length() < 1:
            raise UsageError(f"audio.segment_seconds must be positive, got {self.segment_seconds}")
        if self.loss_range_db < 0:
            raise UsageError(f"audio.loss_range_db must be 0 (every bin) or positive, got {self.loss_range_db}")
        for name in ("speed", "gain_db", "noise_snr_db"):
            low_high = getattr(self, name)
            if len(low_high) != 2 or low_high[0] > low_high[1]:
                raise UsageError(f"audio.{name} must be [low, high] with low <= high, got {low_high}")
        if not (0.25 <= self.speed[0] and self.speed[1] <= 4):
            raise UsageError(f"audio.speed must lie within [0.25, 4], got {self.speed}")
        for name in ("band_limit", "noise"):
            if not 0 <= getattr(self, name) <= 1:
                raise UsageError(f"audio.{name} is a probability in [0, 1], got {getattr(self, name)}")

    def segment_length(self) -> int:
        """Samples per training segment."""
        return round(self.segment_seconds * self.sample_rate)

    def perturbs(self) -> bool:
        """Whether any augmentation besides speed is on."""
        return self.gain_db != [0.0, 0.0] or self.band_limit > 0 or self.noise > 0


class AudioModality(Modality):
    name = "audio"
    description = "sound (WAV, FLAC, OGG/Vorbis, AIFF, AU, CAF, W64 via libsndfile), mixed to mono"
    suffixes = SUFFIXES
    dims = 1
    config_class = AudioOptions
    default_suffix = ".wav"
    long_inputs = "stream"  # files of any length, in chunks
    pad_mode = "constant"  # silence after the end
    default_model = (
        Path(__file__).parent / "default" / "speech-8k-voices.safetensors"
    )  # recipes/speech-8k-voices-more.toml

    def channels(self, options: AudioOptions) -> int:
        return 1

    def default_overrides(self) -> dict:
        return {
            "model": {"strides": [2, 4, 5, 8], "width": 32, "max_width": 256, "codebook_size": 1024},
            "train": {"batch_size": 8},
        }

    def describe(self, options: AudioOptions) -> dict:
        return {"sample_rate": options.sample_rate}

    def time_axis(self, options: AudioOptions) -> float:
        return float(options.sample_rate)

    def facts(self, options: AudioOptions) -> dict[str, str]:
        return {"sample rate": f"{options.sample_rate} Hz, mono"}

    def quality_labels(self) -> dict[str, str]:
        return {
            "si_sdr_db": "SI-SDR (dB)",
            "mr_stft": "multi-resolution STFT distance",
            "log_mel_distance_db": "log-mel distance (dB)",
        }

    def example_size(self, options: AudioOptions) -> list[int]:
        return [options.segment_length()]

    def load(self, path: Path, options: AudioOptions) -> torch.Tensor:
        return reading.load(path, options.sample_rate)

    def length(self, path: Path, options: AudioOptions) -> int:
        return reading.length(path, options.sample_rate)

    def stream(self, path: Path, options: AudioOptions, block: int) -> Iterator[torch.Tensor]:
        return streaming.stream(path, options.sample_rate, block)

    def writer(self, path: Path, options: AudioOptions) -> AudioWriter:
        return AudioWriter(path, options.sample_rate)

    def save(self, x: torch.Tensor, path: Path, options: AudioOptions) -> None:
        with self.writer(path, options) as w:
            w.write(x)

    def training_example(self, path: Path, options: AudioOptions, generator: torch.Generator) -> torch.Tensor:
        """A random ``(1, segment_length)`` segment, augmented as the options say; a shorter file is
        zero-padded at the end."""
        wanted = options.segment_length()
        speed = augment.speed_factor(options.speed, generator)
        read = math.ceil(wanted * speed)  # played `speed` times faster, these fill the segment
        with reading.open_audio(path) as f:
            total = reading.model_length(f, options.sample_rate)
            start = int(torch.randint(max(total - read, 0) + 1, (1,), generator=generator))
            x = streaming.read_segment(f, options.sample_rate, start, min(start + read, total))
        x = augment.change_speed(x, speed)[:, :wanted]
        if options.perturbs():
            x = augment.perturb(
                x,
                options.sample_rate,
                options.gain_db,
                options.band_limit,
                options.noise,
                options.noise_snr_db,
                generator,
            )
        return torch.nn.functional.pad(x, (0, wanted - x.shape[-1]))

    def loss(self, x_hat: torch.Tensor, x: torch.Tensor, options: AudioOptions) -> dict[str, torch.Tensor]:
        return waveform_loss(x_hat, x, options.sample_rate, options.loss_range_db or None)

    def discriminator(self, options: AudioOptions, width: int) -> MultiResolutionSTFTDiscriminator:
        return MultiResolutionSTFTDiscriminator(options.sample_rate, width)

    def preview(self, originals: torch.Tensor, reconstructions: torch.Tensor, path: Path, options) -> bool:
        save_preview(originals, reconstructions, path, options.sample_rate)
        return True

    def quality(self, x_hat: torch.Tensor, x: torch.Tensor, options: AudioOptions) -> dict[str, torch.Tensor]:
        """SI-SDR (dB), multi-resolution STFT distance and log-mel distance (dB) of ``(B, 1, T)``."""
        sr = options.sample_rate
        stft = [multi_resolution_stft_distance(y[None], r[None], sr) for y, r in zip(x_hat.float(), x.float())]
        return {
            "si_sdr_db": si_sdr(x_hat, x),
            "mr_stft": torch.stack(stft),
            "log_mel_distance_db": log_mel_distance(x_hat, x, sr),
        }

    def report_figures(self, originals, reconstructions, folder: Path, options: AudioOptions) -> list[Path]:
        return comparison_figures(originals, reconstructions, folder, options.sample_rate)
