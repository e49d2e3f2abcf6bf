"""``idx:DIR``: the official MNIST / Fashion-MNIST IDX files, raw or gzipped.

DIR holds ``train-images-idx3-ubyte`` and/or ``t10k-images-idx3-ubyte`` (also spelled
``train-images.idx3-ubyte``; each optionally ``.gz``) and the matching ``*-labels-idx1-ubyte``
files. Train and t10k are concatenated (train first); vaetool makes its own seeded split.
"""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import numpy as np
import torch

from vaetool.data.base import ArrayData
from vaetool.errors import DataError

IMAGES_MAGIC = 0x00000803  # unsigned bytes, 3 dimensions (N, rows, cols)
LABELS_MAGIC = 0x00000801  # unsigned bytes, 1 dimension (N,)
PARTS = ("train", "t10k")


def _candidates(part: str, kind: str, dims: int) -> list[str]:
    """Accepted file names for e.g. ('train', 'images', 3), preferred spelling first."""
    stems = [f"{part}-{kind}-idx{dims}-ubyte", f"{part}-{kind}.idx{dims}-ubyte"]
    return [stem + ext for stem in stems for ext in ("", ".gz")]


def _find(directory: Path, part: str, kind: str, dims: int) -> Path | None:
    for name in _candidates(part, kind, dims):
        if (directory / name).is_file():
            return directory / name
    return None


def _read_bytes(path: Path) -> bytes:
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as fh:
                return fh.read()
        return path.read_bytes()
    except (OSError, EOFError, zlib.error) as exc:
        raise DataError(f"{path}: cannot read ({exc}); expected an IDX file (raw or .gz)") from None


def read_idx(path: Path, magic: int, ndim: int) -> np.ndarray:
    """Parse one IDX file of unsigned bytes: uint8 array of the dims given in its header.

    Raises DataError naming ``path`` on a wrong magic number or a size that does not match.
    """
    data = _read_bytes(path)
    header = 4 + 4 * ndim
    found = int.from_bytes(data[:4], "big") if len(data) >= 4 else None
    if found is not None and found != magic:
        raise DataError(f"{path}: IDX magic number 0x{found:08x}; expected 0x{magic:08x}")
    if len(data) < header:
        raise DataError(
            f"{path}: truncated IDX file of {len(data)} bytes; expected a {header}-byte header"
        )
    dims = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    expected = header + int(np.prod(dims, dtype=np.int64))
    if len(data) != expected:
        problem = "truncated" if len(data) < expected else "too long"
        raise DataError(
            f"{path}: {problem} IDX file of {len(data)} bytes; expected {expected} bytes "
            f"for dims {dims}"
        )
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(dims)


def _missing_message(directory: Path) -> str:
    names = ", ".join(_candidates("train", "images", 3)[:1] + _candidates("t10k", "images", 3)[:1])
    return (
        f"expected MNIST-style IDX files such as {names} (optionally .gz, or dotted "
        "'train-images.idx3-ubyte') with matching '*-labels-idx1-ubyte' files"
    )


def _read_part(directory: Path, part: str) -> tuple[np.ndarray, np.ndarray | None] | None:
    """(images uint8 (N, H, W), labels uint8 (N,) or None) for one part, or None if absent."""
    image_path = _find(directory, part, "images", 3)
    if image_path is None:
        return None
    images = read_idx(image_path, IMAGES_MAGIC, 3)
    label_path = _find(directory, part, "labels", 1)
    if label_path is None:
        return images, None
    labels = read_idx(label_path, LABELS_MAGIC, 1)
    if len(labels) != len(images):
        raise DataError(
            f"{label_path}: {len(labels)} labels for {len(images)} images in {image_path.name}; "
            "expected one label per image"
        )
    return images, labels


def _combine(directory: Path, parts: list[tuple[np.ndarray, np.ndarray | None]]) -> tuple:
    if len({p[0].shape[1:] for p in parts}) > 1:
        sizes = " vs ".join(f"{p[0].shape[1]}x{p[0].shape[2]}" for p in parts)
        raise DataError(
            f"{directory}: train and t10k images differ in size ({sizes}); expected one"
        )
    with_labels = [p[1] is not None for p in parts]
    if any(with_labels) and not all(with_labels):
        raise DataError(
            f"{directory}: label file found for only one of train/t10k; expected both "
            "'*-labels-idx1-ubyte' files or neither"
        )
    images = np.concatenate([p[0] for p in parts])
    labels = np.concatenate([p[1] for p in parts]) if all(with_labels) else None
    return images, labels


def load_idx(directory: str) -> ArrayData:
    """``idx:DIR`` -> ArrayData: pixels uint8 (N, 1, H, W), labels int64 (N,) or None."""
    path = Path(directory).expanduser().resolve()
    if not path.is_dir():
        raise DataError(f"{path}: no such directory; {_missing_message(path)}")
    parts = [p for p in (_read_part(path, part) for part in PARTS) if p is not None]
    if not parts:
        raise DataError(f"{path}: no IDX image files; {_missing_message(path)}")
    images, labels = _combine(path, parts)
    if len(images) == 0:
        raise DataError(f"{path}: the IDX image files hold 0 images; expected at least one")
    pixels = torch.from_numpy(np.ascontiguousarray(images)).unsqueeze(1)
    return ArrayData(
        f"idx:{path}", pixels, labels=None if labels is None else labels.astype(np.int64)
    )
