"""Speech quality at 8 kHz: vqtok models against the peer codecs codec2 and Opus, on the held-out speech.

    python bench/data.py speech        # once: bench/data/speech-en/{train,test} (Debian asterisk prompts)
    python bench/bench_speech.py [--model FILE.safetensors ...] [--n-q all,1] [--limit N]
                                 [--modes 3200,2400,1600,1300,700C] [--opus-kbps 6,8] [--test DIR]
    python bench/data.py voices; python bench/bench_speech.py --test bench/data/speech-voices/test ...

Needs ``apt-get install codec2 opus-tools`` and ``pip install pesq pystoi``. Every file of
``bench/data/speech-en/test`` (57 recorded English prompts, 8 kHz mono; ``--limit N``: the first N,
sorted) goes through each codec. The decoded audio is aligned to the original by one lag per codec:
the median over the files of the lag that maximises the cross-correlation within +-80 ms. It is then
cut or zero-padded to the original's length and scored against it at 8 kHz: PESQ narrow band (ITU-T
P.862, PyPI ``pesq``), STOI (PyPI ``pystoi``), and vqtok's own log-mel distance and SI-SDR (the
functions ``vqtok eval`` reports). Each cell is the mean over the files the metric is defined on; the
files a metric fails on are listed under the table.

``--test DIR`` scores another folder of 8 kHz mono WAVs (recursive). Where its files lie in sub-folders,
one per voice (``bench/data/speech-voices/test``: the voices held out whole from training), a table per
voice follows, and one of the means over the voices, so that a voice with many files does not outweigh
the others. ``--n-q all,1`` scores each residual model with all its codebooks and with the first one.

A vqtok model whose sample rate is not 8 kHz encodes the file resampled to its rate (vqtok does it
on loading) and its output is resampled back to 8 kHz (``torchaudio.functional.resample``) for scoring.
"""

from __future__ import annotations

import argparse
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import peers
import soundfile as sf
import torch
from common import ROOT

TEST = ROOT / "bench" / "data" / "speech-en" / "test"
SR = peers.SAMPLE_RATE
MAX_LAG_SECONDS = 0.080
QUIET_DBFS = -60.0  # a reference quieter than this (RMS) is not speech: its scores mean nothing


@dataclass
class Codec:
    """One row: the decoded files (unaligned) and what was spent on them."""

    name: str
    nominal: str  # bitrate column
    decoded: list[np.ndarray] = field(default_factory=list)
    stream_bits: float = 0.0
    payload_bits: float = 0.0
    coded_seconds: float = 0.0
    measured: str = ""  # how the measured rate was obtained, for the notes
    lag: int = 0
    lags: list[int] = field(default_factory=list)
    scores: dict[str, dict[str, float]] = field(default_factory=dict)  # metric -> file name -> value
    failures: dict[str, list[str]] = field(default_factory=dict)

    def add(self, coded: peers.Coded) -> None:
        """One file through a peer codec: its decoded audio and the bits spent on it."""
        self.decoded.append(coded.audio)
        self.stream_bits += 8 * coded.stream_bytes
        self.payload_bits += 8 * coded.payload_bytes
        self.coded_seconds += coded.coded_seconds


def load_test(test: Path, limit: int | None) -> tuple[list[Path], list[np.ndarray]]:
    if not test.is_dir():
        raise SystemExit(f"{test} is missing: run `python bench/data.py speech` (or `voices`) first")
    files = sorted(test.rglob("*.wav"), key=lambda p: p.relative_to(test).as_posix())[:limit]
    signals = []
    for f in files:
        x, sr = sf.read(f, dtype="float32")
        if sr != SR or x.ndim != 1:
            raise SystemExit(f"{f}: expected 8 kHz mono, got {sr} Hz, shape {x.shape}")
        signals.append(x)
    return files, signals


def run_codec2(mode: str, signals: list[np.ndarray], folder: Path) -> Codec:
    c = Codec(f"codec2 {mode}", f"{peers.CODEC2_MODES[mode][0]}")
    for x in signals:
        c.add(peers.codec2(x, mode, folder))
    c.measured = "`.bit` file (whole bytes per frame) over the encoded duration (input padded to whole frames)"
    return c


