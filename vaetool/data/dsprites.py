"""dSprites: 737,280 binary 1x64x64 sprites with five known generative factors.

``dsprites`` renders the grid procedurally and on demand: shape 3 (square, ellipse, heart) x
scale 6 (0.5..1) x orientation 40 (0..2pi) x posX 32 (0..1) x posY 32 (0..1), index order
row-major over (shape, scale, orientation, posX, posY) like the official ``latents_classes``.
Each sprite is an implicit shape tested at pixel centres after rotating the pixel grid about
the sprite centre; posX moves it right and posY moves it down. The drawing is close to, not
pixel-identical with, the official file (Matthey et al. 2017), which ``dsprites:FILE`` loads.
Every image drawn is kept in a one-bit-per-pixel disk cache (:mod:`vaetool.data.cache`)
whose file name carries the generator's version, so each is drawn once per machine.
"""

from __future__ import annotations

import hashlib
from functools import cache, cached_property
from pathlib import Path

import numpy as np
import torch

from vaetool.data.base import ArrayData, ImageData
from vaetool.data.cache import RowCache, open_cache, rows_through
from vaetool.data.npz import open_npz, read_array
from vaetool.errors import DataError

FACTOR_NAMES = ("shape", "scale", "orientation", "posX", "posY")
FACTOR_SIZES = (3, 6, 40, 32, 32)
SHAPE_NAMES = ("square", "ellipse", "heart")
FACTOR_VALUES = (
    np.array([1.0, 2.0, 3.0]),  # shape values as in the official latents_values
    np.linspace(0.5, 1.0, 6),
    np.linspace(0.0, 2 * np.pi, 40),
    np.linspace(0.0, 1.0, 32),
    np.linspace(0.0, 1.0, 32),
)
SIZE = 64
RADIUS = 10.0  # half-size in pixels of a scale-1 sprite: a square is ~20 px, about 1/3 of 64
MARGIN = 16.0  # sprite centres span [MARGIN, SIZE - MARGIN], so every sprite stays inside
CHUNK = 1024  # images rendered per vectorised step (bounds temporary memory to ~100 MB)
HEART_SIZE = 0.82  # the heart's square: half its diagonal, fitted to the official frames
HEART_TIP = 0.85  # where its tip is (below the sprite centre)
HEART_LOBE = 0.95  # lobe radius over half the square's side
GENERATOR_VERSION = 4  # raise whenever the drawing changes (the cache key also hashes probes)


