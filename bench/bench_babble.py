"""Whose voice does the speech prior babble in? The median pitch of samples drawn for each voice label.

    python bench/bench_babble.py [--model @audio] [-n 6] [--seconds 4] [--temperature T]
                                 [--reference bench/data/speech-voices] [--label NAME ...]
                                 [--picture FILE.png]

Draws ``-n`` samples of ``--seconds`` for every label of a class-conditional prior (and ``-n`` with no label,
where the prior learned that; an unconditional prior: ``-n`` samples), as ``vqtok sample`` does (its default
temperature unless ``--temperature``, seeds 0..n-1), and prints each sample's median pitch and the share of
voiced frames. With ``--reference``, the same measure on up to 20 training files of each voice folder
(``train/<voice>``) and of each held-out voice (``test/<voice>``), for comparison.

``--label NAME`` (repeatable) keeps only those rows. ``--picture`` draws the spectrogram (0-1500 Hz) of every
sample, one panel each.

Pitch: frames of 40 ms every 10 ms; a frame is voiced when its energy is within 30 dB of the loudest frame's
and its normalised autocorrelation peaks above 0.5 between lags of 60 and 400 Hz; its pitch is the sample
rate over that lag. The median is over the voiced frames. Adult male voices mostly lie at 85-155 Hz, female
at 165-255 Hz.
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

import vqtok
from vqtok.plugin.defaults import model_path


def median_pitch(audio: np.ndarray, rate: int) -> tuple[float, float]:
    """(median pitch in Hz over voiced frames or nan, share of voiced frames) of mono ``audio``."""
    frame, hop = int(0.04 * rate), int(0.01 * rate)
    lo, hi = int(rate / 400), int(rate / 60)
    frames = [audio[i : i + frame] for i in range(0, len(audio) - frame, hop)]
    if not frames:
        return float("nan"), 0.0
    energy = np.array([float(np.sum(f**2)) + 1e-12 for f in frames])
    loud = 10 * np.log10(energy) > 10 * np.log10(energy.max()) - 30
    pitches = []
    for f, ok in zip(frames, loud):
        if not ok:
            continue
        f = f - f.mean()
        ac = np.correlate(f, f, mode="full")[frame - 1 :]
        if ac[0] <= 0:
            continue
        ac = ac / ac[0]
        lag = lo + int(np.argmax(ac[lo : hi + 1]))
        if ac[lag] > 0.5:
            pitches.append(rate / lag)
    return (statistics.median(pitches) if pitches else float("nan")), len(pitches) / len(frames)


def describe(values: list[tuple[float, float]]) -> str:
    pitches = [p for p, _ in values if p == p]
    pitch = f"{statistics.median(pitches):5.0f} Hz" if pitches else "    - Hz"
    each = ", ".join(f"{p:.0f}" if p == p else "-" for p, _ in values)
    return f"median {pitch}  (each: {each}; voiced {statistics.mean(v for _, v in values):.0%})"


def draw(panels: list[tuple[str, np.ndarray]], rate: int, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(panels), 1, figsize=(9, 1.6 * len(panels)), squeeze=False)
    for ax, (title, audio) in zip(axes[:, 0], panels):
        ax.specgram(audio, NFFT=512, Fs=rate, noverlap=448, cmap="viridis")
        ax.set_ylim(0, 1500)
        ax.set_title(title, fontsize=8, loc="left")
        ax.set_ylabel("Hz", fontsize=7)
        ax.tick_params(labelsize=7)
    axes[-1, 0].set_xlabel("seconds", fontsize=7)
    fig.tight_layout()
    fig.savefig(out, dpi=80)
    print(f"wrote {out}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="@audio")
    ap.add_argument("-n", type=int, default=6)
    ap.add_argument("--seconds", type=float, default=4.0)
    ap.add_argument("--temperature", type=float, default=None)
    ap.add_argument("--reference", type=Path, default=None)
    ap.add_argument("--picture", type=Path, default=None)
    ap.add_argument("--label", action="append", default=None, help="only this row (repeatable)")
    args = ap.parse_args()
    tok = vqtok.load(model_path(args.model))
    rate = tok.modality.describe(tok.config.options)["sample_rate"]
    names = list((tok.prior_info or {}).get("label_names") or [])
    rows: list[tuple[str, str | None]] = [(name, name) for name in names]
    if not names or tok.prior.knows_no_label:
        rows.append(("(no label)", None))
    if args.label:
        rows = [row for row in rows if row[0] in args.label]
    print(f"model {args.model}: {len(names)} voice labels; {args.n} samples of {args.seconds:g} s each")
    size = [int(args.seconds * rate)]
    temperature = args.temperature if args.temperature is not None else 1.0
    print(f"temperature {temperature:g}")
    firsts = []
    for title, label in rows:
        values = []
        for seed in range(args.n):
            if label is None and names:  # the "no label" embedding: sample through the prior directly
                grid = [-(-size[0] // tok.hop)]
                codes = tok.prior.sample(1, grid, None, temperature, 0, torch.Generator().manual_seed(seed))
                x = tok.model.decode(codes, None)[..., : size[0]]
            else:
                x = tok.sample(1, size, label, temperature, seed)
            values.append(median_pitch(x[0, 0].float().numpy(), rate))
            firsts.append((f"{title}, temperature {temperature:g}, seed {seed}", x[0, 0].float().numpy()))
        print(f"  sample {title:18s} {describe(values)}")
    if args.picture:
        draw(firsts, rate, args.picture)
    if args.reference:
        for split in ("train", "test"):
            for voice in sorted(p for p in (args.reference / split).iterdir() if p.is_dir()):
                files = sorted(voice.rglob("*.wav"))[:: max(1, len(list(voice.rglob("*.wav"))) // 20)][:20]
                values = [median_pitch(*sf.read(f, dtype="float32")) for f in files]
                print(f"  {split:5s} {voice.name:18s} {describe(values)}")


if __name__ == "__main__":
    main()
