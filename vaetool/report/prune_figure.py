"""Paper 000, Fig. 4 as an image: test images and their reconstructions at each ratio."""

from __future__ import annotations

import numpy as np
from torch import Tensor

from vaetool.report.images import default_scale, labelled_block, png_bytes


def reconstruction_sheet_png(grid: Tensor, labels: list[str]) -> bytes:
    """``grid`` (n, 1 + R, C, H, W) as PNG bytes: rows = images, columns = original, then the
    reconstruction keeping each row's top factors; the strip above names the columns."""
    _, _, _, h, w = grid.shape
    caption = "columns: original | " + " | ".join(labels)
    short = "orig | " + " | ".join(labels)
    return png_bytes(labelled_block(np.asarray(grid), [caption, short], scale=default_scale(h, w)))
