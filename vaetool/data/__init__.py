"""Datasets: one string spec -> an :class:`ImageData` of float images in [0, 1].

Spec forms (see docs/datasets.md)::

    mnist5k            5,000 real MNIST digits shipped with vaetool, 1x28x28, labels 0..9
    idx:DIR            MNIST / Fashion-MNIST IDX files (raw or .gz), train + t10k concatenated
    npz:FILE           an .npz with array ``x`` (images) and optional ``y`` (integer labels)
    folder:DIR         image files in DIR, centre-cropped and resized to 64x64, decoded lazily
    dsprites           procedural dSprites grid, 737,280 binary 1x64x64 images with 5 factors
    dsprites:FILE      the official dsprites_ndarray_*.npz file
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from vaetool.data.base import (
    SPLIT_NAMES,
    ArrayData,
    ImageData,
    Split,
    split_indices,
)
from vaetool.data.dsprites import DSpritesData, load_dsprites_file
from vaetool.data.folder import FolderData
from vaetool.data.idx import load_idx
from vaetool.data.mnist5k import load_mnist5k
from vaetool.data.npz import load_npz
from vaetool.errors import ConfigError
from vaetool.registry import Registry

__all__ = [
    "DATASETS",
    "SPLIT_NAMES",
    "ArrayData",
    "DSpritesData",
    "FolderData",
    "ImageData",
    "Split",
    "SubsetData",
    "factor_classes",
    "load_dataset",
    "split_indices",
]

Loader = Callable[[str], ImageData]

#: Loaders keyed by the spec prefix (before ':'); each gets the part after ':' ("" if none).
DATASETS: Registry[Loader] = Registry("dataset", "‹data›")


def _require_arg(prefix: str, arg: str, what: str) -> str:
    if not arg:
        raise ConfigError(f"dataset spec {prefix!r} needs a {what}: expected {prefix}:{what}")
    return arg


@DATASETS.register("mnist5k")
def _mnist5k(arg: str) -> ImageData:
    if arg:
        raise ConfigError(f"dataset spec 'mnist5k:{arg}': mnist5k takes no argument; use mnist5k")
    return load_mnist5k()


@DATASETS.register("idx")
def _idx(arg: str) -> ImageData:
    return load_idx(_require_arg("idx", arg, "DIR"))


@DATASETS.register("npz")
def _npz(arg: str) -> ImageData:
    return load_npz(_require_arg("npz", arg, "FILE"))


@DATASETS.register("folder")
def _folder(arg: str) -> ImageData:
    return FolderData(_require_arg("folder", arg, "DIR"))


@DATASETS.register("dsprites")
def _dsprites(arg: str) -> ImageData:
    return load_dsprites_file(arg) if arg else DSpritesData()


class SubsetData(ImageData):
    """A view of ``base`` restricted to the sorted int64 ``indices`` (M,); works for lazy sources.

    ``spec`` is the base's spec (the subset is recorded separately by callers); labels, factors
    and factor classes are the base's rows at ``indices``.
    """

    def __init__(self, base: ImageData, indices: np.ndarray) -> None:
        self.base = base
        self.indices = np.asarray(indices, dtype=np.int64)
        self.spec = base.spec
        self.shape = base.shape
        self.factor_names = base.factor_names
        self.labels = None if base.labels is None else base.labels[self.indices]
        self.factors = None if base.factors is None else base.factors[self.indices]
        classes = getattr(base, "factor_classes", None)
        self.factor_classes = None if classes is None else classes[self.indices]
        self._pixels: torch.Tensor | None = None

    def __len__(self) -> int:
        return len(self.indices)

    def images(self, indices: np.ndarray) -> torch.Tensor:
        """float32 (B, C, H, W) in [0, 1] for subset positions ``indices`` (B,)."""
        return self.base.images(self.indices[np.asarray(indices, dtype=np.int64)])

    def pixels(self) -> torch.Tensor | None:
        """The subset's (M, C, H, W) tensor when the base is in memory (copied once), else None."""
        if self._pixels is None:
            full = self.base.pixels()
            if full is not None:
                self._pixels = full[torch.from_numpy(self.indices)]
        return self._pixels

    @property
    def bytes_per_image(self) -> int:
        return self.base.bytes_per_image


def take_subset(data: ImageData, subset: int, seed: int = 0) -> SubsetData:
    """A seeded random sample of ``subset`` images without replacement, indices sorted."""
    n = len(data)
    if (
        isinstance(subset, bool)
        or not isinstance(subset, (int, np.integer))
        or not 1 <= subset <= n
    ):
        raise ConfigError(
            f"‹subset› {subset!r} for dataset {data.spec!r}: expected an integer from 1 to {n}"
        )
    rng = np.random.default_rng(seed)
    chosen = np.sort(rng.choice(n, size=int(subset), replace=False)).astype(np.int64)
    return SubsetData(data, chosen)


def load_dataset(spec: str, subset: int | None = None, seed: int = 0) -> ImageData:
    """Load the dataset named by ``spec`` (``prefix`` or ``prefix:ARG``, see module docstring).

    ``subset=N`` keeps a seeded random sample of N images (``seed`` only affects that sample).
    The result's ``spec`` reloads the same full data (paths are made absolute).
    """
    if not isinstance(spec, str) or not spec:
        raise ConfigError(
            f"dataset spec {spec!r}: expected one of {', '.join(DATASETS.names())} "
            "(with ':PATH' where needed)"
        )
    prefix, _, arg = spec.partition(":")
    data = DATASETS.get(prefix)(arg)
    return data if subset is None else take_subset(data, subset, seed)


def factor_classes(data: ImageData) -> np.ndarray | None:
    """int64 (N, K) class index of every factor value, or None when ``data`` has no factors.

    Uses ``data.factor_classes`` when the dataset provides it (dSprites), otherwise ranks each
    factor column's distinct values (0 for the smallest).
    """
    classes = getattr(data, "factor_classes", None)
    if classes is not None:
        return np.asarray(classes, dtype=np.int64)
    if data.factors is None:
        return None
    if data.factors.shape[1] == 0:
        return np.zeros((len(data.factors), 0), dtype=np.int64)
    columns = [np.unique(col, return_inverse=True)[1].reshape(-1) for col in data.factors.T]
    return np.stack(columns, axis=1).astype(np.int64)
