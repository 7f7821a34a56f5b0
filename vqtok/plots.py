"""Pictures drawn with matplotlib: training curves from a metrics log, codebook usage, and the helper
every figure of vqtok (and of its plugins) is written through.

matplotlib is imported only when a picture is drawn, and only its object-oriented API is used (no
pyplot state, no GUI backend), so drawing works on machines without a display.
"""

from __future__ import annotations

import contextlib
import json
import math
from pathlib import Path

import torch

from .errors import VqtokError
from .files.atomic import atomic_path
from .metrics import perplexity, used_share

SKIPPED_KEYS = {"step", "time"}  # bookkeeping in a metrics log, not curves
PANEL_COLUMNS = 3


@contextlib.contextmanager
def figure_file(path: Path, rows: int = 1, cols: int = 1, width: float = 5.0, height: float = 3.0):
    """Yield ``(figure, axes)`` with ``axes`` a ``(rows, cols)`` array; on leaving the block the figure
    is written to ``path`` (PNG at 120 dpi) atomically."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width * cols, height * rows), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False)
    yield fig, axes
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120)


def read_metrics_log(path: Path) -> list[dict]:
    """The records of a ``*.metrics.jsonl`` file in step order; when a resumed run logged a step again,
    the later record wins."""
    by_step: dict[int, dict] = {}
    try:
        lines = Path(path).read_text().splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise VqtokError(f"{path}: cannot read it ({e})") from None
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            by_step[int(record["step"])] = record
        except (ValueError, KeyError, TypeError):
            raise VqtokError(f'{path}:{number}: not a vqtok metrics line (JSON with a "step")') from None
    if not by_step:
        raise VqtokError(f"{path}: no metrics in it yet")
    return [by_step[s] for s in sorted(by_step)]


def curve_names(runs: list[list[dict]]) -> list[str]:
    """The metrics that have a number (or a list of numbers) in some record, in first-seen order."""
    names: dict[str, None] = {}
    for records in runs:
        for r in records:
            for k, v in r.items():
                if k not in SKIPPED_KEYS and (_is_number(v) or (isinstance(v, list) and v and all(map(_is_number, v)))):
                    names.setdefault(k)
    return list(names)


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def training_curves(logs: list[Path], out: Path, only: list[str] | None = None) -> list[str]:
    """Draw one panel per metric of the metrics logs ``logs`` (several runs overlaid, one colour each)
    into the PNG ``out``; list-valued metrics (per codebook, per latent unit) draw one line per entry.
    Returns the metrics drawn."""
    runs = [read_metrics_log(p) for p in logs]
    names = curve_names(runs)
    if only:
        unknown = [n for n in only if n not in names]
        if unknown:
            raise VqtokError(f"no metric {', '.join(unknown)} in the log(s); they have: {', '.join(names)}")
        names = only
    rows = -(-len(names) // PANEL_COLUMNS)
    cols = min(PANEL_COLUMNS, len(names))
    with figure_file(out, rows, cols, width=4.2, height=2.8) as (fig, axes):
        for ax, name in zip(axes.flat, names):
            for i, (path, records) in enumerate(zip(logs, runs)):
                _draw_metric(ax, records, name, f"C{i}", Path(path).name if len(logs) > 1 else None)
            ax.set_title(name, fontsize="medium")
            ax.set_xlabel("step")
            ax.grid(alpha=0.3)
        for ax in list(axes.flat)[len(names) :]:
            ax.set_visible(False)
        if len(logs) > 1:
            axes.flat[0].legend(fontsize="small")
    return names


def _draw_metric(ax, records: list[dict], name: str, color: str, label: str | None) -> None:
    points = [(r["step"], r[name]) for r in records if name in r]
    if not points:
        return
    steps = [s for s, _ in points]
    values = [v if isinstance(v, list) else [v] for _, v in points]
    width = max(len(v) for v in values)
    for j in range(width):
        ys = [v[j] if j < len(v) and _is_number(v[j]) else float("nan") for v in values]
        marker = "o" if len(points) < 12 else None  # sparse metrics (held-out ones) as dots
        ax.plot(
            steps,
            ys,
            color=color,
            lw=1.0 if width == 1 else 0.6,
            alpha=1.0 if width == 1 else 0.7,
            marker=marker,
            ms=3,
            label=label if j == 0 else None,
        )
    flat = [y for v in values for y in v if _is_number(y)]
    if flat and min(flat) > 0 and max(flat) / min(flat) > 50:
        ax.set_yscale("log")


def code_usage_figure(counts: dict[str, list[torch.Tensor]], out: Path) -> None:
    """One panel per codebook of each latent: how often each code occurred, codes sorted from the most to
    the least used (log scale), titled with the perplexity and the share of codes used.
    ``counts``: ``{latent name: [histogram (K,) per codebook]}``."""
    panels = [(name, q, c) for name, per_q in counts.items() for q, c in enumerate(per_q)]
    cols = min(PANEL_COLUMNS, len(panels))
    with figure_file(out, -(-len(panels) // cols), cols, width=4.2, height=2.8) as (fig, axes):
        for ax, (name, q, c) in zip(axes.flat, panels):
            share = (c.double() / c.sum().clamp_min(1)).sort(descending=True).values
            ax.bar(range(len(share)), share.numpy(), width=1.0, color="tab:blue")
            if share[0] > 0:
                ax.set_yscale("log")
            ax.set_title(
                f"{name}, codebook {q}: perplexity {perplexity(c):.1f} of {len(c)}, {used_share(c):.0%} used",
                fontsize="small",
            )
            ax.set_xlabel("codes, most used first")
            ax.set_ylabel("share of positions")
        for ax in list(axes.flat)[len(panels) :]:
            ax.set_visible(False)
