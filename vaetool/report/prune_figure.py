"""Paper 000, Fig. 4 as an image: test images and their reconstructions at each ratio."""

from __future__ import annotations

import numpy as np
from torch import Tensor

from vaetool.report.images import column_labels, default_scale, image_grid, png_bytes


def reconstruction_sheet_png(grid: Tensor, labels: list[str]) -> bytes:
    """``grid`` (n, 1 + R, C, H, W) as PNG bytes: rows = images, columns = the original, then
    the reconstruction keeping each row's top factors; each column's label sits above it."""
    h, w = grid.shape[-2:]
    scale = default_scale(h, w)
    montage = image_grid(np.asarray(grid), scale)
    strip = column_labels(["input", *labels], scale * w, channels=montage.shape[2])
    return png_bytes(np.concatenate([strip, montage], axis=0))
