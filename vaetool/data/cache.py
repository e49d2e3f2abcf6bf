"""A disk cache of images as uint8 rows, filled as the images are asked for.

Procedural dSprites draws 737,280 images and an image folder (CelebA: 200,000 JPEGs) decodes
every file; either would spend most of a training epoch or a metric making pixels. The cache
keeps every image made once in one file under the cache folder, named by what made it (the
generator's version; the folder's file names, sizes and times), and later reads come from that
file (a memory map) at memory speed. Binary images (dSprites) are stored as packed bits (512
bytes for 64 x 64: 377 MB for the whole grid instead of 3 GB), others as their uint8 pixels.
The file's whole size is reserved on disk when it is opened (``posix_fallocate``), so a disk
without room for it is one warning and images made on demand, never a SIGBUS through the map.

File layout: N check bytes, then N rows. A row counts as stored only when its check byte
equals :func:`row_check` of its bytes (never 0, the value of unwritten space), so a row whose
bytes did not reach the disk (a crash, a power cut) is simply made again. Rows are
written with ``pwrite`` into the reserved space (a short write is an ``OSError``), bytes
first, check byte after. Processes sharing one file may make the same row at once: they
write the same bytes. The cache folder is ``$VAETOOL_CACHE``, else ``$XDG_CACHE_HOME/vaetool``,
else ``~/.cache/vaetool``; ``VAETOOL_CACHE=off`` makes every image on demand.
"""

from __future__ import annotations

import contextlib
import errno
import os
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np

from vaetool.errors import VaetoolWarning

CACHE_ENV = "VAETOOL_CACHE"
_OFF = ("", "0", "off", "none", "no")
_PRIME = 251  # check bytes are 1 + (weighted byte sum mod 251): 1..251, never 0


def cache_dir() -> Path | None:
    """The cache folder from the environment (module docstring), or None when switched off."""
    value = os.environ.get(CACHE_ENV)
    if value is not None:
        return None if value.strip().lower() in _OFF else Path(value).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "vaetool"


def row_check(rows: np.ndarray) -> np.ndarray:
    """uint8 (B,) check bytes of rows uint8 (B, R): 1 + (sum_j (j+1) * byte_j) mod 251.

    The sum is a float64 matrix-vector product (BLAS), exact: it stays below 255·R² < 2⁵³.
    """
    weights = np.arange(1, rows.shape[1] + 1, dtype=np.float64)
    sums = rows.astype(np.float64) @ weights
    return (1 + np.fmod(sums, _PRIME)).astype(np.uint8)


