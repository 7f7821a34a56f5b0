"""``vqtok eval``: metrics of a model on a folder of files, as a table, JSON and pictures."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from ..codec import Tokenizer
from .run import EvalOptions, Evaluation

__all__ = ["EvalOptions", "Evaluation", "evaluate"]


def evaluate(tok: Tokenizer, data: Path, options: EvalOptions, console: Console, plots: Path | None = None) -> dict:
    """Measure ``tok`` on the files under ``data``; with ``plots``, also write the report's pictures
    there (reconstructions from the modality, ``code-usage.png`` for discrete models) and list them
    in the report under ``"plots"``."""
    evaluation = Evaluation(tok, data, options)
    report = evaluation.run(console)
    if plots is not None:
        report["plots"] = [str(p) for p in write_plots(evaluation, plots)]
    return report


def write_plots(evaluation: Evaluation, folder: Path) -> list[Path]:
    from ..plots import code_usage_figure

    tok, t = evaluation.tok, evaluation.totals
    folder.mkdir(parents=True, exist_ok=True)
    originals, reconstructions = [x for x, _ in t.shown], [y for _, y in t.shown]
    written = tok.modality.report_figures(originals, reconstructions, folder, tok.config.options)
    if t.counts:
        code_usage_figure(t.counts, folder / "code-usage.png")
        written.append(folder / "code-usage.png")
    return written
