"""The ``mel`` modality: what vqtok needs to know about log-mel spectrograms, and nothing more."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
import torchaudio
from PIL import Image

from vqtok.errors import VqtokError
from vqtok.modality import Modality

from .spectrogram import from_unit, to_unit, transforms

AUDIO = (".wav", ".flac", ".ogg")


@dataclass
class MelOptions:
    """The recipe's ``[mel]`` table (``mel.n_mels=80`` on the command line)."""

    sample_rate: int = 8000
    n_fft: int = 512
    hop_length: int = 80  # 100 frames per second at 8 kHz
    n_mels: int = 64
    frames: int = 64  # frames per training example

    def __post_init__(self):
        if min(self.sample_rate, self.n_fft, self.hop_length, self.n_mels, self.frames) < 1:
            raise VqtokError("mel options must all be positive")


class MelModality(Modality):
    name = "mel"
    description = "log-mel spectrograms of sound files (or saved .npy spectrograms), as 2-D maps"
    suffixes = AUDIO + (".npy",)  # reads sound, or a spectrogram it wrote
    output_suffixes = (".npy", ".png", ".wav")  # decode writes the array, a picture, or sound
    default_suffix = ".png"
    dims = 2  # (1, n_mels, frames)
    config_class = MelOptions
    value_range = (-1.0, 1.0)
    long_inputs = "stream"  # long recordings are encoded frame block by frame block
    pad_mode = "replicate"  # pad with the last frame, not with a level that means "-50 dB"

    def channels(self, options: MelOptions) -> int:
        return 1

    def default_overrides(self) -> dict:
        return {"model": {"strides": [2, 2], "width": 32, "max_width": 64, "codebook_size": 256}}

    def time_axis(self, options: MelOptions) -> float:
        return options.sample_rate / options.hop_length  # frames per second: bitrates come out in bit/s

    def facts(self, options: MelOptions) -> dict[str, str]:
        return {
            "spectrogram": f"{options.n_mels} mel bands, {self.time_axis(options):g} frames/s of "
            f"{options.sample_rate} Hz sound (n_fft {options.n_fft})"
        }

    def describe(self, options: MelOptions) -> dict:
        return {"sample_rate": options.sample_rate, "hop_length": options.hop_length, "n_mels": options.n_mels}

    def example_size(self, options: MelOptions) -> list[int]:
        return [options.n_mels, options.frames]

    def load(self, path: Path, options: MelOptions) -> torch.Tensor:
        """``(1, n_mels, frames)`` in [-1, 1]."""
        if path.suffix.lower() == ".npy":
            return self._load_array(path, options)
        try:
            audio, rate = sf.read(path, dtype="float32", always_2d=True)
        except Exception as e:
            raise VqtokError(f"{path}: not readable as sound ({e})") from None
        if len(audio) == 0:
            raise VqtokError(f"{path}: holds no sound")
        wave = torch.from_numpy(audio.mean(axis=1))
        if rate != options.sample_rate:
            wave = torchaudio.functional.resample(wave, rate, options.sample_rate)
        mel, _ = transforms(options.sample_rate, options.n_fft, options.hop_length, options.n_mels)
        return to_unit(mel(wave))[None]

    def _load_array(self, path: Path, options: MelOptions) -> torch.Tensor:
        try:
            a = np.load(path, allow_pickle=False)
        except Exception as e:
            raise VqtokError(f"{path}: not a saved spectrogram ({e})") from None
        if a.ndim != 2 or a.shape[0] != options.n_mels:
            raise VqtokError(f"{path}: expected an ({options.n_mels}, frames) array, found {a.shape}")
        return torch.from_numpy(a.astype(np.float32)).clamp(-1, 1)[None]

    def save(self, x: torch.Tensor, path: Path, options: MelOptions) -> None:
        """``x`` ``(1, n_mels, frames)``: as an array, a picture (low bands at the bottom), or sound."""
        x = x.detach().float().cpu().clamp(-1, 1)[0]
        suffix = path.suffix.lower()
        if suffix == ".npy":
            np.save(path, x.numpy(), allow_pickle=False)
        elif suffix == ".png":
            Image.fromarray(((x.flip(0) + 1) * 127.5).round().to(torch.uint8).numpy()).save(path, format="PNG")
        else:
            _, invert = transforms(options.sample_rate, options.n_fft, options.hop_length, options.n_mels)
            wave = invert(from_unit(x))
            sf.write(path, (wave / max(1.0, float(wave.abs().max()))).numpy(), options.sample_rate, format="WAV")

    def training_example(self, path: Path, options: MelOptions, generator: torch.Generator) -> torch.Tensor:
        """``(1, n_mels, frames)``: a random stretch of the file's spectrogram (padded if shorter)."""
        x = self.load(path, options)
        start = int(torch.randint(0, max(1, x.shape[-1] - options.frames + 1), (1,), generator=generator))
        piece = x[..., start : start + options.frames]
        return torch.nn.functional.pad(piece, (0, options.frames - piece.shape[-1]), mode="replicate")

    def quality(self, x_hat: torch.Tensor, x: torch.Tensor, options: MelOptions) -> dict[str, torch.Tensor]:
        """The mean absolute difference in dB of ``(B, 1, n_mels, frames)`` spectrograms."""
        return {"mel_db_error": (x_hat - x).abs().flatten(1).mean(1) * 50.0}

    def quality_labels(self) -> dict[str, str]:
        return {"mel_db_error": "mean |log-mel error| (dB)"}
