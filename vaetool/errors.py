"""Errors that vaetool raises on bad input.

The CLI turns any :class:`VaetoolError` into one line on stderr and exit code 1, so every
message must say what was wrong, where (file or option), and what was expected.
"""

from __future__ import annotations


class VaetoolError(Exception):
    """Base class: a user-facing error with an actionable one-line message."""


class DataError(VaetoolError):
    """A dataset could not be found, read, or has the wrong shape or values."""


class CheckpointError(VaetoolError):
    """A checkpoint is missing, corrupt, truncated, foreign, or would be overwritten."""


class ConfigError(VaetoolError):
    """An option or configuration value is out of range or unknown."""


class VaetoolWarning(UserWarning):
    """Something the user should know that does not stop the work (the CLI prints one line)."""
