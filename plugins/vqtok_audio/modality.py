"""``AudioModality``: soundfile I/O, exact block resampling, random segments, STFT loss, an STFT
discriminator, spectrograms."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch

from vqtok.errors import UsageError
from vqtok.metrics import log_mel_distance, si_sdr
from vqtok.modality import Modality

from . import reading, streaming
from .formats import SUFFIXES
from .discriminator import MultiResolutionSTFTDiscriminator
from .figures import comparison_figures
from .loss import multi_resolution_stft_distance, waveform_loss
from .preview import save_preview
from .writer import AudioWriter


@dataclass
class AudioOptions:
    sample_rate: int = 16000  # every file is resampled to this rate; the model works at it
    segment_seconds: float = 1.0  # length of the random training segments
    # The loss's log-spectral term sees each segment's spectrum down to this many dB under its loudest
    # bin; quieter bins (silence, the noise floor) count as that level. 0: every bin, down to 1e-5.
    loss_range_db: float = 70.0

    def __post_init__(self):
        if self.sample_rate <= 0:
            raise UsageError(f"audio.sample_rate must be positive, got {self.sample_rate}")
        if self.segment_length() < 1:
            raise UsageError(f"audio.segment_seconds must be positive, got {self.segment_seconds}")
        if self.loss_range_db < 0:
            raise UsageError(f"audio.loss_range_db must be 0 (every bin) or positive, got {self.loss_range_db}")

    def segment_length(self) -> int:
        """Samples per training segment."""
        return round(self.segment_seconds * self.sample_rate)


class AudioModality(Modality):
    name = "audio"
    description = "sound (WAV, FLAC, OGG/Vorbis, AIFF, AU, CAF, W64 via libsndfile), mixed to mono"
    suffixes = SUFFIXES
    dims = 1
    config_class = AudioOptions
    default_suffix = ".wav"
    default_model = Path(__file__).parent / "default" / "speech-8k.safetensors"  # recipes/speech-8k.toml

    def channels(self, options: AudioOptions) -> int:
        return 1

    def default_overrides(self) -> dict:
        return {
            "model": {"strides": [2, 4, 5, 8], "channels": 32, "max_channels": 256, "codebook_size": 1024},
            "train": {"batch_size": 8},
        }

    def describe(self, options: AudioOptions) -> dict:
        return {"sample_rate": options.sample_rate}

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
        """A random ``(1, segment_length)`` segment; a shorter file is zero-padded at the end."""
        wanted = options.segment_length()
        with reading.open_audio(path) as f:
            total = reading.model_length(f, options.sample_rate)
            start = int(torch.randint(max(total - wanted, 0) + 1, (1,), generator=generator))
            x = streaming.read_segment(f, options.sample_rate, start, min(start + wanted, total))
        return torch.nn.functional.pad(x, (0, wanted - x.shape[-1]))

    def loss(self, x_hat: torch.Tensor, x: torch.Tensor, options: AudioOptions) -> dict[str, torch.Tensor]:
        return waveform_loss(x_hat, x, options.sample_rate, options.loss_range_db or None)

    def discriminator(self, options: AudioOptions, channels: int) -> MultiResolutionSTFTDiscriminator:
        return MultiResolutionSTFTDiscriminator(options.sample_rate, channels)

    def preview(self, originals: torch.Tensor, reconstructions: torch.Tensor, path: Path, options) -> bool:
        save_preview(originals, reconstructions, path, options.sample_rate)
        return True

    def quality(self, x_hat: torch.Tensor, x: torch.Tensor, options: AudioOptions) -> dict[str, torch.Tensor]:
        """SI-SDR (dB), multi-resolution STFT distance and log-mel distance (dB) of ``(B, 1, T)``."""
        sr = options.sample_rate
        stft = [multi_resolution_stft_distance(y[None], r[None], sr) for y, r in zip(x_hat.float(), x.float())]
        return {"si_sdr_db": si_sdr(x_hat, x), "mr_stft": torch.stack(stft),
                "log_mel_distance_db": log_mel_distance(x_hat, x, sr)}

    def report_figures(self, originals, reconstructions, folder: Path, options: AudioOptions) -> list[Path]:
        return comparison_figures(originals, reconstructions, folder, options.sample_rate)
