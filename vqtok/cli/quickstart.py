"""``vqtok quickstart``."""

from __future__ import annotations

from pathlib import Path

import typer

from .app import app, err, path_option


# ---- quickstart ---------------------------------------------------------------------------------------
@app.command()
def quickstart(
    out: Path = path_option(Path("quickstart"), "--out", "-o", help="Folder for the results."),
    steps: int | None = typer.Option(None, "--steps", help="Override the recipes' step counts."),
):
    """Train small audio and image tokenizers on the samples shipped with vqtok, then encode and decode.

    Uses recipes/quickstart-audio.toml and recipes/quickstart-image.toml; takes a few minutes on a
    laptop CPU. Look at the results in the --out folder.
    """
    from ..quickstart import run_quickstart

    run_quickstart(out, steps, err)
