"""Per-factor mutual information I(x; z_h): the Python API behind `vaetool mi`.

    import vaetool.mi
    table = vaetool.mi.rank(mu, logvar)              # DataFrame, most informative factor first
    table.attrs["summary"]["total_mi"]                # Σ_h I_h in nats
    ranking, summary = vaetool.mi.rank_file("run/model.safetensors")

``mu`` and ``logvar`` are (N, H) posterior means and log-variances (numpy or torch).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from vaetool.analysis.encode import Posterior
from vaetool.analysis.indicators import INFLUENTIAL_THRESHOLD_NATS
from vaetool.analysis.qstar import QSTAR_VARIANTS, QStar, QStarAccumulator
from vaetool.analysis.ranking import MixtureOptions, Ranking, check_estimator, rank_factors
from vaetool.analysis.source import Source, open_source, source_posterior
from vaetool.device import resolve_device
from vaetool.report.mi_tables import ranking_frame, ranking_summary
from vaetool.sidecar import (
    FitRecord,
    check_sidecar_matches,
    load_sidecar,
    save_sidecar,
    sidecar_path,
)

__all__ = ["FitRequest", "MixtureOptions", "fit_file", "rank", "rank_file", "rank_source"]


def rank(
    mu: Any,
    logvar: Any,
    *,
    estimator: str = "qstar",
    variant: str = "zero_mean",
    threshold: float = INFLUENTIAL_THRESHOLD_NATS,
    mixture: MixtureOptions | None = None,
    bits: bool = False,
) -> pd.DataFrame:
    """Rank the H factors of a posterior (N, H) by I_h; the summary is in ``.attrs["summary"]``.

    Columns are documented in :func:`vaetool.report.mi_tables.ranking_frame` (nats).
    """
    posterior = Posterior(_as_tensor(mu), _as_tensor(logvar))
    accumulator = QStarAccumulator(posterior.num_factors, device=posterior.mu.device)
    accumulator.update(posterior.mu, posterior.logvar)
    ranking = rank_factors(
        accumulator.finalize(variant),
        posterior,
        estimator=estimator,
        threshold=threshold,
        mixture=mixture,
    )
    frame = ranking_frame(ranking, bits=bits)
    frame.attrs["summary"] = ranking_summary(ranking)
    return frame


@dataclass(frozen=True)
class FitRequest:
    """Which points a q* fit of a checkpoint uses (ignored for a posterior file but variant)."""

    data: str | None = None  # dataset spec; None = the checkpoint's own
    split: str = "test"
    samples: int = 10_000  # as paper 000
    variant: str = "zero_mean"


Progress = Callable[[int, int], None]


def fit_file(
    path: str | Path,
    request: FitRequest = FitRequest(),
    *,
    device: str = "auto",
    on_progress: Progress | None = None,
    keep_posterior: bool = False,
) -> tuple[QStar, FitRecord, Posterior | None, Source]:
    """Fit q* for a checkpoint or posterior file in one streamed encoder pass."""
    QSTAR_VARIANTS.get(request.variant)
    source = open_source(path, resolve_device(device))
    return _fit_source(source, request, on_progress, keep_posterior)


def _fit_source(
    source: Source, request: FitRequest, on_progress: Progress | None, keep_posterior: bool
) -> tuple[QStar, FitRecord, Posterior | None, Source]:
    accumulator = QStarAccumulator(source.latents)
    posterior, data, n = source_posterior(
        source,
        data_spec=request.data,
        split=request.split,
        samples=request.samples,
        keep=keep_posterior,
        accumulator=accumulator,
        on_progress=on_progress,
    )
    split = request.split if source.is_checkpoint else "all"
    record = FitRecord(
        source.sha256,
        source.path.name,
        data,
        split,
        request.samples,
        request.variant,
        source.latents,
        n,
    )
    return accumulator.finalize(request.variant), record, posterior, source


def save_fit(qstar: QStar, record: FitRecord, source: Source) -> Path:
    return save_sidecar(sidecar_path(source.path), qstar, record)


def rank_file(
    path: str | Path,
    request: FitRequest = FitRequest(),
    *,
    estimator: str = "qstar",
    threshold: float = INFLUENTIAL_THRESHOLD_NATS,
    mixture: MixtureOptions | None = None,
    qstar_file: str | Path | None = None,
    device: str = "auto",
    on_progress: Progress | None = None,
) -> tuple[Ranking, dict[str, Any]]:
    """Rank a checkpoint's (or posterior file's) factors; reuse a matching q* sidecar."""
    check_estimator(estimator)
    QSTAR_VARIANTS.get(request.variant)
    source = open_source(path, resolve_device(device))
    return rank_source(
        source,
        request,
        estimator=estimator,
        threshold=threshold,
        mixture=mixture,
        qstar_file=qstar_file,
        on_progress=on_progress,
    )


def rank_source(
    source: Source,
    request: FitRequest = FitRequest(),
    *,
    estimator: str = "qstar",
    threshold: float = INFLUENTIAL_THRESHOLD_NATS,
    mixture: MixtureOptions | None = None,
    qstar_file: str | Path | None = None,
    on_progress: Progress | None = None,
) -> tuple[Ranking, dict[str, Any]]:
    """:func:`rank_file` for an already opened :class:`Source` (no second load or hash)."""
    check_estimator(estimator)
    qstar, record, posterior, reused = _reuse_or_fit(
        source, request, estimator, qstar_file, on_progress
    )
    ranking = rank_factors(
        qstar, posterior, estimator=estimator, threshold=threshold, mixture=mixture
    )
    context = {
        "source": str(source.path),
        "data": record.data,
        "split": record.split,
        "qstar_from": "sidecar" if reused else "fit",
    }
    return ranking, ranking_summary(ranking, **context)


def _reuse_or_fit(
    source: Source,
    request: FitRequest,
    estimator: str,
    qstar_file: str | Path | None,
    on_progress: Progress | None,
) -> tuple[QStar, FitRecord, Posterior | None, bool]:
    """A matching sidecar's q* (reused = True) or a fresh fit in one encoder pass."""
    QSTAR_VARIANTS.get(request.variant)
    needs_posterior = estimator != "qstar"
    candidate = Path(qstar_file) if qstar_file is not None else sidecar_path(source.path)
    if qstar_file is not None or (not needs_posterior and candidate.is_file()):
        qstar, record = load_sidecar(candidate, device=source.device)
        if qstar_file is not None:
            check_sidecar_matches(record, source.sha256, source.latents, candidate)
        if not needs_posterior and _matches(record, source, request):
            return qstar, record, None, True
    qstar, record, posterior, _ = _fit_source(source, request, on_progress, needs_posterior)
    return qstar, record, posterior, False


def _matches(record: FitRecord, source: Source, request: FitRequest) -> bool:
    data = request.data or (source.info.data.spec if source.info else record.data)
    same_points = not source.is_checkpoint or (
        record.data == data and record.split == request.split and record.samples == request.samples
    )
    return (
        record.source_sha256 == source.sha256
        and record.variant == request.variant
        and record.latents == source.latents
        and same_points
    )


def _as_tensor(array: Any) -> torch.Tensor:
    if isinstance(array, torch.Tensor):
        return array
    return torch.as_tensor(np.asarray(array))
