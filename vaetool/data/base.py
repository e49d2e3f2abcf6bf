"""What every dataset gives: float images in [0, 1] shaped (N, C, H, W), optional labels,
optional ground-truth factors, and a seeded train/val/test split.

Datasets differ in where pixels live: :class:`ArrayData` keeps them in one tensor (uint8 when the
source is 8-bit, else float32); lazy sources (an image folder, procedural dSprites) produce them
on demand in :meth:`ImageData.images`, so a large dataset never needs to sit in memory at once.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np
import torch

from vaetool.errors import ConfigError

SPLIT_NAMES = ("train", "val", "test")
DEFAULT_FRACTIONS = (0.6, 0.2, 0.2)  # paper 000 splits train/val/test as 0.6/0.2/0.2


class ImageData(ABC):
    """A dataset of N images of shape (C, H, W).

    Attributes:
        spec: the string that loads it again (``mnist5k``, ``npz:/path/x.npz`` ...).
        shape: (C, H, W).
        labels: int64 array (N,) or None.
        factors: array (N, K) of ground-truth factor values or None.
        factor_names: K names, empty when there are no factors.
    """

    spec: str
    shape: tuple[int, int, int]
    labels: np.ndarray | None = None
    factors: np.ndarray | None = None
    factor_names: tuple[str, ...] = ()

    @abstractmethod
    def __len__(self) -> int: ...

    @abstractmethod
    def images(self, indices: np.ndarray) -> torch.Tensor:
        """float32 (B, C, H, W) in [0, 1] on the CPU for the given int indices (B,)."""

    def pixels(self) -> torch.Tensor | None:
        """The whole dataset as one (N, C, H, W) tensor (uint8 or float32), or None when lazy."""
        return None

    @property
    def bytes_per_image(self) -> int:
        c, h, w = self.shape
        return c * h * w


class ArrayData(ImageData):
    """A dataset held in memory as one (N, C, H, W) tensor, uint8 (0..255) or float32 ([0, 1])."""

    def __init__(
        self,
        spec: str,
        pixels: torch.Tensor,
        labels: np.ndarray | None = None,
        factors: np.ndarray | None = None,
        factor_names: tuple[str, ...] = (),
    ) -> None:
        if pixels.dim() != 4 or pixels.dtype not in (torch.uint8, torch.float32):
            raise ValueError("pixels must be uint8 or float32 of shape (N, C, H, W)")
        self.spec = spec
        self._pixels = pixels
        self.shape = tuple(pixels.shape[1:])  # type: ignore[assignment]
        self.labels = labels
        self.factors = factors
        self.factor_names = factor_names

    def __len__(self) -> int:
        return self._pixels.shape[0]

    def images(self, indices: np.ndarray) -> torch.Tensor:
        return to_unit_float(self._pixels[torch.as_tensor(indices, dtype=torch.long)])

    def pixels(self) -> torch.Tensor:
        return self._pixels

    @property
    def bytes_per_image(self) -> int:
        return super().bytes_per_image * self._pixels.element_size()


def to_unit_float(pixels: torch.Tensor) -> torch.Tensor:
    """uint8 0..255 -> float32 [0, 1]; float tensors pass through as float32."""
    if pixels.dtype == torch.uint8:
        return pixels.to(torch.float32).div_(255.0)
    return pixels.to(torch.float32)


@dataclass(frozen=True)
class Split:
    """Index arrays (int64) into a dataset for each split name."""

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray

    def get(self, name: str) -> np.ndarray:
        if name not in SPLIT_NAMES:
            raise ConfigError(f"unknown split {name!r}; expected one of: {', '.join(SPLIT_NAMES)}")
        return getattr(self, name)


def split_indices(
    n: int, seed: int = 0, fractions: tuple[float, float, float] = DEFAULT_FRACTIONS
) -> Split:
    """A seeded random permutation of range(n) cut into train/val/test by ``fractions``.

    The same (n, seed, fractions) always gives the same split, on any machine.
    """
    if len(fractions) != 3 or any(f < 0 for f in fractions) or abs(sum(fractions) - 1) > 1e-6:
        raise ConfigError(
            f"split fractions {fractions}: expected three non-negative numbers summing to 1"
        )
    perm = np.random.default_rng(seed).permutation(n).astype(np.int64)
    n_train = round(fractions[0] * n)
    n_val = round(fractions[1] * n)
    return Split(perm[:n_train], perm[n_train : n_train + n_val], perm[n_train + n_val :])
