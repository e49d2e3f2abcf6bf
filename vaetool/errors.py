"""Errors that vaetool raises on bad input, and how they name the settings involved.

The CLI turns any :class:`VaetoolError` into one line on stderr and exit code 1, so every
message must say what was wrong, where (file or setting), and what was expected.

A message names a setting by its field, marked ‹field› (:func:`field`), never by a command-line
flag: the core does not speak CLI. ``str(error)`` shows the field's name (``top '150%':
expected …``, for library users); the CLI renders each marked field as its flag (``--top``)
through one table (vaetool.cli._fields). Warnings (:class:`VaetoolWarning`) follow the same rule.
"""

from __future__ import annotations

import re
from collections.abc import Callable

_MARKED = re.compile(r"‹([a-z][a-z0-9_]*)›")


def field(name: str) -> str:
    """``name`` marked as a setting's field inside a message (rendered by :func:`render`)."""
    return f"‹{name}›"


def render(text: str, name_of: Callable[[str], str] = str) -> str:
    """``text`` with every marked field shown as ``name_of(field)`` (default: the name)."""
    return _MARKED.sub(lambda match: name_of(match[1]), text)


def marked(error: BaseException) -> str:
    """An error's message with its fields still marked: what wraps it in another message."""
    return Exception.__str__(error)


def fields_in(text: str) -> list[str]:
    """The fields a message names, in order."""
    return _MARKED.findall(text)


class VaetoolError(Exception):
    """Base class: a user-facing error with an actionable one-line message."""

    def __str__(self) -> str:
        return render(super().__str__())


class DataError(VaetoolError):
    """A dataset could not be found, read, or has the wrong shape or values."""


class CheckpointError(VaetoolError):
    """A checkpoint is missing, corrupt, truncated, foreign, or would be overwritten."""


class ConfigError(VaetoolError):
    """An option or configuration value is out of range or unknown."""


class VaetoolWarning(UserWarning):
    """Something the user should know that does not stop the work (the CLI prints one line)."""

    def __str__(self) -> str:
        return render(super().__str__())