def _square(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    return np.maximum(np.abs(u), np.abs(v)) <= 1.0


ELLIPSE_AXES = (1.275, 0.725)  # fitted to the official frames: 4 pixels off over all 6 scales


def _ellipse(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    a, b = ELLIPSE_AXES
    return (u / a) ** 2 + (v / b) ** 2 <= 1.0


def _heart(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """A square turned 45 degrees (the straight sides and the sharp tip) with a disc on each
    upper side (the lobes): half-diagonal HEART_SIZE, tip at v = HEART_TIP, discs of radius
    HEART_LOBE x half a side, fitted to the official frames (docs/datasets.md)."""
    d, tip = HEART_SIZE, HEART_TIP
    centre = tip - d  # of the square; v grows downwards, the tip points down
    lobe = HEART_LOBE * d / np.sqrt(2.0)
    lobes = (np.abs(u) - d / 2) ** 2 + (v - centre + d / 2) ** 2 <= lobe * lobe
    return (np.abs(u) + np.abs(v - centre) <= d) | lobes


SHAPES = (_square, _ellipse, _heart)


_COS = np.cos(FACTOR_VALUES[2])  # tables, so a sprite never depends on how it was batched
_SIN = np.sin(FACTOR_VALUES[2])
_CENTRES = MARGIN + FACTOR_VALUES[3] * (SIZE - 2 * MARGIN)  # pixel coordinate of pos 0..1
_GRID = np.arange(SIZE, dtype=np.float64) + 0.5  # pixel centres


def _sprite_frame(classes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pixel centres in sprite units for classes (B, 5): u, v float64 (B, 64, 64).

    The grid is shifted to the sprite centre, rotated by +orientation (so the sprite turns the
    way the official frames turn: measured against them, tests/data/test_dsprites_fidelity.py)
    and divided by the sprite radius; v grows downwards like image rows.
    """
    radius = FACTOR_VALUES[1][classes[:, 1]] * RADIUS
    cos = (_COS[classes[:, 2]] / radius)[:, None, None]
    sin = (_SIN[classes[:, 2]] / radius)[:, None, None]
    dx = _GRID[None, None, :] - _CENTRES[classes[:, 3]][:, None, None]  # (B, 1, W)
    dy = _GRID[None, :, None] - _CENTRES[classes[:, 4]][:, None, None]  # (B, H, 1)
    return cos * dx - sin * dy, cos * dy + sin * dx


def render(classes: np.ndarray) -> np.ndarray:
    """Draw sprites for factor classes int (B, 5): bool (B, 64, 64), True = foreground."""
    out = np.zeros((len(classes), SIZE, SIZE), dtype=bool)
    for k, inside in enumerate(SHAPES):
        rows = np.flatnonzero(classes[:, 0] == k)
        if len(rows):
            out[rows] = inside(*_sprite_frame(classes[rows]))
    return out


@cache
def generator_key() -> str:
    """``dsprites-v<version>-<hash>``: the cache key, with a hash of 97 sprites drawn across
    the grid, so a change to the drawing that forgets to raise the version still misses."""
    probes = np.linspace(0, int(np.prod(FACTOR_SIZES)) - 1, 97).astype(np.int64)
    classes = np.stack(np.unravel_index(probes, FACTOR_SIZES), axis=1)
    digest = hashlib.sha256(np.packbits(render(classes)).tobytes()).hexdigest()[:12]
    return f"dsprites-v{GENERATOR_VERSION}-{digest}"


def draw(indices: np.ndarray) -> np.ndarray:
    """bool (B, 64 * 64) sprites of dataset indices (B,), drawn CHUNK at a time."""
    classes = np.stack(np.unravel_index(indices, FACTOR_SIZES), axis=1).astype(np.int64)
    out = np.empty((len(classes), SIZE * SIZE), dtype=bool)
    for start in range(0, len(classes), CHUNK):
        out[start : start + CHUNK] = render(classes[start : start + CHUNK]).reshape(-1, SIZE * SIZE)
    return out


class DSpritesData(ImageData):
    """Procedural dSprites: N = 737,280 images (1, 64, 64), pixels exactly 0 or 1.

    ``factors``: float64 (N, 5) values; ``factor_classes``: int64 (N, 5) indices into
    :data:`FACTOR_VALUES`; ``labels``: int64 (N,) shape class (0 square, 1 ellipse, 2 heart).
    These tables are built on first use; :meth:`images` needs none of them.
    """

    spec = "dsprites"
    shape = (1, SIZE, SIZE)
    factor_names = FACTOR_NAMES
    factor_sizes = FACTOR_SIZES

    def __len__(self) -> int:
        return int(np.prod(FACTOR_SIZES))

    def classes_of(self, indices: np.ndarray) -> np.ndarray:
        """int64 (B, 5) factor classes of dataset indices (B,)."""
        flat = self._checked(indices)
        return np.stack(np.unravel_index(flat, FACTOR_SIZES), axis=1).astype(np.int64)

    def index_of(self, classes: np.ndarray) -> np.ndarray:
        """int64 (B,) dataset indices of factor classes int (B, 5)."""
        classes = np.asarray(classes, dtype=np.int64).reshape(-1, len(FACTOR_SIZES))
        return np.ravel_multi_index(tuple(classes.T), FACTOR_SIZES).astype(np.int64)

    def images(self, indices: np.ndarray) -> torch.Tensor:
        """float32 (B, 1, 64, 64) with values in {0, 1} for dataset indices (B,): from the
        render cache, drawing (and storing) those it does not hold yet."""
        bits, self._cache = rows_through(self._cache, self._checked(indices), draw)
        return torch.from_numpy(bits.reshape(-1, 1, SIZE, SIZE).astype(np.float32))

    @cached_property
    def _cache(self) -> RowCache | None:
        return open_cache(generator_key() + ".bits", len(self), SIZE * SIZE, binary=True)

    def _checked(self, indices: np.ndarray) -> np.ndarray:
        flat = np.asarray(indices, dtype=np.int64).reshape(-1)
        if len(flat) and (flat.min() < 0 or flat.max() >= len(self)):
            raise IndexError(f"dsprites index out of range 0..{len(self) - 1}")
        return flat

    @cached_property
    def factor_classes(self) -> np.ndarray:
        return self.classes_of(np.arange(len(self)))

    @cached_property
    def factors(self) -> np.ndarray:  # type: ignore[override]
        classes = self.factor_classes
        return np.stack([FACTOR_VALUES[k][classes[:, k]] for k in range(5)], axis=1)

    @cached_property
    def labels(self) -> np.ndarray:  # type: ignore[override]
        return self.factor_classes[:, 0].copy()


class DSpritesFileData(ArrayData):
    """The official dSprites npz in memory; adds ``factor_classes`` int64 (N, 5)."""

    factor_classes: np.ndarray


def _check_latents(path: Path, name: str, arr: np.ndarray, n: int) -> None:
    if arr.ndim != 2 or arr.shape != (n, 6):
        raise DataError(f"{path}: array {name!r} has shape {arr.shape}; expected ({n}, 6)")


def load_dsprites_file(file: str) -> DSpritesFileData:
    """``dsprites:FILE`` -> pixels uint8 0/255 (N, 1, H, W), factors = latents_values[:, 1:].

    Reads only ``imgs``, ``latents_values`` and ``latents_classes``, never the pickled
    ``metadata``. labels = shape class (latents_classes[:, 1]).
    """
    path = Path(file).expanduser().resolve()
    what = "the official dsprites_ndarray_*.npz with 'imgs', 'latents_values', 'latents_classes'"
    with open_npz(path, what) as npz:
        imgs = read_array(npz, path, "imgs", what)
        values = read_array(npz, path, "latents_values", what)
        classes = read_array(npz, path, "latents_classes", what)
    if imgs.ndim != 3 or len(imgs) == 0 or imgs.dtype not in (np.uint8, np.bool_):
        raise DataError(
            f"{path}: array 'imgs' is {imgs.dtype} {imgs.shape}; expected uint8 (N, 64, 64), N > 0"
        )
    _check_latents(path, "latents_values", values, len(imgs))
    _check_latents(path, "latents_classes", classes, len(imgs))
    imgs = imgs.astype(np.uint8, copy=False)
    if imgs.max() <= 1:  # the official file stores 0/1
        np.multiply(imgs, np.uint8(255), out=imgs)
    data = DSpritesFileData(
        f"dsprites:{path}",
        torch.from_numpy(np.ascontiguousarray(imgs)).unsqueeze(1),
        labels=classes[:, 1].astype(np.int64),
        factors=values[:, 1:].astype(np.float64),
        factor_names=FACTOR_NAMES,
    )
    data.factor_classes = classes[:, 1:].astype(np.int64)
    return data