def run_opus(kbps: float, signals: list[np.ndarray], folder: Path) -> Codec:
    c = Codec(f"Opus {kbps:g} kbit/s", f"{1000 * kbps:g}")
    for x in signals:
        c.add(peers.opus(x, kbps, folder))
    c.measured = (
        f"`.opus` file over the audio duration; the Opus packets alone: "
        f"{c.payload_bits / c.coded_seconds:.0f} bit/s (the rest: Ogg pages and headers)"
    )
    return c


def run_vqtok(path: Path, files: list[Path], lengths: list[int], n_q: int | None = None) -> Codec:
    import torchaudio

    import vqtok
    from vqtok.info import model_report

    report = model_report(path)
    tok = vqtok.load(path)
    model_sr = report["decode"].get("sample_rate")
    if report.get("modality") != "audio" or not model_sr:
        raise SystemExit(f"{path}: not an audio model")
    raw = report.get("bitrate_bps")
    rates = report["latents"]
    if n_q is not None:
        spec = next(iter(tok.specs.values()))
        if len(tok.specs) != 1 or not spec.discrete or n_q > spec.depth:
            raise SystemExit(f"--n-q {n_q}: {path} is not a residual VQ model with that many codebooks")
        raw = report["decode"]["sample_rate"] / spec.hop * sum(np.log2(spec.codebook_sizes[:n_q]))
    entropy = ((report.get("prior") or {}).get("entropy") or {}).get("bitrate", {}).get("prior")
    nominal = "continuous latents" if raw is None else f"{raw:g}"
    if entropy is not None and n_q is None:
        nominal += f" (prior: {entropy:.0f})"
    name = f"vqtok {path.name}" + ("" if n_q is None else f" --n-q {n_q}")
    c = Codec(name + ("" if model_sr == SR else f" ({model_sr} Hz)"), nominal)
    for f, n in zip(files, lengths):
        cf = tok.encode_file(f, n_q)
        if raw is not None:  # one position per array column; each code costs log2 K of its codebook
            c.stream_bits += sum(
                a.shape[-1] * sum(np.log2(tok.specs[k].codebook_sizes[: a.shape[0]])) for k, a in cf.arrays.items()
            )
        y = tok.decode(cf).float()  # (1, T) at the model's rate
        if model_sr != SR:
            y = torchaudio.functional.resample(y, model_sr, SR)
        c.decoded.append(y[0].numpy())
        c.coded_seconds += n / SR
    per_position = " + ".join(f"{r['bits_per_position']:g}" for r in rates.values() if r["discrete"])
    c.measured = (
        f"codes written ({per_position} bits per position, log2 K per code; the last position of a file "
        "covers its padding to the hop) over the audio duration"
    )
    if raw is None:
        c.stream_bits = float("nan")
    return c


def measure_lag(c: Codec, signals: list[np.ndarray]) -> None:
    """One lag per codec: the median of the per-file cross-correlation lags."""
    max_lag = round(MAX_LAG_SECONDS * SR)
    c.lags = [peers.estimate_lag(x, y, max_lag) for x, y in zip(signals, c.decoded)]
    c.lag = int(round(statistics.median(c.lags)))


def score(c: Codec, names: list[str], signals: list[np.ndarray]) -> None:
    from pesq import PesqError, pesq
    from pystoi import stoi

    from vqtok.metrics import log_mel_distance, si_sdr

    for name in ("pesq", "stoi", "log_mel", "si_sdr"):
        c.scores[name], c.failures[name] = {}, []
    for name, x, y in zip(names, signals, c.decoded):
        y = peers.align(y, c.lag, len(x))
        try:
            c.scores["pesq"][name] = float(pesq(SR, x, y, "nb"))
        except PesqError as e:
            c.failures["pesq"].append(f"{name} ({type(e).__name__})")
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            value = float(stoi(x, y, SR, extended=False))
        if caught:  # pystoi warns and returns 1e-5 when too few non-silent frames remain
            c.failures["stoi"].append(f"{name} ({str(caught[0].message).split('.')[0]})")
        else:
            c.scores["stoi"][name] = value
        est, ref = torch.from_numpy(y)[None, None], torch.from_numpy(x)[None, None]
        c.scores["log_mel"][name] = float(log_mel_distance(est, ref, SR)[0])
        c.scores["si_sdr"][name] = float(si_sdr(est, ref)[0])


