"""A disk cache of binary images, one bit per pixel, filled as the images are asked for.

Procedural dSprites draws 737,280 images; drawing them all takes minutes on a CPU, so a
training epoch or a metric over the grid would spend most of its time drawing. The cache keeps
every image drawn once as packed bits (512 bytes for 64 x 64, 377 MB for the whole grid instead
of 3 GB as one byte per pixel) in one file under the cache folder, named by the generator's
version, and later reads come from that file (a memory map) at memory speed.

File layout: N check bytes, then N rows of packed bits. A row counts as stored only when its
check byte equals :func:`row_check` of its bits (never 0, the value of unwritten space), so a
row whose bits did not reach the disk (a crash, a power cut) is simply drawn again. Rows are
written with ``pwrite`` (a full disk is an ``OSError``, never a crash through the memory map),
bits first, check byte after. Processes sharing one file may draw the same row at once: they
write the same bytes. The cache folder is ``$VAETOOL_CACHE``, else ``$XDG_CACHE_HOME/vaetool``,
else ``~/.cache/vaetool``; ``VAETOOL_CACHE=off`` draws every image on demand.
"""

from __future__ import annotations

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
    """uint8 (B,) check bytes of packed rows uint8 (B, R): 1 + (sum_j (j+1) * byte_j) mod 251."""
    weights = np.arange(1, rows.shape[1] + 1, dtype=np.int64)
    return (1 + (rows.astype(np.int64) @ weights) % _PRIME).astype(np.uint8)


class BitCache:
    """``n`` binary images of ``pixels`` pixels each, stored in the file ``path``."""

    def __init__(self, path: Path, n: int, pixels: int) -> None:
        self.path, self.n, self.pixels = path, n, pixels
        self.row_bytes = -(-pixels // 8)
        size = n * (1 + self.row_bytes)
        path.parent.mkdir(parents=True, exist_ok=True)
        self.fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            have = os.fstat(self.fd).st_size
            if have == 0:
                os.ftruncate(self.fd, size)  # sparse: unwritten rows read as zeros (not stored)
            elif have != size:
                raise OSError(f"it is {have} bytes, expected {size}; left alone")
            self.map = np.memmap(path, dtype=np.uint8, mode="r", shape=(size,))
        except BaseException:
            os.close(self.fd)
            raise
        self.checks = self.map[:n]
        self.rows = self.map[n:].reshape(n, self.row_bytes)

    def stored(self, indices: np.ndarray) -> np.ndarray:
        """bool (B,): whether each row of ``indices`` (B,) is on disk and intact."""
        checks = np.asarray(self.checks[indices])
        ok = checks != 0
        if ok.any():
            ok[ok] = row_check(np.asarray(self.rows[indices[ok]])) == checks[ok]
        return ok

    def put(self, indices: np.ndarray, images: np.ndarray) -> None:
        """Store bool images (B, pixels) at distinct sorted ``indices`` (B,)."""
        packed = np.packbits(images.reshape(len(images), -1), axis=1)
        checks = row_check(packed)
        for start, stop in _runs(indices):  # one write per run of consecutive rows
            first = int(indices[start])
            os.pwrite(self.fd, packed[start:stop].tobytes(), self.n + first * self.row_bytes)
        for start, stop in _runs(indices):
            os.pwrite(self.fd, checks[start:stop].tobytes(), int(indices[start]))

    def get(self, indices: np.ndarray, draw: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
        """bool (B, pixels) images at ``indices`` (B,); rows not stored yet are drawn with
        ``draw`` (sorted distinct indices (M,) -> bool (M, pixels)) and stored."""
        indices = np.asarray(indices, dtype=np.int64)
        wanted = np.unique(indices)
        missing = wanted[~self.stored(wanted)]
        if len(missing):
            self.put(missing, draw(missing))
        packed = np.asarray(self.rows[indices])
        return np.unpackbits(packed, axis=1, count=self.pixels).astype(bool)

    def close(self) -> None:
        del self.map, self.checks, self.rows
        os.close(self.fd)


def _runs(indices: np.ndarray) -> list[tuple[int, int]]:
    """(start, stop) positions of the runs of consecutive values in sorted ``indices``."""
    breaks = np.flatnonzero(np.diff(indices) != 1) + 1
    edges = np.concatenate([[0], breaks, [len(indices)]])
    return list(zip(edges[:-1].tolist(), edges[1:].tolist(), strict=True))


def open_cache(name: str, n: int, pixels: int) -> BitCache | None:
    """The cache file ``name`` in :func:`cache_dir`, or None (with one warning) when it is
    switched off or cannot be used — the images are then drawn on demand."""
    folder = cache_dir()
    if folder is None:
        return None
    try:
        return BitCache(folder / name, n, pixels)
    except OSError as err:
        warnings.warn(
            f"image cache {folder / name} unusable ({err}); drawing images on demand "
            f"(set {CACHE_ENV} to a writable folder, or to off)",
            VaetoolWarning,
            stacklevel=3,
        )
        return None


def write_failed(cache: BitCache, err: OSError) -> None:
    """Say once that storing into ``cache`` failed (a full disk); the caller stops using it."""
    warnings.warn(
        f"image cache {cache.path}: could not store images ({err}); drawing on demand from now",
        VaetoolWarning,
        stacklevel=3,
    )
