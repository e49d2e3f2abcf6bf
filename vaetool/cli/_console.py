"""Consoles: results on stdout, progress and messages on stderr."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from vaetool.progress import StageProgress

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


@contextmanager
def stages(log_when_piped: bool = False) -> Iterator[StageProgress]:
    """A workflow progress callback ``(stage, done, total)``: one bar per named stage (with the
    estimated time left) on a terminal, so the display always says what is running. Elsewhere
    nothing, or with ``log_when_piped`` one line per stage as it starts (a long command in a
    log or a CI job still shows where it is)."""
    if log_when_piped and not err.is_terminal:
        seen: set[str] = set()

        def log(stage: str, done: int, total: int | None) -> None:
            if stage not in seen:
                seen.add(stage)
                note(f"{stage} …")

        yield log
        return
    with progress_bar(TimeRemainingColumn()) as bar:
        yield stage_callback(bar)


def stage_callback(bar: Progress) -> StageProgress:
    """``(stage, done, total)`` drawn on ``bar``: a new stage hides the previous ones."""
    tasks: dict[str, TaskID] = {}

    def report(stage: str, done: int, total: int | None) -> None:
        if stage not in tasks:
            for task in tasks.values():
                bar.update(task, visible=False)
            tasks[stage] = bar.add_task(stage, total=total, stats="")
        bar.update(tasks[stage], completed=done, total=total)

    return report


def note(text: str) -> None:
    """One plain line on stderr (paths written, hints)."""
    err.print(text, markup=False, highlight=False, soft_wrap=True)


def result_line(text: str) -> None:
    """One plain line on stdout (paths of results)."""
    out.print(text, markup=False, highlight=False, soft_wrap=True)
