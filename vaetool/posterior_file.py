"""Foreign models: posterior statistics from a file, so any framework's VAE can be ranked.

A posterior file is a ``.safetensors`` or ``.npz`` file holding two float arrays of shape (N, H):
``mu`` (posterior means) and ``logvar`` (natural-log posterior variances). See docs/foreign.md.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError, safe_open

from vaetool.analysis.encode import Posterior
from vaetool.errors import DataError

REQUIRED = ("mu", "logvar")


def is_posterior_file(path: Path) -> bool:
    """True for an .npz, or a .safetensors holding ``mu`` and ``logvar`` and no vaetool model."""
    if path.suffix == ".npz":
        return True
    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
            return "vaetool" not in metadata and set(REQUIRED) <= set(handle.keys())
    except (SafetensorError, OSError, ValueError):
        return False


def load_posterior_file(path: str | Path, device: torch.device | str = "cpu") -> Posterior:
    """Read ``mu`` and ``logvar`` (N, H) from ``path`` as float32 on ``device``; validated."""
    target = Path(path)
    if not target.is_file():
        raise DataError(f"{target}: no such posterior file; expected .safetensors or .npz")
    arrays = _read_npz(target) if target.suffix == ".npz" else _read_safetensors(target)
    tensors = {k: torch.as_tensor(v).to(device, torch.float32) for k, v in arrays.items()}
    try:
        return Posterior(tensors["mu"], tensors["logvar"])
    except DataError as err:
        raise DataError(f"{target}: {err}") from None


def _read_npz(path: Path) -> dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as npz:
            missing = [k for k in REQUIRED if k not in npz.files]
            if missing:
                raise DataError(
                    f"{path}: no array {missing[0]!r} (has {', '.join(npz.files) or 'none'}); "
                    "expected arrays 'mu' and 'logvar' of shape (N, H)"
                )
            arrays = {k: npz[k] for k in REQUIRED}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as err:
        raise DataError(f"{path}: not a readable .npz file ({err})") from None
    for key, array in arrays.items():
        if not np.issubdtype(array.dtype, np.floating):
            raise DataError(f"{path}: array {key!r} has dtype {array.dtype}; expected float")
    return arrays


def _read_safetensors(path: Path) -> dict[str, torch.Tensor]:
    try:
        with safe_open(str(path), framework="pt") as handle:
            keys = set(handle.keys())
            missing = [k for k in REQUIRED if k not in keys]
            if missing:
                raise DataError(
                    f"{path}: no tensor {missing[0]!r} (has {', '.join(sorted(keys)) or 'none'}); "
                    "expected tensors 'mu' and 'logvar' of shape (N, H)"
                )
            return {k: handle.get_tensor(k) for k in REQUIRED}
    except (SafetensorError, OSError, ValueError, RuntimeError) as err:
        raise DataError(f"{path}: not a readable safetensors file ({err})") from None
