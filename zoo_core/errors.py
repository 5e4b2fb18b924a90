"""Errors that reach the user as one line.

Anything the user can fix (a wrong name, a bad file, an invalid hyper-parameter) raises `ZooError`; the CLI
prints its message on one line and exits with `exit_code`. Everything else is a bug and keeps its traceback.
"""

from __future__ import annotations


class ZooError(Exception):
    """A problem the user can act on. `exit_code` 2 means bad input, 1 a failed operation."""

    exit_code = 2

    def __init__(self, message: str, exit_code: int | None = None):
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code


class UnknownModelError(ZooError, KeyError):
    """A model name that is not in the registry."""

    def __str__(self) -> str:  # KeyError would add quotes around the message
        return self.args[0]


class ConfigError(ZooError, ValueError):
    """Invalid architecture or hyper-parameters, found before any tensor is built."""


class RegistryError(ZooError):
    """A malformed registry.toml or plugin-provided model entry."""


class PluginError(ZooError):
    """A plugin conflict that cannot be resolved by skipping one plugin (e.g. two claim one name)."""


def first_line(exc: BaseException, with_type: bool = False) -> str:
    """An exception as one line for the user: its message's first line (after its type's name with
    ``with_type``), or its type's name alone when it has no message."""
    text = str(exc).strip()
    if not text:
        return type(exc).__name__
    line = text.splitlines()[0]
    return f"{type(exc).__name__}: {line}" if with_type else line
