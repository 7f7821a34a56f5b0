"""The ``vqtok`` command line's app: the Typer object, the console, shared options, and the entry point.

stdout carries data only (code files, ``--json``); tables, progress and messages go to stderr. Exit
codes: 0 ok, 1 runtime error (bad file, bad model), 2 usage error, 130 interrupted (143: SIGTERM). Expected errors are
one line; ``--debug`` (or ``VQTOK_DEBUG=1``) shows the traceback. torch is imported only by commands
that need it, so ``--help`` and ``--version`` stay fast.
"""

from __future__ import annotations

import os
import sys
import warnings
from pathlib import Path

import typer
from rich.markup import escape

from .. import __version__
from ..allocator import keep_freed_memory
from ..console import stderr_console
from ..errors import UsageError, VqtokError, first_line
from ..plugin.defaults import MODEL_ENV

err = stderr_console()
app = typer.Typer(
    name="vqtok",
    help="Train image and audio tokenizers and turn files into tokens and back.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="markdown",  # docstrings: paragraphs joined, `code` and lists rendered
    context_settings={"help_option_names": ["-h", "--help"]},
)

MODEL_HELP = (
    f"Model file, or @audio / @image / @digits for a shipped model (default: ${MODEL_ENV}, else the "
    "default model of the files' modality)."
)


# Paths are not checked by typer (its "is not readable" box is a usage error, exit 2): vqtok reads them
# itself and reports a file it may not read as one line, exit 1, like every other unreadable input.
def path_option(*args, **kwargs):
    return typer.Option(*args, readable=False, **kwargs)


def path_argument(*args, **kwargs):
    return typer.Argument(*args, readable=False, **kwargs)


def _version(value: bool):
    if value:
        print(f"vqtok {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version."),
    debug: bool = typer.Option(False, "--debug", help="Show Python tracebacks for errors."),
):
    """Train VQ-VAE, VQ-VAE-2, VAE and CVAE models on your images and audio, encode files to codes
    (or latent means) and decode them back, sample new ones.

    Start with `vqtok quickstart`, then `vqtok train --help`.
    """
    if debug:
        os.environ["VQTOK_DEBUG"] = "1"


def _model_path(model: Path | None, files: list[Path] = ()) -> Path:
    """--model, $VQTOK_MODEL, or the shipped default of the modality of ``files`` (vqtok.plugin.defaults)."""
    from ..plugin.defaults import model_path

    return model_path(model, files)


def _overrides(ctx: typer.Context) -> list[str]:
    """The extra ``section.key=value`` arguments of ``train`` and ``train-prior``."""
    for o in ctx.args:
        if "=" not in o:
            raise UsageError(f"unexpected argument {o!r}: overrides look like section.key=value")
    return list(ctx.args)


def builtin_commands() -> set[str]:
    return {c.name or c.callback.__name__.replace("_", "-") for c in app.registered_commands}


_PLUGIN_COMMANDS: set[str] = set()  # the plugins' commands put on ``app`` in this process


def add_plugin_commands(argv: list[str]) -> None:
    """Put the plugins' commands (``vqtok_commands``) on the command line, unless ``argv`` asks for a
    built-in command, which then starts without loading every plugin. A plugin command named like a
    built-in one is refused with a warning."""
    builtin = builtin_commands() - _PLUGIN_COMMANDS
    words = [a for a in argv if not a.startswith("-")]
    if words and words[0] in builtin:
        return
    from ..plugin.registry import registry

    reg = registry()
    for name, command in reg.commands.items():
        if name in _PLUGIN_COMMANDS:
            continue  # added by an earlier call in this process
        if name in builtin:
            err.print(
                f"vqtok: warning: a plugin's command {name!r} has the name of a built-in command; it is not added",
                highlight=False,
            )
            continue
        if isinstance(command, typer.Typer):
            app.add_typer(command, name=name)
        else:
            app.command(name)(command)
        _PLUGIN_COMMANDS.add(name)


def _show_warning(message, category, filename, lineno, file=None, line=None, _python=warnings.showwarning):
    """vqtok's own warnings (e.g. a renamed setting) as one line on stderr; others as Python shows them."""
    from ..config.renamed import RenamedSettingWarning

    if issubclass(category, RenamedSettingWarning):
        err.print(f"[yellow]warning:[/] {escape(str(message))}", highlight=False, soft_wrap=True)
    else:
        _python(message, category, filename, lineno, file, line)


def main() -> None:
    """Entry point: typer handles usage errors (exit 2); vqtok's own errors become one line."""
    debug = os.environ.get("VQTOK_DEBUG") == "1" or "--debug" in sys.argv
    keep_freed_memory()
    warnings.showwarning = _show_warning
    try:
        add_plugin_commands(sys.argv[1:])
        app()
    except VqtokError as e:
        if debug:
            raise
        err.print(f"[red]vqtok: error:[/] {escape(str(e))}", highlight=False, soft_wrap=True)
        sys.exit(e.exit_code)
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(130)
    except OSError as e:  # a file the system refused (permissions, a vanished folder): one line naming it
        if debug:
            raise
        where = f"{e.filename}: " if e.filename else ""
        err.print(
            f"[red]vqtok: error:[/] {escape(where + (e.strerror or first_line(e)))}", highlight=False, soft_wrap=True
        )
        sys.exit(1)
    except Exception as e:  # a bug: in a plugin (named) or in vqtok; one line, the traceback with --debug
        if debug:
            raise
        from ..plugin.registry import blame

        plugin = blame(e)
        culprit = f"in plugin {plugin.name!r} ({plugin.module})" if plugin else "inside vqtok (a bug: please report it)"
        err.print(
            f"[red]vqtok: error:[/] {escape(f'{type(e).__name__}: {first_line(e)}')} {escape(culprit)}; "
            "run with --debug for the traceback",
            highlight=False,
            soft_wrap=True,
        )
        sys.exit(1)