class RowCache:
    """``n`` images of ``pixels`` values each in the file ``path``: bool images packed 8 to a
    byte when ``binary``, else uint8 values as they are."""

    def __init__(self, path: Path, n: int, pixels: int, binary: bool = False) -> None:
        self.path, self.n, self.pixels, self.binary = path, n, pixels, binary
        self.row_bytes = -(-pixels // 8) if binary else pixels
        size = n * (1 + self.row_bytes)
        path.parent.mkdir(parents=True, exist_ok=True)
        self.fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            have = os.fstat(self.fd).st_size
            if have not in (0, size):
                raise OSError(f"it is {have} bytes, expected {size}; left alone")
            _reserve(self.fd, path, size, fresh=have == 0)
            self.map = np.memmap(path, dtype=np.uint8, mode="r", shape=(size,))
        except BaseException:
            os.close(self.fd)
            raise
        self.checks = self.map[:n]
        self.rows = self.map[n:].reshape(n, self.row_bytes)
        self.known = np.zeros(n, dtype=bool)  # rows this process wrote or checked: intact

    def stored(self, indices: np.ndarray) -> np.ndarray:
        """bool (B,): whether each row of distinct ``indices`` (B,) is on disk and intact (each
        row's check is computed once per process: rows never change once stored)."""
        ok = self.known[indices].copy()
        unsure = np.flatnonzero(~ok)
        if len(unsure):
            rows = indices[unsure]
            checks = np.asarray(self.checks[rows])
            written = checks != 0
            if written.any():
                intact = row_check(np.asarray(self.rows[rows[written]])) == checks[written]
                ok[unsure[written]] = intact
                self.known[rows[written][intact]] = True
        return ok

    def put(self, indices: np.ndarray, images: np.ndarray) -> None:
        """Store images (B, pixels) (bool if binary, else uint8) at distinct sorted ``indices``."""
        rows = images.reshape(len(images), -1)
        packed = np.packbits(rows, axis=1) if self.binary else rows.astype(np.uint8, copy=False)
        checks = row_check(packed)
        for start, stop in _runs(indices):  # one write per run of consecutive rows
            first = int(indices[start])
            _write(self.fd, packed[start:stop].tobytes(), self.n + first * self.row_bytes)
        for start, stop in _runs(indices):
            _write(self.fd, checks[start:stop].tobytes(), int(indices[start]))
        self.known[indices] = True

    def get(self, indices: np.ndarray, make: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
        """Images (B, pixels) at ``indices`` (B,), bool if binary else uint8; rows not stored
        yet are made with ``make`` (sorted distinct indices (M,) -> images (M, pixels))."""
        indices = np.asarray(indices, dtype=np.int64)
        wanted = np.unique(indices)
        missing = wanted[~self.stored(wanted)]
        if len(missing):
            self.put(missing, make(missing))
        rows = np.asarray(self.rows[indices])
        if not self.binary:
            return rows
        return np.unpackbits(rows, axis=1, count=self.pixels).astype(bool)

    def close(self) -> None:
        del self.map, self.checks, self.rows
        os.close(self.fd)


def _reserve(fd: int, path: Path, size: int, fresh: bool) -> None:
    """Give the file ``fd`` its ``size`` bytes of real disk space, or raise OSError.

    A sparse file (``ftruncate``) would be no promise: on a full file system a page of it
    touched through the memory map — on tmpfs even a read of a hole — is a SIGBUS that kills
    the process without a word. ``posix_fallocate`` reserves every block now (a no-op for
    blocks already there), so a full disk is an ENOSPC here and the images are made on demand.
    A file this call began is removed again when the space is not there.
    """
    allocate = getattr(os, "posix_fallocate", None)
    try:
        if allocate is None:  # no such call (macOS): a sparse file, as before
            os.ftruncate(fd, size)
        else:
            allocate(fd, 0, size)
    except OSError as err:
        if fresh:
            with contextlib.suppress(OSError):
                os.unlink(path)
        reason = err.strerror or str(err)
        raise OSError(err.errno, f"could not reserve its {size / 1e6:.0f} MB ({reason})") from err


def _write(fd: int, payload: bytes, offset: int) -> None:
    """``pwrite`` all of ``payload`` at ``offset``; a short write (a full disk) is an OSError."""
    done = 0
    while done < len(payload):
        wrote = os.pwrite(fd, payload[done:], offset + done)
        if wrote <= 0:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        done += wrote


def _runs(indices: np.ndarray) -> list[tuple[int, int]]:
    """(start, stop) positions of the runs of consecutive values in sorted ``indices``."""
    breaks = np.flatnonzero(np.diff(indices) != 1) + 1
    edges = np.concatenate([[0], breaks, [len(indices)]])
    return list(zip(edges[:-1].tolist(), edges[1:].tolist(), strict=True))


def open_cache(name: str, n: int, pixels: int, binary: bool = False) -> RowCache | None:
    """The cache file ``name`` in :func:`cache_dir`, or None (with one warning) when it is
    switched off or cannot be used — the images are then made on demand."""
    folder = cache_dir()
    if folder is None:
        return None
    try:
        return RowCache(folder / name, n, pixels, binary)
    except OSError as err:
        warnings.warn(
            f"image cache {folder / name} unusable ({err.strerror or err}); making images on "
            f"demand (set {CACHE_ENV} to a writable folder with room, or to off)",
            VaetoolWarning,
            stacklevel=3,
        )
        return None


def rows_through(
    cache: RowCache | None, indices: np.ndarray, make: Callable[[np.ndarray], np.ndarray]
) -> tuple[np.ndarray, RowCache | None]:
    """(images at ``indices``, the cache to keep using): read through ``cache``, or made
    directly when there is none. A failed store (a full disk) is said once and the cache
    dropped (None returned), so the work goes on without it."""
    if cache is None:
        return make(indices), None
    try:
        return cache.get(indices, make), cache
    except OSError as err:
        warnings.warn(
            f"image cache {cache.path}: could not store images ({err}); making them on demand",
            VaetoolWarning,
            stacklevel=3,
        )
        return make(indices), None
