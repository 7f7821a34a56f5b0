"""The audio modality's training augmentations (vqtok_audio/augment.py), on real WAV files."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
import torch
from vqtok_audio import AudioModality, AudioOptions

from vqtok.errors import UsageError

AUDIO = AudioModality()
SR = 8000


def write_tone(path, hz: float, seconds: float = 2.0, amplitude: float = 0.5) -> None:
    t = np.arange(round(SR * seconds)) / SR
    sf.write(path, (amplitude * np.sin(2 * np.pi * hz * t)).astype(np.float32), SR, subtype="FLOAT")


def segment(path, seed: int = 0, **augment) -> torch.Tensor:
    options = AudioOptions(sample_rate=SR, segment_seconds=0.5, **augment)
    return AUDIO.training_example(path, options, torch.Generator().manual_seed(seed))[0]


def peak_hz(x: torch.Tensor) -> float:
    spectrum = torch.fft.rfft(x * torch.hann_window(len(x), dtype=x.dtype)).abs()
    return float(spectrum.argmax()) * SR / len(x)


@pytest.mark.parametrize("speed", [0.8, 1.25])
def test_speed_moves_the_pitch_and_keeps_the_segment_length(tmp_path, speed):
    write_tone(tmp_path / "a.wav", 440.0)
    x = segment(tmp_path / "a.wav", speed=[speed, speed])
    assert x.shape == (4000,)
    assert abs(peak_hz(x) - 440.0 * speed) <= 2 * SR / 4000  # two FFT bins


def test_speed_draws_differ_within_the_range(tmp_path):
    write_tone(tmp_path / "a.wav", 500.0)
    pitches = [peak_hz(segment(tmp_path / "a.wav", seed, speed=[0.8, 1.25])) for seed in range(12)]
    assert 0.8 * 500 - 4 <= min(pitches) and max(pitches) <= 1.25 * 500 + 4
    assert max(pitches) - min(pitches) > 50


def test_gain_scales_the_level_and_never_clips(tmp_path):
    write_tone(tmp_path / "a.wav", 300.0, amplitude=0.5)
    quieter = segment(tmp_path / "a.wav", gain_db=[-20.0, -20.0])
    assert float(quieter.abs().max()) == pytest.approx(0.05, rel=0.02)
    louder = segment(tmp_path / "a.wav", gain_db=[20.0, 20.0])
    assert float(louder.abs().max()) == pytest.approx(0.99, rel=1e-4)


def test_band_limit_takes_out_the_lowest_and_highest_frequencies(tmp_path):
    rng = np.random.default_rng(0)
    sf.write(tmp_path / "n.wav", rng.uniform(-0.5, 0.5, 2 * SR).astype(np.float32), SR, subtype="FLOAT")

    def bands(x: torch.Tensor) -> tuple[float, float, float]:
        power = torch.fft.rfft(x).abs().square()
        hz = torch.fft.rfftfreq(len(x), 1 / SR)
        return tuple(float(power[(hz >= lo) & (hz < hi)].mean()) for lo, hi in [(0, 40), (1000, 2000), (3900, 4001)])

    plain = bands(segment(tmp_path / "n.wav"))
    low, mid, high = bands(segment(tmp_path / "n.wav", band_limit=1.0))
    assert low / mid < 0.3 * plain[0] / plain[1]
    assert high / mid < 0.3 * plain[2] / plain[1]


def test_noise_lands_at_the_drawn_signal_to_noise_ratio(tmp_path):
    write_tone(tmp_path / "a.wav", 440.0)
    clean = segment(tmp_path / "a.wav", seed=5)
    noisy = segment(tmp_path / "a.wav", seed=5, noise=1.0, noise_snr_db=[20.0, 20.0])
    snr = 10 * np.log10(float(clean.square().mean()) / float((noisy - clean).square().mean()))
    assert snr == pytest.approx(20.0, abs=0.5)


def test_augmented_segments_are_reproducible(tmp_path):
    write_tone(tmp_path / "a.wav", 440.0)
    every = dict(speed=[0.8, 1.25], gain_db=[-24.0, 6.0], band_limit=0.5, noise=0.5)
    assert torch.equal(segment(tmp_path / "a.wav", 7, **every), segment(tmp_path / "a.wav", 7, **every))
    assert not torch.equal(segment(tmp_path / "a.wav", 7, **every), segment(tmp_path / "a.wav", 8, **every))


@pytest.mark.parametrize(
    "values",
    [
        {"speed": [1.2, 0.8]},
        {"speed": [0.1, 1.0]},
        {"speed": [1.0]},
        {"gain_db": [6.0, -6.0]},
        {"band_limit": 1.5},
        {"noise": -0.1},
        {"noise_snr_db": [40.0, 10.0]},
    ],
)
def test_bad_augmentation_options_are_usage_errors(values):
    with pytest.raises(UsageError, match="audio."):
        AudioOptions(**values)
