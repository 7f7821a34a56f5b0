"""Resampling a file piece by piece with exactly the result of resampling it whole.

``torchaudio.functional.resample`` reduces the rates by their gcd to ``orig`` and ``new`` and cuts
the signal into *frames* of ``orig`` input samples; output frame ``k`` (samples ``k*new`` up to
``(k+1)*new``) is a windowed-sinc filter of the input samples ``k*orig - width`` up to
``(k+1)*orig + width``, with zeros outside the signal. So a span of output frames can be computed
from the input span it covers plus ``width`` samples on each side: that is what :class:`RatePlan`
works out. Its margin is rounded up to whole frames, so every piece of input starts on a frame
boundary and its output lands on integer positions.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torchaudio

LOWPASS_FILTER_WIDTH = 6  # zero crossings of the sinc on each side (torchaudio's default)
ROLLOFF = 0.99  # cutoff as a fraction of the lower Nyquist frequency (torchaudio's default)


MAX_KERNEL = 1 << 25  # filter coefficients resampling may use (128 MB of float32)


def check_rates(source_rate: int, target_rate: int) -> None:
    """A ``ValueError`` when going from ``source_rate`` to ``target_rate`` needs an unreasonable filter:
    torchaudio's has ``new x (orig + 2 width)`` coefficients for the gcd-reduced rates, so a coprime pair
    such as 44101 -> 8000 Hz needs 1.4 GB, and a header's nonsense rate (386 MHz) far more."""
    gcd = math.gcd(source_rate, target_rate)
    orig, new = source_rate // gcd, target_rate // gcd
    if orig != new and new * (orig + 2 * filter_width(orig, new)) > MAX_KERNEL:
        raise ValueError(
            f"its sample rate, {source_rate} Hz, cannot be resampled to {target_rate} Hz in bounded "
            "memory; convert it to a common rate first (e.g. 16000, 44100 or 48000 Hz)"
        )


def resample(x: torch.Tensor, source_rate: int, target_rate: int) -> torch.Tensor:
    """``(C, n)`` at ``source_rate`` -> ``(C, ceil(n * target_rate / source_rate))`` at ``target_rate``."""
    check_rates(source_rate, target_rate)
    return torchaudio.functional.resample(
        x, source_rate, target_rate, lowpass_filter_width=LOWPASS_FILTER_WIDTH, rolloff=ROLLOFF
    )


def filter_width(orig: int, new: int) -> int:
    """Input samples the filter reaches beyond a frame on each side, for gcd-reduced rates
    (the same expression as torchaudio's kernel)."""
    base_freq = min(orig, new) * ROLLOFF
    return math.ceil(LOWPASS_FILTER_WIDTH * orig / base_freq)


@dataclass(frozen=True)
class RatePlan:
    """How input spans map to output spans when going from ``source_rate`` to ``target_rate``."""

    source_rate: int
    target_rate: int
    orig: int  # input samples per frame (source_rate / gcd)
    new: int  # output samples per frame (target_rate / gcd)
    margin: int  # input samples read on each side of a span; a multiple of ``orig``

    @classmethod
    def between(cls, source_rate: int, target_rate: int) -> RatePlan:
        check_rates(source_rate, target_rate)
        gcd = math.gcd(source_rate, target_rate)
        orig, new = source_rate // gcd, target_rate // gcd
        margin = 0 if orig == new else math.ceil(filter_width(orig, new) / orig) * orig
        return cls(source_rate, target_rate, orig, new, margin)

    def output_length(self, n_in: int) -> int:
        """Output samples for ``n_in`` input samples (torchaudio's ``ceil(n_in * new / orig)``)."""
        return -(-n_in * self.new // self.orig)

    def input_span(self, out_start: int, out_stop: int, n_in: int) -> tuple[int, int]:
        """The input samples ``[start, stop)`` that determine outputs ``[out_start, out_stop)`` of a
        signal of ``n_in`` samples; ``start`` is a multiple of ``orig``."""
        first_frame, end_frame = out_start // self.new, -(-out_stop // self.new)
        start = max(first_frame * self.orig - self.margin, 0)
        stop = min(end_frame * self.orig + self.margin, n_in)
        return start, stop

    def resample_span(self, x: torch.Tensor, in_start: int, out_start: int, out_stop: int) -> torch.Tensor:
        """Outputs ``[out_start, out_stop)``, ``(C, out_stop - out_start)``, from ``x`` ``(C, n)``:
        the input samples ``input_span(out_start, out_stop, n_in)`` beginning at ``in_start``."""
        offset = in_start // self.orig * self.new
        y = resample(x, self.source_rate, self.target_rate)
        return y[..., out_start - offset : out_stop - offset]
