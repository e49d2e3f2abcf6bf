"""`vaetool mi fit` and `mi rank` as typed request -> result functions (MATH.md §1-§3).

    result = vaetool.workflows.rank(RankRequest(Path("run/model.safetensors")))
    result.ranking.mi                # (H,) nats, result.frame() for the table
    vaetool.workflows.rank_posterior(mu, logvar).frame()      # (N, H) arrays, no file

A q* fit is stored beside its input as a sidecar (``mi fit``) and reused by ``rank`` when it
matches the request exactly; ``--qstar FILE`` names one, and a mismatch is then an error.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from vaetool import distributed
from vaetool.analysis.categorical import CodeAccumulator, CodeInformation
from vaetool.analysis.encode import Posterior
from vaetool.analysis.estimators import MixtureOptions, needs_model, needs_posterior
from vaetool.analysis.indicators import INFLUENTIAL_THRESHOLD_NATS
from vaetool.analysis.qstar import QSTAR_VARIANTS, QStar, QStarAccumulator
from vaetool.analysis.ranking import Ranking, check_estimators, rank_factors
from vaetool.analysis.vmi import VMIEstimate, VMIOptions, build_q, evaluate_bounds, fit_q
from vaetool.config import check_finite, check_seed
from vaetool.errors import CheckpointError, ConfigError, VaetoolWarning
from vaetool.models import VAE
from vaetool.progress import StageProgress
from vaetool.store.checkpoint import CheckpointInfo
from vaetool.store.sidecar import (
    DamagedSidecar,
    FitRecord,
    QRecord,
    load_q_sidecar,
    load_sidecar,
    q_sidecar_path,
    save_q_sidecar,
    save_sidecar,
    sidecar_path,
)
from vaetool.workflows.source import Points, Source, open_source, posterior_pass

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
    vmi: VMIOptions = field(default_factory=VMIOptions)  # the lower bound's Q (paper 001)
    vmi_refit: bool = False  # fit Q again even when a matching sidecar exists
    vmi_subset: tuple[int, ...] = ()  # also bound I(z_S; x) for these factors

    def check(self) -> None:
        """Option checks that need no file: fail before anything is loaded."""
        check_estimators(self.estimators)
        QSTAR_VARIANTS.get(self.variant)
        check_finite("‹threshold›", self.threshold)
        check_seed("‹seed›", self.mixture.seed)
        if self.mixture.samples < 1:
            raise ConfigError(f"‹mc_samples› {self.mixture.samples}: expected at least 1")
        if self.mixture.eval_points is not None and self.mixture.eval_points < 2:
            raise ConfigError(f"‹mc_points› {self.mixture.eval_points}: expected at least 2")


@dataclass(frozen=True, eq=False)
class RankResult:
    """A ranking with where it came from: ``data`` and ``split`` describe the points."""

    ranking: Ranking
    source: str
    data: str
    split: str
    qstar_from: str  # "fit", "sidecar" or "arrays"
    model_terms: dict[str, float] = field(default_factory=dict)  # paper 002's model indicators
    vmi_subset: tuple[int, ...] = ()  # factors S whose joint VMI bound the summary gives

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
        vmi = self.ranking.estimate("vmi")
        if vmi is not None and vmi.vmi is not None and self.vmi_subset:
            bound, stderr = vmi.vmi.subset(self.vmi_subset)
            summary.update(vmi_subset=list(self.vmi_subset), vmi_subset_mi=bound,
                           vmi_subset_stderr=stderr)  # fmt: skip
        return summary


def fit(
    request: FitRequest, progress: StageProgress | None = None, source: Source | None = None
) -> FitResult:
    """Fit q* in one streamed pass and write ``<stem>.qstar.safetensors`` beside the source
    (``source``: the request's file, already opened by a caller that reuses it)."""
    QSTAR_VARIANTS.get(request.variant)
    source = source or open_source(request.source, request.device)
    qstar, record, _, _ = _pass(source, request.points, request.variant, False, progress)
    path = sidecar_path(source.path)
    if distributed.is_main():  # torchrun: every rank holds the same q*; rank 0 writes it
        save_sidecar(path, qstar, record)
    return FitResult(qstar, record, path)


def _pass(
    source: Source, points: Points, variant: str, keep: bool, progress: StageProgress | None
) -> tuple[QStar, FitRecord, Posterior | None, CodeInformation | None]:
    """One encoding pass: q*, its record, the posterior when ``keep``, and a categorical
    code's information when the model has one — made once per source, points and variant (a
    pass that kept the posterior serves both kinds of caller)."""
    done = source.passes.get((points, variant))
    if done is not None and (done[2] is not None or not keep):
        return done
    accumulator = QStarAccumulator(source.latents)
    k = source.model.categories if source.model is not None else 0
    code = CodeAccumulator(k) if k else None
    posterior, n = posterior_pass(
        source, points, keep=keep, accumulator=accumulator, code=code, progress=progress
    )
    record = _record(source, points, variant, n)
    info = code.finalize() if code is not None else None
    source.passes[(points, variant)] = (accumulator.finalize(variant), record, posterior, info)
    return source.passes[(points, variant)]


def rank(
    request: RankRequest, progress: StageProgress | None = None, source: Source | None = None
) -> RankResult:
    """Rank the factors of ``request.source`` (``source``: already opened by a caller that
    reuses it): reuse a matching sidecar, else fit q* in the one pass that also keeps the
    posterior when an estimator needs it. The request is checked once, before any file."""
    request.check()
    source = source or open_source(request.source, request.device)
    if not source.is_checkpoint:
        request.points.check_for_posterior_file(source.path)
    noise_corr = source.model.latent.noise_corr if source.model is not None else 0.0
    estimators = check_estimators(request.estimators, noise_corr)
    subset = request.vmi_subset
    if subset and (len(set(subset)) != len(subset) or not all(0 <= h < source.latents
                                                              for h in subset)):  # fmt: skip
        raise ConfigError(f"‹vmi_subset› {','.join(map(str, subset))}: expected distinct factor "
                          f"indices from 0 to {source.latents - 1}")  # fmt: skip
    keep = needs_posterior(estimators)
    has_code = source.model is not None and source.model.categories > 0
    reused = _sidecar_fit(source, request)
    code = None
    made = (request.points, request.variant) in source.passes  # this process encoded it already
    if reused is not None and not keep and not has_code and not made:  # a code needs the pass
        qstar, record, posterior, origin = *reused, None, "sidecar"
    else:
        qstar, record, posterior, code = _pass(
            source, request.points, request.variant, keep, progress
        )
        origin = "fit"
    vmi = None
    if needs_model(estimators):
        vmi = vmi_bounds(source, request.vmi, refit=request.vmi_refit, progress=progress)
    ranking = rank_factors(
        qstar,
        posterior,
        estimators=estimators,
        threshold=request.threshold,
        mixture=request.mixture,
        on_progress=None if progress is None else _mixture_stage(progress),
        noise_corr=noise_corr,
        vmi=vmi,
        code=code,
    )
    terms = model_terms(source.info) if source.info is not None else {}
    return RankResult(ranking, str(source.path), record.data, record.split, origin, terms,
                      request.vmi_subset)  # fmt: skip


def vmi_bounds(
    source: Source,
    options: VMIOptions,
    *,
    refit: bool = False,
    progress: StageProgress | None = None,
) -> VMIEstimate:
    """Paper 001's lower bounds for a checkpoint (MATH.md §12): Q from the sidecar
    ``<stem>.vmi.safetensors`` when it was fitted for this file with these options (unless
    ``refit``), else fitted now (seeded, with progress) and saved there; then evaluated on
    ``options.eval_samples`` fresh pairs."""
    model, _ = source.checkpoint("‹estimator› vmi")
    if not isinstance(model, VAE):
        raise ConfigError("‹estimator› vmi samples the decoder's likelihood: it needs a vaetool "
                          "model (a checkpoint, or an imported one), not functions")  # fmt: skip
    path = q_sidecar_path(source.path)
    wanted = QRecord(source.sha256, source.path.name, options.steps, options.batch_size,
                     options.lr, options.seed, 0.0)  # fmt: skip
    q = None
    if path.is_file() and not refit:
        try:  # a damaged sidecar is fitted again, with a warning (never used)
            state, _, found = load_q_sidecar(path)
            if replace(found, last_gain=0.0) == wanted:
                q = build_q(model.config).to(source.device)
                q.load_state_dict({k: v.to(source.device) for k, v in state.items()}, strict=True)
        except (DamagedSidecar, RuntimeError) as err:
            what = err.what if isinstance(err, DamagedSidecar) else f"{path}: does not fit Q"
            warnings.warn(f"{what}; fitting Q again now", VaetoolWarning, stacklevel=2)
            q = None
    if q is None:
        stage = None if progress is None else (lambda d, t: progress("fitting Q (VMI)", d, t))
        fitted = fit_q(model, options, on_progress=stage)
        q = fitted.q
        if distributed.is_main():
            record = replace(wanted, last_gain=fitted.last_gain)
            save_q_sidecar(path, q.state_dict(), fitted.curve, record)
    return evaluate_bounds(model, q, options)


def model_terms(info: CheckpointInfo) -> dict[str, float]:
    """Paper 002's model-level indicators from a checkpoint's metadata (MATH.md §11):
    ``evlb``, the β = 1 ELBO at the model's own noise on the validation split of the kept epoch
    (history.csv's val_elbo); for a β-VAE with one Gaussian noise variance σ² (fixed, or the
    learned σ²_learnt), ``normalised_variance`` β·σ² and ``evlb_normalised``, the same bound
    with σ² replaced by β·σ² (Fig. 4's caption admits either; the SSE is recovered from the
    recon term, eq. 13)."""
    from vaetool.likelihoods import LIKELIHOODS, evlb, gaussian_sse, options_of
    from vaetool.objectives import OBJECTIVES

    out: dict[str, float] = {}
    kept = info.summary.get("kept") or {}
    if "val_elbo" in kept:
        out["evlb"] = float(kept["val_elbo"])
    noise = info.summary.get("noise", {})
    options = options_of(info.model)
    sigma2 = LIKELIHOODS.get(info.model.likelihood).variance_of(options, noise)
    beta = OBJECTIVES.get(info.train.objective).kl_weight(info.train.options)
    if sigma2 is None or beta is None:
        return out
    out["normalised_variance"] = beta * sigma2
    if {"val_recon", "val_kl"} <= set(kept) and not getattr(options, "noise_per_pixel", False):
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
    try:
        qstar, record = load_sidecar(path, device=source.device)
    except DamagedSidecar as err:  # found beside the source: fitted again, with a warning
        if named:
            raise
        warnings.warn(f"{err.what}; fitting q* again now (`vaetool mi fit` stores the fit)",
                      VaetoolWarning, stacklevel=2)  # fmt: skip
        return None
    wanted = _record(source, request.points, request.variant, record.n)
    mismatch = _mismatch(record, wanted, source.is_checkpoint)
    if mismatch is None:
        return qstar, record
    if named:
        raise CheckpointError(f"‹qstar› {path}: {mismatch}; run `vaetool mi fit` with the options")
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


def _mixture_stage(progress: StageProgress) -> Any:
    return lambda done, total: progress("mixture estimator", done, total)


def _as_tensor(array: Any) -> torch.Tensor:
    return array if isinstance(array, torch.Tensor) else torch.as_tensor(np.asarray(array))
