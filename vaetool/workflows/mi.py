"""`vaetool mi fit` and `mi rank` as typed request -> result functions (MATH.md §1-§3).

    result = vaetool.workflows.rank(RankRequest(Path("run/model.safetensors")))
    result.ranking.mi                # (H,) nats, result.frame() for the table
    vaetool.workflows.rank_posterior(mu, logvar).frame()      # (N, H) arrays, no file

A q* fit is stored beside its input as a sidecar (``mi fit``) and reused by ``rank`` when it
matches the request exactly; ``--qstar FILE`` names one, and a mismatch is then an error.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from vaetool import distributed
from vaetool.analysis.encode import Posterior
from vaetool.analysis.estimators import MixtureOptions, needs_posterior
from vaetool.analysis.indicators import INFLUENTIAL_THRESHOLD_NATS
from vaetool.analysis.qstar import QSTAR_VARIANTS, QStar, QStarAccumulator
from vaetool.analysis.ranking import Ranking, check_estimators, rank_factors
from vaetool.checkpoint import CheckpointInfo
from vaetool.config import check_finite, check_seed
from vaetool.errors import CheckpointError, ConfigError
from vaetool.sidecar import FitRecord, load_sidecar, save_sidecar, sidecar_path
from vaetool.workflows.source import Points, Progress, Source, open_source, posterior_pass

if TYPE_CHECKING:
    import pandas as pd


@dataclass(frozen=True)
class FitRequest:
    """Fit q*(z) for ``source`` (a checkpoint or a posterior file) and store the sidecar."""

    source: Path
    points: Points = field(default_factory=Points)
    variant: str = "zero_mean"  # zero_mean (paper 000) or free_mean
    device: str = "auto"


@dataclass(frozen=True, eq=False)
class FitResult:
    qstar: QStar
    record: FitRecord
    sidecar: Path


@dataclass(frozen=True)
class RankRequest:
    """Rank the factors of ``source`` by I_h; ``estimators[0]`` ranks, the rest are shown."""

    source: Path
    points: Points = field(default_factory=Points)
    variant: str = "zero_mean"
    estimators: tuple[str, ...] = ("qstar",)
    threshold: float = INFLUENTIAL_THRESHOLD_NATS  # nats
    mixture: MixtureOptions = field(default_factory=MixtureOptions)
    qstar_file: Path | None = None  # a sidecar to use; must match the request
    device: str = "auto"

    def check(self) -> None:
        """Option checks that need no file: fail before anything is loaded."""
        check_estimators(self.estimators)
        QSTAR_VARIANTS.get(self.variant)
        check_finite("--threshold", self.threshold)
        check_seed("--seed", self.mixture.seed)
        if self.mixture.samples < 1:
            raise ConfigError(f"--mc-samples {self.mixture.samples}: expected at least 1")
        if self.mixture.eval_points is not None and self.mixture.eval_points < 2:
            raise ConfigError(f"--mc-points {self.mixture.eval_points}: expected at least 2")


@dataclass(frozen=True, eq=False)
class RankResult:
    """A ranking with where it came from: ``data`` and ``split`` describe the points."""

    ranking: Ranking
    source: str
    data: str
    split: str
    qstar_from: str  # "fit", "sidecar" or "arrays"
    model_terms: dict[str, float] = field(default_factory=dict)  # paper 002's model indicators

    def frame(self, bits: bool = False) -> pd.DataFrame:
        """One row per factor, most informative first (columns: docs/mi.md)."""
        from vaetool.report.mi_tables import ranking_frame

        return ranking_frame(self.ranking, bits=bits)

    def summary(self) -> dict[str, Any]:
        """Totals and flags, JSON-ready (keys: docs/mi.md)."""
        from vaetool.report.mi_tables import ranking_summary

        context = {"source": self.source, "data": self.data, "split": self.split}
        summary = ranking_summary(self.ranking, qstar_from=self.qstar_from, **context)
        summary.update(self.model_terms)
        return summary


def fit(request: FitRequest, progress: Progress | None = None) -> FitResult:
    """Fit q* in one streamed pass and write ``<stem>.qstar.safetensors`` beside the source."""
    QSTAR_VARIANTS.get(request.variant)
    source = open_source(request.source, request.device)
    return fit_saved(source, request.points, request.variant, progress)


def fit_saved(
    source: Source, points: Points, variant: str, progress: Progress | None = None
) -> FitResult:
    """q* of an opened source, written to its sidecar."""
    qstar, record, _ = fit_opened(source, points, variant, False, progress)
    path = sidecar_path(source.path)
    if distributed.is_main():  # torchrun: every rank holds the same q*; rank 0 writes it
        save_sidecar(path, qstar, record)
    return FitResult(qstar, record, path)


def fit_opened(
    source: Source, points: Points, variant: str, keep: bool, progress: Progress | None
) -> tuple[QStar, FitRecord, Posterior | None]:
    """q* of an opened source in one pass (keeping the posterior when ``keep``)."""
    accumulator = QStarAccumulator(source.latents)
    posterior, n = posterior_pass(
        source, points, keep=keep, accumulator=accumulator, progress=progress
    )
    return accumulator.finalize(variant), _record(source, points, variant, n), posterior


def rank(request: RankRequest, progress: Progress | None = None) -> RankResult:
    """Open the source, then :func:`rank_opened`."""
    request.check()
    return rank_opened(open_source(request.source, request.device), request, progress)


def rank_opened(
    source: Source, request: RankRequest, progress: Progress | None = None
) -> RankResult:
    """Rank an opened source: reuse a matching sidecar, else fit q* in the one pass that also
    keeps the posterior when an estimator needs it."""
    request.check()
    if not source.is_checkpoint:
        request.points.check_for_posterior_file(source.path)
    keep = needs_posterior(request.estimators)
    reused = _sidecar_fit(source, request)
    if reused is not None and not keep:
        qstar, record, posterior, origin = *reused, None, "sidecar"
    else:
        qstar, record, posterior = fit_opened(
            source, request.points, request.variant, keep, progress
        )
        origin = "fit"
    ranking = rank_factors(
        qstar,
        posterior,
        estimators=request.estimators,
        threshold=request.threshold,
        mixture=request.mixture,
        on_progress=None if progress is None else _mixture_stage(progress),
        noise_corr=source.info.model.noise_corr if source.info is not None else 0.0,
    )
    terms = model_terms(source.info) if source.info is not None else {}
    return RankResult(ranking, str(source.path), record.data, record.split, origin, terms)


def model_terms(info: CheckpointInfo) -> dict[str, float]:
    """Paper 002's model-level indicators from a checkpoint's metadata (MATH.md §11):
    ``evlb``, the β = 1 ELBO at the model's own noise on the validation split of the kept epoch
    (history.csv's val_elbo); for a β-VAE with one Gaussian noise variance σ² (fixed, or the
    learned σ²_learnt), ``normalised_variance`` β·σ² and ``evlb_normalised``, the same bound
    with σ² replaced by β·σ² (Fig. 4's caption admits either; the SSE is recovered from the
    recon term, eq. 13)."""
    from vaetool.likelihoods import LIKELIHOODS, evlb, gaussian_sse
    from vaetool.objectives import OBJECTIVES

    out: dict[str, float] = {}
    kept = info.summary.get("kept") or {}
    if "val_elbo" in kept:
        out["evlb"] = float(kept["val_elbo"])
    noise = info.summary.get("noise", {})
    sigma2 = LIKELIHOODS.get(info.model.likelihood).variance_of(info.model, noise)
    beta = OBJECTIVES.get(info.train.objective).kl_weight(info.train.options)
    if sigma2 is None or beta is None:
        return out
    out["normalised_variance"] = beta * sigma2
    if {"val_recon", "val_kl"} <= set(kept) and not info.model.noise_per_pixel:
        d = math.prod(info.model.image_shape)
        sse = gaussian_sse(float(kept["val_recon"]), sigma2, d)
        out["evlb_normalised"] = evlb(sse, float(kept["val_kl"]), beta * sigma2, d)
    return out


def rank_posterior(
    mu: Any,
    logvar: Any,
    *,
    estimators: tuple[str, ...] = ("qstar",),
    variant: str = "zero_mean",
    threshold: float = INFLUENTIAL_THRESHOLD_NATS,
    mixture: MixtureOptions | None = None,
) -> RankResult:
    """Rank the H factors of a posterior ``mu``, ``logvar`` (N, H), numpy or torch, any float
    dtype (kept: float64 stays float64)."""
    posterior = Posterior(_as_tensor(mu), _as_tensor(logvar))
    accumulator = QStarAccumulator(posterior.num_factors, device=posterior.mu.device)
    accumulator.update(posterior.mu, posterior.logvar)
    ranking = rank_factors(
        accumulator.finalize(variant),
        posterior,
        estimators=estimators,
        threshold=threshold,
        mixture=mixture,
    )
    return RankResult(ranking, "arrays", "arrays", "all", "arrays")


def _record(source: Source, points: Points, variant: str, n: int) -> FitRecord:
    data, split = source.describe(points)
    samples = points.resolved_samples if source.is_checkpoint else n
    return FitRecord(
        source.sha256, source.path.name, data, split, samples, variant, source.latents, n
    )


def _sidecar_fit(source: Source, request: RankRequest) -> tuple[QStar, FitRecord] | None:
    """A sidecar's q* when it matches the request; None when there is none or (found beside
    the source, not named) it does not match; an error when a named one does not match."""
    named = request.qstar_file is not None
    path = request.qstar_file if named else sidecar_path(source.path)
    assert path is not None
    if not named and not path.is_file():
        return None
    qstar, record = load_sidecar(path, device=source.device)
    wanted = _record(source, request.points, request.variant, record.n)
    mismatch = _mismatch(record, wanted, source.is_checkpoint)
    if mismatch is None:
        return qstar, record
    if named:
        raise CheckpointError(f"--qstar {path}: {mismatch}; run `vaetool mi fit` with the options")
    return None


def _mismatch(found: FitRecord, wanted: FitRecord, compare_points: bool) -> str | None:
    """What differs between a sidecar's record and the request, or None."""
    if found.latents != wanted.latents:
        return f"fitted for H = {found.latents} factors but the source has H = {wanted.latents}"
    if found.source_sha256 != wanted.source_sha256:
        return (
            f"fitted for another file ({found.source_name}, sha256 {found.source_sha256[:12]}…), "
            f"not {wanted.source_name}"
        )
    keys = ["variant"] + (["data", "split", "samples"] if compare_points else [])
    for key in keys:
        if getattr(found, key) != getattr(wanted, key):
            return (
                f"fitted with {key} = {getattr(found, key)}, the request has {getattr(wanted, key)}"
            )
    return None


def _mixture_stage(progress: Progress) -> Any:
    return lambda done, total: progress("mixture estimator", done, total)


def _as_tensor(array: Any) -> torch.Tensor:
    return array if isinstance(array, torch.Tensor) else torch.as_tensor(np.asarray(array))
