"""Stored codes (a foreign model's representation with its ground-truth factors): an .npz or
.safetensors holding ``mu`` (N, H) floats and ``factors`` (N, K) non-negative ints, read for
`vaetool metrics CODES` (``vaetool encode`` writes them). Nothing is unpickled; every array is
checked before use (an .npz header claiming more data than the file holds is refused before
anything is allocated), and each factor's values become classes 0..C-1 in increasing order, so
a class value of 1e15 costs nothing (the metrics need only which rows share a value).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from vaetool.data.npz import open_npz, read_array
from vaetool.errors import DataError

CODES_WHAT = "stored codes: an .npz or .safetensors with 'mu' (N, H) and 'factors' (N, K) ints"


def read_codes(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(mu float64 (N, H), factor classes int64 (N, K), each factor's 0..C-1) from CODES."""
    if path.suffix == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.numpy import load_file

        try:
            arrays = load_file(str(path))
        except (OSError, SafetensorError, TypeError, ValueError) as err:
            raise DataError(f"{path}: not readable as {CODES_WHAT} ({err})") from None
        for key in ("mu", "factors"):
            if key not in arrays:
                raise DataError(f"{path}: no tensor {key!r}; expected {CODES_WHAT}")
        mu, factors = arrays["mu"], arrays["factors"]
    else:
        with open_npz(path, CODES_WHAT) as npz:
            mu, factors = read_array(npz, path, "mu", CODES_WHAT), read_array(
                npz, path, "factors", CODES_WHAT)  # fmt: skip
    if mu.ndim != 2 or factors.ndim != 2 or len(mu) != len(factors) or len(mu) < 2:
        raise DataError(f"{path}: 'mu' {mu.shape} and 'factors' {factors.shape}; expected "
                        "(N, H) and (N, K) with the same N >= 2")  # fmt: skip
    if mu.shape[1] < 1 or factors.shape[1] < 1:
        raise DataError(f"{path}: 'mu' {mu.shape} and 'factors' {factors.shape}; expected at "
                        "least one code (H >= 1) and one factor (K >= 1)")  # fmt: skip
    if not np.issubdtype(mu.dtype, np.floating) or not np.isfinite(mu).all():
        raise DataError(f"{path}: 'mu' must hold finite floats; expected {CODES_WHAT}")
    if not np.issubdtype(factors.dtype, np.integer) or (factors < 0).any():
        raise DataError(f"{path}: 'factors' must hold non-negative integer classes "
                        f"(has dtype {factors.dtype}); expected {CODES_WHAT}")  # fmt: skip
    return mu.astype(np.float64), factor_classes(factors)


def factor_classes(factors: np.ndarray) -> np.ndarray:
    """int64 (N, K): each factor's values as classes 0..C_k-1 in increasing order of value
    (np.unique per factor: the order is kept, gaps are closed, C_k <= N whatever the values)."""
    classes = np.empty(factors.shape, dtype=np.int64)
    for k in range(factors.shape[1]):  # over factors (K columns), not over points
        classes[:, k] = np.unique(factors[:, k], return_inverse=True)[1].reshape(-1)
    return classes


def is_codes_file(path: Path) -> bool:
    """A .safetensors holding 'mu' and 'factors' (not a vaetool checkpoint)."""
    try:
        from safetensors import safe_open

        with safe_open(str(path), framework="numpy") as handle:
            keys = set(handle.keys())
    except Exception:  # not readable: let the checkpoint reader say why
        return False
    return {"mu", "factors"} <= keys
