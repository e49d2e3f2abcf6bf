"""vaetool: what has a trained variational autoencoder learned?

``import vaetool`` is light (no torch); the heavy API is imported on first use:

    model = vaetool.load("run/model.safetensors")
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

__all__ = ["__version__", "load", "load_dataset", "read_info", "train"]

_LAZY = {
    "load": ("vaetool.api", "load"),
    "read_info": ("vaetool.checkpoint", "read_info"),
    "load_dataset": ("vaetool.data", "load_dataset"),
    "train": ("vaetool.training", "train"),
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        return getattr(importlib.import_module(module), attr)
    raise AttributeError(f"module 'vaetool' has no attribute {name!r}")
