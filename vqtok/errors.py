"""The errors vqtok expects: each one becomes a one-line message and an exit code, never a traceback."""


class VqtokError(Exception):
    """A runtime error the user can act on (bad file, bad model): exit code 1."""

    exit_code = 1


class UsageError(VqtokError):
    """The command line or recipe asks for something impossible: exit code 2."""

    exit_code = 2


class PluginError(VqtokError):
    """Plugins disagree (two claim one modality) or a plugin breaks the contract."""


def first_line(error: BaseException) -> str:
    """The first line of an exception's message, or its type's name when the message is empty."""
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__
