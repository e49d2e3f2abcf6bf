"""Writers that put small real dataset files into a test's tmp_path."""

from __future__ import annotations

import gzip
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest


def idx_bytes(array: np.ndarray, magic: int) -> bytes:
    """An IDX file: big-endian magic, one big-endian uint32 per dim, then the uint8 data."""
    header = magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in array.shape)
    return header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()


def write_file(path: Path, data: bytes) -> Path:
    if path.suffix == ".gz":
        with gzip.open(path, "wb") as fh:
            fh.write(data)
    else:
        path.write_bytes(data)
    return path


@pytest.fixture
def write_idx() -> Callable[..., Path]:
    """write_idx(dir, name, array, magic) -> path; gzipped when name ends in .gz."""

    def write(directory: Path, name: str, array: np.ndarray, magic: int) -> Path:
        directory.mkdir(parents=True, exist_ok=True)
        return write_file(directory / name, idx_bytes(array, magic))

    return write


@pytest.fixture
def mnist_like(tmp_path: Path, write_idx: Callable[..., Path]) -> Callable[..., Path]:
    """mnist_like(gz=False, dotted=False, labels=True) -> a dir with a tiny train + t10k set.

    train: 5 images 4x6 with pixel value 10*i + column; t10k: 3 images; labels 0..4, 5..7.
    """

    def make(gz: bool = False, dotted: bool = False, labels: bool = True) -> Path:
        directory = tmp_path / f"idx_gz{gz}_dot{dotted}_lab{labels}"
        ext = ".gz" if gz else ""
        sep = "." if dotted else "-"
        for part, start, n in (("train", 0, 5), ("t10k", 5, 3)):
            images = (np.arange(start, start + n)[:, None, None] * 10 + np.arange(6)).repeat(4, 1)
            write_idx(directory, f"{part}-images{sep}idx3-ubyte{ext}", images, 0x803)
            if labels:
                write_idx(
                    directory,
                    f"{part}-labels{sep}idx1-ubyte{ext}",
                    np.arange(start, start + n),
                    0x801,
                )
        return directory

    return make
