"""Advisory file locks (flock) for run folders and study results: one place, three uses.

A lock is held while its handle is open; the kernel drops it when the process dies, so a killed
run never leaves a folder locked for good (the lock file itself may stay: it means nothing
unless a live process holds it).
"""

from __future__ import annotations

import contextlib
import fcntl
from collections.abc import Iterator
from pathlib import Path
from typing import IO


def try_hold(path: Path) -> IO[bytes] | None:
    """An exclusive lock on ``path`` held until the returned handle closes, or None at once
    when another process holds it."""
    handle = open(path, "ab")  # noqa: SIM115 (held for the caller's life)
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.close()
        return None
    return handle


def is_held(path: Path) -> bool:
    """Whether another process holds the lock on ``path`` now (a missing file: no)."""
    if not Path(path).exists():
        return False
    handle = try_hold(path)
    if handle is None:
        return True
    handle.close()
    return False


@contextlib.contextmanager
def exclusive(path: Path) -> Iterator[None]:
    """Wait for, then hold, an exclusive lock on ``path`` for the block."""
    with open(path, "ab") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        yield
