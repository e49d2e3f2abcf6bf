"""Batches on the device: a split that fits is moved there once and sliced in place.

Only when a split is too large for the device (or its source is lazy: an image folder,
procedural dSprites) are batches produced on the CPU and copied over one at a time.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch

from vaetool.data.base import ImageData, to_unit_float
from vaetool.device import fits_on_device


class DeviceFeed:
    """Minibatches of float32 images (B, C, H, W) in [0, 1] on ``device`` for one split."""

    def __init__(
        self,
        data: ImageData,
        indices: np.ndarray,
        device: torch.device,
        part: tuple[int, int] = (0, 1),
    ) -> None:
        self.data = data
        self.device = device
        self.part = part  # (rank, ranks): under torchrun each yields rows rank::ranks of a batch
        self.indices = torch.as_tensor(np.asarray(indices), dtype=torch.long)
        pixels = data.pixels()
        self.resident: torch.Tensor | None = None
        if pixels is not None and fits_on_device(len(self) * data.bytes_per_image, device):
            # (n, C, H, W), kept in its storage dtype (uint8 for 8-bit data): one copy, once.
            self.resident = pixels[self.indices].to(device)

    def __len__(self) -> int:
        return int(self.indices.numel())

    def batches(
        self, batch_size: int, generator: torch.Generator | None = None
    ) -> Iterator[torch.Tensor]:
        """Shuffled when a (CPU) ``generator`` is given, else in split order.

        Under torchrun (``part`` = (rank, ranks)) each process gets rows rank, rank + ranks, …
        of every global batch. A shuffled batch with fewer rows than ranks is skipped on every
        rank (all must take the same steps); in split order empty parts are simply not yielded.
        """
        n = len(self)
        order = torch.randperm(n, generator=generator) if generator is not None else torch.arange(n)
        rank, ranks = self.part
        for start in range(0, n, batch_size):
            rows = order[start : start + batch_size]
            if ranks > 1:
                if generator is not None and len(rows) < ranks:
                    continue
                rows = rows[rank::ranks]
                if len(rows) == 0:
                    continue
            if self.resident is not None:
                yield to_unit_float(self.resident[rows.to(self.device)])
            else:
                picked = self.indices[rows].numpy()
                yield self.data.images(picked).to(self.device, non_blocking=True)

    def stacked_batches(
        self, batch_size: int, generators: list[torch.Generator]
    ) -> Iterator[torch.Tensor]:
        """K shuffled orders at once (model k's from ``generators[k]``, as :meth:`batches`
        draws it): minibatches (K, B, C, H, W), one gather per step."""
        n = len(self)
        order = torch.stack([torch.randperm(n, generator=g) for g in generators])  # (K, n)
        k = order.shape[0]
        for start in range(0, n, batch_size):
            rows = order[:, start : start + batch_size]  # (K, B)
            if self.resident is not None:
                yield to_unit_float(self.resident[rows.to(self.device)])
                continue
            flat = self.indices[rows.reshape(-1)].numpy()
            images = self.data.images(flat).to(self.device, non_blocking=True)
            yield images.reshape(k, -1, *images.shape[1:])

    def num_batches(self, batch_size: int) -> int:
        return -(-len(self) // batch_size)
