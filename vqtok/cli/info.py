"""``vqtok info``."""

from __future__ import annotations

from pathlib import Path

import typer

from .app import _model_path, app, err, path_argument


# ---- info ---------------------------------------------------------------------------------------------
@app.command()
def info(
    model: Path = path_argument(..., help="Model file, or @audio / @image for a shipped default, or a .vqz file."),
    as_json: bool = typer.Option(False, "--json", help="Print the metadata as JSON on stdout."),
):
    """Show a model file: what it is and what data it was trained on, family, modality, codebooks,
    bitrate, config and training summary. Given a .vqz file (`vqtok compress`): its header, size and rate."""
    if model.suffix.lower() == ".vqz":
        from .vqz_table import describe_container

        describe_container(model, as_json, err)
        return
    from .model_table import describe_model

    describe_model(_model_path(model), as_json, err)
