"""``folder:DIR``: the image files directly inside DIR, decoded lazily with Pillow.

Files with extensions png, jpg, jpeg, bmp, gif, webp (any case) are taken in name order
(subfolders are ignored). Each image is centre-cropped to a square and resized to
``image_size`` x ``image_size`` (64 by default). The first image decides the channels: a
grayscale image (mode 1, L or LA) makes a 1-channel dataset, anything else a 3-channel RGB one.

Files are decoded by a pool of threads (Pillow releases the GIL while decoding) and each decoded
image is kept in the uint8 disk cache (:mod:`vaetool.data.cache`) under a name that hashes the
folder's file names, sizes and modification times and the image size, so an epoch after the
first reads no file, and a changed folder never reads stale pixels.
"""

from __future__ import annotations

import hashlib
import os
from concurrent.futures import ThreadPoolExecutor
from functools import cached_property
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from vaetool.data.base import ImageData, to_unit_float
from vaetool.data.cache import RowCache, open_cache, rows_through
from vaetool.errors import ConfigError, DataError

EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp")
GRAY_MODES = ("1", "L", "LA")
DEFAULT_SIZE = 64
DECODE_THREADS = min(8, os.cpu_count() or 1)


def list_images(directory: Path) -> list[Path]:
    """Image files directly in ``directory``, sorted by name; DataError if none or not a dir."""
    if not directory.is_dir():
        raise DataError(f"{directory}: no such directory; expected a folder of image files")
    files = sorted(
        (p for p in directory.iterdir() if p.suffix.lower() in EXTENSIONS and p.is_file()),
        key=lambda p: p.name,
    )
    if not files:
        raise DataError(
            f"{directory}: no image files; expected files ending in {', '.join(EXTENSIONS)}"
        )
    return files


def _centre_box(width: int, height: int) -> tuple[int, int, int, int]:
    side = min(width, height)
    left, top = (width - side) // 2, (height - side) // 2
    return left, top, left + side, top + side


def load_image(path: Path, mode: str, size: int) -> np.ndarray:
    """Decode one file: uint8 (size, size) for mode 'L' or (size, size, 3) for 'RGB'.

    Centre-crops to a square, then resizes with a box (area) filter when shrinking and
    Lanczos when enlarging. DataError naming the file if it cannot be decoded.
    """
    try:
        with Image.open(path) as im:
            im.draft(mode, (size, size))  # JPEG: decode at a reduced scale when possible
            im = im.convert(mode)
            box = _centre_box(*im.size)
            shrink = box[2] - box[0] >= size
            resample = Image.Resampling.BOX if shrink else Image.Resampling.LANCZOS
            return np.asarray(im.crop(box).resize((size, size), resample=resample), np.uint8)
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        raise DataError(f"{path}: cannot read image ({exc}); expected a valid image file") from None


def _first_mode(path: Path) -> str:
    try:
        with Image.open(path) as im:
            return "L" if im.mode in GRAY_MODES else "RGB"
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        raise DataError(f"{path}: cannot read image ({exc}); expected a valid image file") from None


class FolderData(ImageData):
    """Lazily decoded image folder: C = 1 or 3, H = W = ``image_size``; no labels or factors.

    Only the file list is held in memory; :meth:`images` decodes the requested files.
    ``spec`` is ``folder:ABSOLUTE_DIR``, which reloads the data at the default size 64.
    """

    def __init__(self, directory: str | Path, image_size: int = DEFAULT_SIZE) -> None:
        if isinstance(image_size, bool) or not isinstance(image_size, int) or image_size < 1:
            raise ConfigError(f"image_size={image_size!r}: expected a positive integer")
        self.directory = Path(directory).expanduser().resolve()
        self.files = list_images(self.directory)
        self.image_size = image_size
        self.mode = _first_mode(self.files[0])
        self.spec = f"folder:{self.directory}"
        channels = 1 if self.mode == "L" else 3
        self.shape = (channels, image_size, image_size)

    def __len__(self) -> int:
        return len(self.files)

    def images(self, indices: np.ndarray) -> torch.Tensor:
        """float32 (B, C, H, W) in [0, 1] of the files at ``indices`` (B,): from the cache,
        decoding (and storing) those it does not hold yet."""
        flat = np.asarray(indices, dtype=np.int64).reshape(-1)
        if len(flat) and (flat.min() < 0 or flat.max() >= len(self)):
            raise IndexError(f"{self.spec}: index out of range 0..{len(self) - 1}")
        rows, self._cache = rows_through(self._cache, flat, self.decode)
        return to_unit_float(torch.from_numpy(rows.reshape(-1, *self.shape)))

    def decode(self, indices: np.ndarray) -> np.ndarray:
        """uint8 (B, C·H·W) decoded from the files at ``indices`` (B,) by the thread pool."""
        paths = [self.files[int(i)] for i in indices]
        decoded = list(self._pool.map(lambda p: load_image(p, self.mode, self.image_size), paths))
        if not decoded:
            return np.zeros((0, int(np.prod(self.shape))), dtype=np.uint8)
        batch = np.stack(decoded)
        batch = batch[:, None] if self.mode == "L" else batch.transpose(0, 3, 1, 2)
        return np.ascontiguousarray(batch).reshape(len(batch), -1)

    def cache_name(self) -> str:
        """``folder-<hash>-<mode><size>.u8``: the hash covers every file's name, size and
        modification time, so adding, removing or rewriting a file changes it."""
        digest = hashlib.sha256(str(self.directory).encode())
        for path in self.files:
            stat = path.stat()
            digest.update(f"\0{path.name}\0{stat.st_size}\0{stat.st_mtime_ns}".encode())
        return f"folder-{digest.hexdigest()[:16]}-{self.mode}{self.image_size}.u8"

    @cached_property
    def _cache(self) -> RowCache | None:
        return open_cache(self.cache_name(), len(self), int(np.prod(self.shape)))

    @cached_property
    def _pool(self) -> ThreadPoolExecutor:
        return ThreadPoolExecutor(DECODE_THREADS, thread_name_prefix="vaetool-decode")
