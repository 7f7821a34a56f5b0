"""``vqtok plugins``: what is installed."""

from __future__ import annotations

import typer
from rich.markup import escape

from .. import __version__
from .app import app, err


# ---- plugins ------------------------------------------------------------------------------------------
@app.command()
def plugins(
    as_json: bool = typer.Option(
        False,
        "--json",
        help="Print each plugin's package, version, hooks, "
        "modalities, families, commands and status as JSON on stdout.",
    ),
):
    """List installed plugins: the modalities, model families and commands they add, version, origin and
    status."""
    from dataclasses import asdict

    from rich.table import Table

    from ..plugin.defaults import installed_defaults, installed_models
    from ..plugin.hookspecs import HOOK_API_MINOR, HOOK_API_VERSION
    from ..plugin.registry import registry

    reg = registry()
    if as_json:
        import json

        print(
            json.dumps(
                {
                    "vqtok": __version__,
                    "hook_api": f"{HOOK_API_VERSION}.{HOOK_API_MINOR}",
                    "plugins": [asdict(p) for p in reg.plugins],
                },
                indent=2,
            )
        )
    table = Table(title="vqtok plugins")
    for col in ("plugin", "modalities", "families", "commands", "package", "version", "module", "status"):
        table.add_column(col)

    def conflicted(names, conflicts) -> str:
        return ", ".join(f"[red]{n} (conflict)[/]" if n in conflicts else n for n in names) or "-"

    for p in reg.plugins:
        status = "[green]ok[/]" if p.status == "ok" else f"[red]{escape(p.status)}[/]"
        table.add_row(
            p.name,
            conflicted(p.modalities, reg.conflicts),
            conflicted(p.families, reg.family_conflicts),
            conflicted(p.commands, reg.command_conflicts),
            p.distribution,
            p.version,
            p.module,
            status,
        )
    err.print(table)
    for kind, conflicts in (
        ("modality", reg.conflicts),
        ("model family", reg.family_conflicts),
        ("command", reg.command_conflicts),
    ):
        for name, who in conflicts.items():
            err.print(f"[red]conflict:[/] {kind} {name!r} is claimed by {', '.join(who)}; it is disabled")
    defaults = installed_defaults()
    for name, path in installed_models().items():
        state = "" if path.is_file() else " [red](missing)[/]"
        kind = "default model" if name in defaults else "shipped model"
        err.print(f"{kind} @{name}: {path}{state}", highlight=False)
