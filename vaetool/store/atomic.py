"""Safe file writes: atomic over regular files, straight into pipes and terminals, never over
anything else.

- A new path or an existing regular file: a temporary file in the target's folder, fsync, then
  rename. A crash or a full disk mid-write leaves the final name untouched (old content or
  absent), never a truncated file.
- A symbolic link is followed: its target is replaced atomically and the link stays a link.
- A FIFO, a character device (a terminal, /dev/null, /dev/full) or /dev/stdout: written straight
  into, because replacing it with a regular file would destroy it (and a reader would get
  nothing).
- A folder, a block device or a socket: refused with one line.

A write that fails (a full disk, a quota, an I/O error) raises :class:`WriteError`, which names
the file ("cannot write PATH: No space left on device") and is still an ``OSError`` for callers
that fall back on one.
"""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path

from vaetool.errors import VaetoolError, render


class WriteError(VaetoolError, OSError):
    """A file could not be written: the message names it; ``errno``, ``strerror`` and
    ``filename`` are the OSError's."""

    def __str__(self) -> str:
        return render(Exception.__str__(self))


def cannot_write(path: str | os.PathLike[str], err: OSError) -> WriteError:
    """The WriteError for ``err`` raised while writing ``path``."""
    error = WriteError(f"cannot write {path}: {err.strerror or err}")
    error.errno, error.strerror, error.filename = err.errno, err.strerror, os.fspath(path)
    return error


def write_atomic(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``path`` as described above; returns ``path``.

    Raises VaetoolError if the folder is missing or not writable or the path is a kind of file
    that cannot be written, and WriteError (an OSError too) naming ``path`` if the write itself
    fails (e.g. a full disk); the final name is then untouched.
    """
    target = Path(path)
    kind = _kind(target)
    if kind in ("fifo", "char") or (kind == "file" and _is_stream_alias(target)):
        _write_through(target, data)
        return target
    if kind == "dir":
        raise VaetoolError(f"{target}: is a folder; expected a file name")
    if kind == "other":
        raise VaetoolError(f"{target}: is not a regular file (a block device or socket); refusing")
    _replace(Path(os.path.realpath(target)), data, shown=target)
    return target


def is_special(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` (followed through links) is a FIFO or character device: a stream that
    is written into, never replaced (callers skip their "exists, pass --force" check for it)."""
    path = Path(path)
    return _kind(path) in ("fifo", "char") or _is_stream_alias(path)


def _is_stream_alias(path: Path) -> bool:
    """/dev/stdout, /dev/fd/N, /proc/self/fd/N …: an open stream's name, whatever it points to
    (replacing the file behind it would leave the stream writing into a deleted file)."""
    return path.absolute().parts[1:2] in (("dev",), ("proc",))


def _kind(path: Path) -> str:
    """'new', 'file', 'dir', 'fifo', 'char' or 'other' for ``path``, links followed."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        return "new"
    except OSError as err:
        raise VaetoolError(f"{path}: cannot inspect ({err.strerror})") from None
    if stat.S_ISREG(mode):
        return "file"
    if stat.S_ISDIR(mode):
        return "dir"
    if stat.S_ISFIFO(mode):
        return "fifo"
    if stat.S_ISCHR(mode):
        return "char"
    return "other"


def _write_through(path: Path, data: bytes) -> None:
    try:
        with open(path, "wb", buffering=0) as handle:
            view = memoryview(data)
            while view:
                view = view[handle.write(view) or 0 :]
    except OSError as err:
        raise cannot_write(path, err) from None


def _replace(target: Path, data: bytes, shown: Path) -> None:
    folder = target.parent
    if not folder.is_dir():
        raise VaetoolError(f"{shown}: folder {folder} does not exist")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=folder)
    except OSError as err:
        raise VaetoolError(f"{shown}: cannot write in {folder} ({err.strerror})") from None
    try:
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the usual file mode
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException as err:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(err, OSError) and not isinstance(err, WriteError):
            raise cannot_write(shown, err) from None
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
