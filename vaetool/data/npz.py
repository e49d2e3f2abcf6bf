"""``npz:FILE``: images in array ``x`` and optional integer labels in array ``y`` of an .npz.

``x`` layouts: (N, H, W), (N, H, W, C) or (N, C, H, W) with C in {1, 3}; dtype uint8 (0..255),
bool, or float with values in [0, 1]. ``y``: (N,) integers. Nothing is ever unpickled.
"""

from __future__ import annotations

import math
import zipfile
from pathlib import Path

import numpy as np
import torch

from vaetool.data.base import ArrayData
from vaetool.errors import DataError

DEFLATE_RATIO = 1032  # deflate inflates at most ~1032 bytes per compressed byte
CHANNELS = (1, 3)
LAYOUTS = "(N,H,W), (N,H,W,C) or (N,C,H,W) with C in {1,3}"


def open_npz(path: Path, what: str) -> np.lib.npyio.NpzFile:
    """Open ``path`` as an .npz without unpickling; DataError naming the file otherwise."""
    if not path.is_file():
        raise DataError(f"{path}: no such file; expected {what}")
    try:
        npz = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise DataError(f"{path}: not a readable .npz ({exc}); expected {what}") from None
    if not isinstance(npz, np.lib.npyio.NpzFile):
        raise DataError(f"{path}: is a single .npy array, not an .npz archive; expected {what}")
    return npz


def npy_header(
    archive: zipfile.ZipFile, member: str, archive_size: int
) -> tuple[tuple[int, ...], np.dtype]:
    """(shape, dtype) of ``member`` from its .npy header, reading no data. ValueError when the
    header is not one numpy writes, or claims more bytes than the member can hold (numpy would
    allocate the claimed size, e.g. 1.46 TiB, before reading): the member's recorded size,
    capped by its compressed bytes on disk (``archive_size``) times what deflate can inflate."""
    readers = {
        (1, 0): np.lib.format.read_array_header_1_0,
        (2, 0): np.lib.format.read_array_header_2_0,
    }
    info = archive.getinfo(member)
    with archive.open(member) as stream:
        version = np.lib.format.read_magic(stream)
        if version not in readers:
            raise ValueError(f"{member} has unsupported .npy format version {version}")
        shape, _, dtype = readers[version](stream)
        header = stream.tell()
    if dtype.hasobject:  # pickled: the reader refuses it, whatever its size
        return tuple(shape), dtype
    stored = min(info.compress_size, max(archive_size - info.header_offset, 0))
    ratio = {zipfile.ZIP_STORED: 1, zipfile.ZIP_DEFLATED: DEFLATE_RATIO}.get(info.compress_type)
    held = info.file_size if ratio is None else min(info.file_size, stored * ratio + 1024)
    claimed = math.prod(shape) * dtype.itemsize
    if claimed > held - header:
        raise ValueError(
            f"{member}'s header claims shape {tuple(shape)} of {dtype.name} ({claimed:,} bytes) "
            f"but the member holds at most {max(held - header, 0):,} bytes: damaged or crafted"
        )
    return tuple(shape), dtype


def read_array(npz: np.lib.npyio.NpzFile, path: Path, key: str, what: str) -> np.ndarray:
    """Array ``key`` of an open .npz; DataError if absent, pickled, unreadable or if its header
    claims more data than the file holds (:func:`npy_header`)."""
    if key not in npz.files:
        found = ", ".join(repr(k) for k in npz.files) or "none"
        raise DataError(f"{path}: no array {key!r} (found {found}); expected {what}")
    member = key + ".npy" if key + ".npy" in npz.zip.namelist() else key
    try:
        npy_header(npz.zip, member, path.stat().st_size)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise DataError(f"{path}: array {key!r} is not readable ({exc}); expected {what}") from None
    try:
        return npz[key]
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise DataError(f"{path}: array {key!r} cannot be read without pickle ({exc})") from None


def to_nchw(x: np.ndarray, path: Path) -> np.ndarray:
    """Reorder ``x`` to (N, C, H, W): 3-D is (N, H, W); 4-D is (N, C, H, W) when dim 1 is 1 or 3,
    else (N, H, W, C) when the last dim is 1 or 3."""
    if x.ndim == 3:
        return x[:, None]
    if x.ndim == 4 and x.shape[1] in CHANNELS:
        return x
    if x.ndim == 4 and x.shape[3] in CHANNELS:
        return x.transpose(0, 3, 1, 2)
    raise DataError(f"{path}: array 'x' has shape {x.shape}; expected {LAYOUTS}")


def to_pixels(x: np.ndarray, path: Path) -> torch.Tensor:
    """(N, C, H, W) uint8 / bool / float array -> uint8 or float32 tensor for ArrayData."""
    if x.dtype == np.uint8:
        return torch.from_numpy(np.ascontiguousarray(x))
    if x.dtype == np.bool_:
        return torch.from_numpy(x.astype(np.uint8) * np.uint8(255))
    if not np.issubdtype(x.dtype, np.floating):
        raise DataError(
            f"{path}: array 'x' has dtype {x.dtype}; expected uint8 (0..255), bool, or float "
            "in [0, 1] (convert with x.astype(np.uint8) if it holds 0..255)"
        )
    if not np.isfinite(x).all():
        raise DataError(f"{path}: array 'x' contains NaN or infinite values; expected [0, 1]")
    lo, hi = float(x.min()), float(x.max())
    if lo < 0.0 or hi > 1.0:
        raise DataError(
            f"{path}: float array 'x' has values outside [0, 1] (min {lo:g}, max {hi:g}); "
            "expected floats in [0, 1] or uint8 0..255"
        )
    return torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))


def to_labels(y: np.ndarray, n: int, path: Path) -> np.ndarray:
    """Validate labels ``y``: int64 (N,)."""
    if y.ndim != 1 or len(y) != n:
        raise DataError(
            f"{path}: array 'y' has shape {y.shape}; expected ({n},), one label per image"
        )
    if not (np.issubdtype(y.dtype, np.integer) or y.dtype == np.bool_):
        raise DataError(f"{path}: array 'y' has dtype {y.dtype}; expected integer labels")
    if len(y) and int(y.min()) < 0:
        raise DataError(
            f"{path}: array 'y' has negative labels (min {int(y.min())}); expected class indices "
            "0, 1, 2, …"
        )
    return y.astype(np.int64)


def load_npz(file: str) -> ArrayData:
    """``npz:FILE`` -> ArrayData: pixels uint8 or float32 (N, C, H, W), labels int64 (N,)/None."""
    path = Path(file).expanduser().resolve()
    what = f"an .npz with array 'x' shaped {LAYOUTS} and optional labels 'y' (N,)"
    with open_npz(path, what) as npz:
        x = read_array(npz, path, "x", what)
        y = read_array(npz, path, "y", what) if "y" in npz.files else None
    x = to_nchw(x, path)
    if x.shape[0] == 0 or 0 in x.shape[2:]:
        raise DataError(f"{path}: array 'x' has shape {x.shape}; expected at least one image")
    pixels = to_pixels(x, path)
    labels = None if y is None else to_labels(y, x.shape[0], path)
    return ArrayData(f"npz:{path}", pixels, labels=labels)
