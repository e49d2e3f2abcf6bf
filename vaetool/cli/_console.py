"""Consoles: results on stdout, progress and messages on stderr."""

from __future__ import annotations

import sys
from contextlib import AbstractContextManager, nullcontext

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    TextColumn,
    TimeElapsedColumn,
)

# A pipe or file gets wide tables instead of rich's 80-column default.
out = Console(soft_wrap=True, width=None if sys.stdout.isatty() else 200)
err = Console(stderr=True, soft_wrap=True)


def busy(text: str) -> AbstractContextManager[object]:
    """A spinner on stderr for work over a second (nothing when stderr is not a terminal)."""
    return err.status(text) if err.is_terminal else nullcontext()


def progress_bar(*extra: ProgressColumn) -> Progress:
    """A transient bar on stderr (description, bar, n/N, time, then ``extra`` columns); off when
    stderr is not a terminal, so logs and pipes get only the command's own lines."""
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        *extra,
        console=err,
        transient=True,
        disable=not err.is_terminal,
    )
