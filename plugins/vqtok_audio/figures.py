"""``vqtok eval --plots`` for audio: waveforms and log-mel spectrograms, original beside reconstruction."""

from __future__ import annotations

from pathlib import Path

import torch

from vqtok.metrics import log_mel_db
from vqtok.plots import figure_file

MAX_EXAMPLES = 4
TOP_DB = 80.0


def comparison_figures(
    originals: list[torch.Tensor], reconstructions: list[torch.Tensor], folder: Path, sample_rate: int
) -> list[Path]:
    """Two PNGs for up to ``MAX_EXAMPLES`` pairs of ``(1, T)`` signals: ``waveforms.png`` (the original
    and the reconstruction overlaid, and their difference) and ``spectrograms.png`` (log-mel of each,
    on the original's dB scale, so lost or added energy shows)."""
    pairs = list(zip(originals, reconstructions))[:MAX_EXAMPLES]
    waves, specs = folder / "waveforms.png", folder / "spectrograms.png"
    with figure_file(waves, rows=len(pairs), cols=1, height=2.2) as (fig, axes):
        for ax, (x, y) in zip(axes[:, 0], pairs):
            t = torch.arange(x.shape[-1]) / sample_rate
            ax.plot(t, x[0], lw=0.5, color="black", label="original")
            ax.plot(t, y[0], lw=0.5, color="tab:orange", alpha=0.8, label="reconstruction")
            ax.plot(t, y[0] - x[0], lw=0.5, color="tab:red", alpha=0.6, label="difference")
            ax.set_xlim(0, float(t[-1]) if len(t) else 1)
            ax.set_ylabel("amplitude")
        axes[0, 0].legend(loc="upper right", fontsize="small")
        axes[-1, 0].set_xlabel("seconds")
    with figure_file(specs, rows=len(pairs), cols=2, height=2.2) as (fig, axes):
        for row, (x, y) in zip(axes, pairs):
            db = [log_mel_db(s[None], sample_rate)[0] for s in (x, y)]
            top = float(db[0].max())
            seconds = x.shape[-1] / sample_rate
            for ax, d, title in zip(row, db, ("original", "reconstruction")):
                image = ax.imshow(
                    d.numpy(),
                    origin="lower",
                    aspect="auto",
                    cmap="magma",
                    vmin=top - TOP_DB,
                    vmax=top,
                    extent=(0, seconds, 0, d.shape[0]),
                )
                ax.set_title(title, fontsize="small")
                ax.set_ylabel("mel band")
            fig.colorbar(image, ax=list(row), label="dB")
        for ax in axes[-1]:
            ax.set_xlabel("seconds")
    return [waves, specs]
