"""vaetool: what has a trained variational autoencoder learned?

``import vaetool`` is light (no torch); the heavy API is imported on first use:

    model = vaetool.load("run/model.safetensors")
    table = vaetool.rank(mu, logvar)            # factors by I(x; z_h), a DataFrame
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

__all__ = [
    "__version__", "build_report", "encode", "fit_qstar", "load", "load_dataset", "prune_table",
    "rank", "read_info", "train", "traverse",
]  # fmt: skip

_LAZY = {
    "load": ("vaetool.api", "load"),
    "read_info": ("vaetool.checkpoint", "read_info"),
    "load_dataset": ("vaetool.data", "load_dataset"),
    "train": ("vaetool.training", "train"),
    "encode": ("vaetool.analysis.encode", "encode"),
    "fit_qstar": ("vaetool.analysis.qstar", "fit_qstar"),
    "rank": ("vaetool.mi", "rank"),
    "prune_table": ("vaetool.prune", "prune_table"),  # vaetool.prune is the module
    "traverse": ("vaetool.analysis.traversal_plan", "run_traversal"),
    "build_report": ("vaetool.html_report", "build_report"),
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        return getattr(importlib.import_module(module), attr)
    raise AttributeError(f"module 'vaetool' has no attribute {name!r}")
