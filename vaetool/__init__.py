"""vaetool: what has a trained variational autoencoder learned?

``import vaetool`` is light (no torch); the API is imported on first use (docs/library.md):

    result = vaetool.rank(vaetool.RankRequest(Path("run/model.safetensors")))
    result.frame()                              # factors by I(x; z_h), a DataFrame
    vaetool.rank_posterior(mu, logvar).summary()  # any model's (N, H) posterior
"""

from __future__ import annotations

from typing import Any

from vaetool._version import __version__

_WORKFLOWS = "vaetool.workflows"
_LAZY = {
    "load": ("vaetool.store.checkpoint", "load_model"),
    "read_info": ("vaetool.store.checkpoint", "read_info"),
    "load_dataset": ("vaetool.data", "load_dataset"),
    "encode": ("vaetool.analysis.encode", "encode"),
    "fit_qstar": ("vaetool.analysis.qstar", "fit_qstar"),
    "Points": (_WORKFLOWS, "Points"),
    "TrainRequest": (_WORKFLOWS, "TrainRequest"),
    "train": (_WORKFLOWS, "train_run"),
    "FitRequest": (_WORKFLOWS, "FitRequest"),
    "fit": (_WORKFLOWS, "fit"),
    "RankRequest": (_WORKFLOWS, "RankRequest"),
    "rank": (_WORKFLOWS, "rank"),
    "rank_posterior": (_WORKFLOWS, "rank_posterior"),
    "analyse": ("vaetool.workflows.analyse", "analyse"),
    "VMIOptions": ("vaetool.analysis.vmi", "VMIOptions"),
    "PruneRequest": (_WORKFLOWS, "PruneRequest"),
    "prune": (_WORKFLOWS, "prune"),
    "TraverseRequest": (_WORKFLOWS, "TraverseRequest"),
    "traverse": (_WORKFLOWS, "traverse"),
    "ReportRequest": (_WORKFLOWS, "ReportRequest"),
    "build_report": (_WORKFLOWS, "build_report"),
    "QuickstartRequest": (_WORKFLOWS, "QuickstartRequest"),
    "quickstart": (_WORKFLOWS, "quickstart"),
}
__all__ = ["__version__", *sorted(_LAZY)]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        return getattr(importlib.import_module(module), attr)
    raise AttributeError(f"module 'vaetool' has no attribute {name!r}")
