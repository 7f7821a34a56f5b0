"""A plugin that adds commands: a group (``vqtok corpus-stats count``) and a single command (``vqtok
hello``), and a third one named like the built-in ``train``, which vqtok must refuse."""

from __future__ import annotations

from pathlib import Path

import typer

import vqtok

VQTOK_HOOK_API = 2

stats = typer.Typer(name="corpus-stats", help="Facts about a folder of files.")


@stats.command()
def count(folder: Path = typer.Argument(..., help="The folder to count.")):
    """Count the files under FOLDER."""
    typer.echo(sum(1 for p in folder.rglob("*") if p.is_file()))


def hello(name: str = typer.Option("world", help="Who to greet.")):
    """Say hello."""
    typer.echo(f"hello {name}")


def train():
    """A command that collides with vqtok's own."""
    typer.echo("the plugin's train ran")


@vqtok.hookimpl
def vqtok_commands():
    return [stats, hello, train]