METRICS = {
    "pesq": ("PESQ NB", 2),
    "stoi": ("STOI", 3),
    "log_mel": ("log-mel dist. (dB)", 2),
    "si_sdr": ("SI-SDR (dB)", 2),
}


def mean_value(c: Codec, metric: str, keep=lambda name: True) -> float | None:
    values = [v for name, v in c.scores[metric].items() if keep(name)]
    return statistics.fmean(values) if values else None


def cell(value: float | None, metric: str) -> str:
    return "-" if value is None else f"{value:.{METRICS[metric][1]}f}"


def mean(c: Codec, metric: str, leave_out: set[str] = frozenset()) -> str:
    return cell(mean_value(c, metric, lambda name: name not in leave_out), metric)


def voice_of(name: str) -> str | None:
    """The voice of a file named ``VOICE/...`` relative to the test folder (None for a flat folder)."""
    return name.split("/")[0] if "/" in name else None


def table(codecs: list[Codec], per_codec=lambda c, metric: mean(c, metric)) -> str:
    head = ["codec", "bitrate (bit/s)", "measured (bit/s)", *(label for label, _ in METRICS.values())]
    lines = ["| " + " | ".join(head) + " |", "| " + " | ".join(["---"] * len(head)) + " |"]
    for c in codecs:
        measured = c.stream_bits / c.coded_seconds
        cells = [
            c.name,
            c.nominal,
            "-" if np.isnan(measured) else f"{measured:.0f}",
            *(per_codec(c, metric) for metric in METRICS),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def voice_tables(codecs: list[Codec], names: list[str]) -> None:
    """A table per voice (sub-folder), then the unweighted mean over the voices."""
    voices = sorted({voice_of(n) for n in names} - {None})
    if not voices:
        return
    for voice in voices:
        count = sum(voice_of(n) == voice for n in names)
        print(f"\nVoice {voice} ({count} files):\n")
        print(table(codecs, lambda c, metric, voice=voice: mean(c, metric, {n for n in names if voice_of(n) != voice})))

    def over_voices(c: Codec, metric: str) -> str:
        means = [mean_value(c, metric, lambda n, v=v: voice_of(n) == v) for v in voices]
        means = [m for m in means if m is not None]
        return cell(statistics.fmean(means) if means else None, metric)

    print(f"\nMean over the {len(voices)} voices (each voice's mean counts once):\n")
    print(table(codecs, over_voices))


def quiet_note(codecs: list[Codec], names: list[str], signals: list[np.ndarray]) -> None:
    """Name the near-silent references, which stay in the table's means, and give the means without them."""
    level = {
        name: 10 * np.log10(max(float(np.mean(np.square(x, dtype=np.float64))), 1e-20))
        for name, x in zip(names, signals)
    }
    quiet = {name for name, db in level.items() if db < QUIET_DBFS}
    if not quiet:
        return
    names = ", ".join(f"{name} ({level[name]:.0f} dBFS RMS)" for name in sorted(quiet))
    print(
        f"\nNear-silent reference(s), below {QUIET_DBFS:.0f} dBFS: {names}. They count in the means above "
        "(as in `vqtok eval`) although no metric means anything on them; the means without them "
        f"({len(names) - len(quiet)} files; PESQ, STOI, log-mel, SI-SDR):"
    )
    for c in codecs:
        print(f"- {c.name}: " + ", ".join(mean(c, metric, quiet) for metric in METRICS))


def tool_versions() -> str:
    out = []
    for pkg in ("codec2", "opus-tools", "libopus0"):
        try:
            v = subprocess.run(["dpkg-query", "-W", "-f", "${Version}", pkg], capture_output=True, text=True).stdout
        except FileNotFoundError:
            v = ""
        out.append(f"{pkg} {v or '?'}")
    from importlib.metadata import PackageNotFoundError, version

    for pkg in ("pesq", "pystoi"):
        try:
            out.append(f"{pkg} {version(pkg)}")
        except PackageNotFoundError:
            out.append(f"{pkg} not installed")
    return ", ".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, action="append", default=[], help="a vqtok audio model (repeatable)")
    parser.add_argument("--limit", type=int, default=None, help="only the first N test files (sorted)")
    parser.add_argument(
        "--modes", default="3200,2400,1600,1300,700C", help="codec2 modes, comma-separated ('' for none)"
    )
    parser.add_argument("--opus-kbps", default="6,8", help="Opus bitrates in kbit/s, comma-separated ('' for none)")
    parser.add_argument(
        "--n-q", default="all", help="codebooks of each residual model: 'all' and/or numbers, comma-separated"
    )
    parser.add_argument("--test", type=Path, default=TEST, help="folder of 8 kHz mono WAVs (voices in sub-folders)")
    args = parser.parse_args()
    n_qs = [None if k == "all" else int(k) for k in args.n_q.split(",") if k]
    modes = [m for m in args.modes.split(",") if m]
    kbps = [float(k) for k in args.opus_kbps.split(",") if k]
    for m in modes:
        if m not in peers.CODEC2_MODES:
            parser.error(f"unknown codec2 mode {m!r}; one of {', '.join(peers.CODEC2_MODES)}")
    for model in args.model:
        if not model.is_file():
            parser.error(f"--model {model}: no such file")
    try:
        import pesq  # noqa: F401
        import pystoi  # noqa: F401
    except ImportError as e:
        raise SystemExit(f"{e.name} is missing: pip install pesq pystoi") from None
    if modes:
        peers.require("c2enc", "c2dec")
    if kbps:
        peers.require("opusenc", "opusdec")

    print("$ python " + " ".join(shlex.quote(a) for a in sys.argv))
    print(
        f"{time.strftime('%Y-%m-%d %H:%M')}; torch {torch.__version__}, {torch.get_num_threads()} threads; "
        f"{tool_versions()}"
    )
    files, signals = load_test(args.test, args.limit)
    names = [f.relative_to(args.test).as_posix() for f in files]
    seconds = sum(len(x) for x in signals) / SR
    print(f"{len(files)} files of {args.test}, {seconds:.1f} s of audio at {SR} Hz\n", flush=True)

    codecs = []
    t = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-speech-") as tmp:
        folder = Path(tmp)
        codecs += [run_codec2(m, signals, folder) for m in modes]
        codecs += [run_opus(k, signals, folder) for k in kbps]
    codecs += [run_vqtok(m, files, [len(x) for x in signals], n_q) for m in args.model for n_q in n_qs]
    for c in codecs:
        measure_lag(c, signals)
        score(c, names, signals)
        c.decoded = []
    print(table(codecs))
    voice_tables(codecs, names)
    print(
        f"\nMeans over the {len(files)} files (PESQ and STOI: over the files they are defined on, below). "
        "bitrate: nominal (vqtok: raw, log2 K per code; with a prior, its entropy-coded rate in brackets); "
        "measured: total bits written over total seconds of audio:"
    )
    for c in codecs:
        print(f"- {c.name}: {c.measured}")
    print(
        f"\nDelay (one lag per codec, the median over the files of the best cross-correlation lag within "
        f"+-{MAX_LAG_SECONDS * 1000:.0f} ms; positive: the output is late):"
    )
    for c in codecs:
        near = sum(abs(lag - c.lag) <= SR // 1000 for lag in c.lags)
        print(
            f"- {c.name}: {c.lag} samples = {1000 * c.lag / SR:.2f} ms ({near}/{len(c.lags)} files within 1 ms "
            f"of it; per-file range {1000 * min(c.lags) / SR:.1f} to {1000 * max(c.lags) / SR:.1f} ms)"
        )
    failed: dict[tuple[str, tuple[str, ...]], list[str]] = {}
    for c in codecs:
        for metric, fs in c.failures.items():
            if fs:
                failed.setdefault((metric, tuple(fs)), []).append(c.name)
    if failed:
        print("\nSkipped (the metric is undefined on these files, so they are left out of its mean):")
        for (metric, fs), names in failed.items():
            which = "every codec" if len(names) == len(codecs) else ", ".join(names)
            print(f"- {metric.upper()}, {which}: {len(fs)} file(s): {'; '.join(fs)}")
    quiet_note(codecs, names, signals)
    if any(c.name.startswith("vqtok") and "Hz)" in c.name for c in codecs):
        print(
            "\nModels marked (N Hz) work at N Hz: their output was resampled to 8 kHz "
            "(torchaudio.functional.resample) before scoring."
        )
    print(f"\n{time.perf_counter() - t:.0f} s")


if __name__ == "__main__":
    main()
