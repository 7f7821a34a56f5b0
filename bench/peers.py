"""Peer speech codecs for side-by-side quality (Debian ``codec2`` and ``opus-tools``), and delay alignment.

Signals are float32 numpy arrays in [-1, 1] at 8 kHz, mono; the codecs see them as 16-bit PCM. Each
wrapper works in a folder the caller owns (a temporary one) and returns the decoded signal and the
size in bytes of what the codec wrote, so that the caller can state the bitrate actually spent.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

SAMPLE_RATE = 8000
INSTALL_HINT = "apt-get install codec2 opus-tools"

# codec2 modes: nominal bit/s and samples per frame at 8 kHz (codec2 1.0, codec2.c: codec2_create)
CODEC2_MODES = {
    "3200": (3200, 160),
    "2400": (2400, 160),
    "1600": (1600, 320),
    "1400": (1400, 320),
    "1300": (1300, 320),
    "1200": (1200, 320),
    "700C": (700, 320),
}

# libopus encoder controls passed with ``opusenc --set-ctl-int`` (opus_defines.h)
OPUS_SET_APPLICATION, OPUS_APPLICATION_VOIP = 4000, 2048
OPUS_SET_BANDWIDTH, OPUS_BANDWIDTH_NARROWBAND = 4008, 1101


@dataclass
class Coded:
    """A decoded signal and what the encoder wrote for it."""

    audio: np.ndarray  # float32, (T',), at 8 kHz; T' may differ from the input's length
    stream_bytes: int  # the encoded file (codec2: headerless frames; opus: the whole Ogg file)
    payload_bytes: int  # the codec's own frames alone (opus: Opus packets without Ogg pages and headers)
    coded_seconds: float  # the duration the encoder was given (codec2: padded to whole frames)


def require(*tools: str) -> None:
    """Stop with an install hint when a command-line tool is not on PATH."""
    missing = [t for t in tools if shutil.which(t) is None]
    if missing:
        raise SystemExit(f"peer codec tool(s) not found: {', '.join(missing)}; install them with `{INSTALL_HINT}`")


def run(*cmd: str | Path) -> None:
    """Run a codec tool (check=True); a failure stops with its command line and stderr."""
    args = [str(c) for c in cmd]
    require(args[0])
    try:
        subprocess.run(args, check=True, capture_output=True)
    except subprocess.CalledProcessError as e:
        err = e.stderr.decode(errors="replace").strip()
        raise RuntimeError(f"`{' '.join(args)}` failed (exit {e.returncode}): {err[-500:]}") from None


def to_pcm16(x: np.ndarray) -> np.ndarray:
    """Float [-1, 1] -> int16, rounded and clipped (the WAV files hold 16-bit values, so this is exact for them)."""
    return np.clip(np.rint(np.asarray(x, dtype=np.float64) * 32768.0), -32768, 32767).astype("<i2")


def from_pcm16(data: bytes) -> np.ndarray:
    """Little-endian 16-bit PCM bytes -> float32 in [-1, 1)."""
    return np.frombuffer(data, dtype="<i2").astype(np.float32) / 32768.0


def codec2(x: np.ndarray, mode: str, folder: Path, tail_seconds: float = 0.1) -> Coded:
    """Encode and decode ``x`` with ``c2enc MODE`` / ``c2dec MODE`` (headerless 16-bit 8 kHz raw).

    c2enc drops a final partial frame, and the decoder output lags the input (about 18 ms at
    3200-1300 bit/s), so the input gets ``tail_seconds`` of zeros and is padded to whole frames; the
    caller aligns and trims the output back to the input's length.
    """
    if mode not in CODEC2_MODES:
        raise ValueError(f"unknown codec2 mode {mode!r}; one of {', '.join(CODEC2_MODES)}")
    _, frame = CODEC2_MODES[mode]
    n = len(x) + round(tail_seconds * SAMPLE_RATE)
    n = -(-n // frame) * frame
    pcm = np.zeros(n, dtype="<i2")
    pcm[: len(x)] = to_pcm16(x)
    raw, bits, out = folder / "c2-in.raw", folder / f"c2-{mode}.bit", folder / f"c2-{mode}.raw"
    raw.write_bytes(pcm.tobytes())
    run("c2enc", mode, raw, bits)
    run("c2dec", mode, bits, out)
    size = bits.stat().st_size
    return Coded(from_pcm16(out.read_bytes()), size, size, n / SAMPLE_RATE)


def opus(x: np.ndarray, kbps: float, folder: Path) -> Coded:
    """Encode ``x`` with ``opusenc`` at ``kbps`` hard CBR, tuned for speech (``--speech``, the VoIP
    application, narrow band, no metadata padding), and decode it with ``opusdec --rate 8000``, which
    removes the pre-skip and the end padding (the output has the input's length)."""
    wav, coded, out = folder / "opus-in.wav", folder / f"opus-{kbps:g}.opus", folder / f"opus-{kbps:g}.wav"
    sf.write(wav, to_pcm16(x), SAMPLE_RATE, subtype="PCM_16")
    run(
        "opusenc",
        "--quiet",
        "--bitrate",
        f"{kbps:g}",
        "--hard-cbr",
        "--speech",
        "--padding",
        "0",
        "--set-ctl-int",
        f"{OPUS_SET_APPLICATION}={OPUS_APPLICATION_VOIP}",
        "--set-ctl-int",
        f"{OPUS_SET_BANDWIDTH}={OPUS_BANDWIDTH_NARROWBAND}",
        wav,
        coded,
    )
    run("opusdec", "--quiet", "--rate", str(SAMPLE_RATE), coded, out)
    y, sr = sf.read(out, dtype="float32", always_2d=True)
    if sr != SAMPLE_RATE:
        raise RuntimeError(f"opusdec wrote {sr} Hz, expected {SAMPLE_RATE}")
    packets = ogg_packets(coded.read_bytes())
    return Coded(y.mean(axis=1), coded.stat().st_size, sum(len(p) for p in packets[2:]), len(x) / SAMPLE_RATE)


def ogg_packets(data: bytes) -> list[bytes]:
    """The packets of a single-stream Ogg file (for Ogg Opus: OpusHead, OpusTags, then the audio packets)."""
    packets, current, i = [], b"", 0
    while i < len(data):
        if data[i : i + 4] != b"OggS":
            raise ValueError(f"not an Ogg page at byte {i}")
        count = data[i + 26]
        lacing = data[i + 27 : i + 27 + count]
        j = i + 27 + count
        for size in lacing:
            current += data[j : j + size]
            j += size
            if size < 255:
                packets.append(current)
                current = b""
        i = j
    return packets


def estimate_lag(ref: np.ndarray, deg: np.ndarray, max_lag: int) -> int:
    """The integer lag ``d`` in ``[-max_lag, max_lag]`` that maximises the cross-correlation
    ``sum_n ref[n] * deg[n + d]`` (positive: ``deg`` is late), computed with FFTs."""
    n = len(ref) + len(deg)
    size = 1 << (n - 1).bit_length()
    c = np.fft.irfft(
        np.fft.rfft(deg.astype(np.float64), size) * np.conj(np.fft.rfft(ref.astype(np.float64), size)), size
    )
    lags = np.arange(-max_lag, max_lag + 1)
    return int(lags[np.argmax(c[lags % size])])


def align(deg: np.ndarray, lag: int, length: int) -> np.ndarray:
    """``deg`` moved earlier by ``lag`` samples (later when negative), then cut or zero-padded to ``length``."""
    out = np.zeros(length, dtype=np.float32)
    src = deg[lag:] if lag >= 0 else np.concatenate([np.zeros(-lag, dtype=deg.dtype), deg])
    src = src[:length]
    out[: len(src)] = src
    return out
