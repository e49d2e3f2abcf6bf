"""Per-factor information estimators, registered by name (MATH.md §1, §3).

Each estimator turns the always-available q* indicators (and, when it needs them, the posterior
(mu, logvar) itself) into a :class:`FactorEstimate`: I_h for every factor in nats, with what
kind of number it is. ``qstar`` is paper 000's upper bound; ``mixture`` the consistent estimate
under the empirical data distribution, with the joint I(x; z) and TC(z); ``vmi`` paper 001's
variational lower bound (MATH.md §4, §12), from a Q fitted on the model's own samples
(vaetool.analysis.vmi, fitted by the workflow that holds the model).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import torch
from torch import Tensor

from vaetool.analysis.encode import Posterior
from vaetool.analysis.indicators import FactorIndicators
from vaetool.analysis.mixture import DEFAULT_TIME_BUDGET_S, MixtureEstimate, mixture_information
from vaetool.analysis.vmi import VMIEstimate
from vaetool.progress import Progress
from vaetool.registry import Registry


@dataclass(frozen=True)
class MixtureOptions:
    """Monte Carlo settings of the §3 estimator: S samples at M' points, seeded.

    ``eval_points=None`` takes min(N, 10 000) points, shrunk to fit ``time_budget_s`` seconds
    (None: no budget); an explicit ``eval_points`` is never shrunk.
    """

    samples: int = 1
    eval_points: int | None = None
    seed: int = 0
    time_budget_s: float | None = DEFAULT_TIME_BUDGET_S


@dataclass(frozen=True, eq=False)
class FactorEstimate:
    """One estimator's per-factor information, nats.

    ``mi`` (H,) float64 on the CPU; ``mi_stderr`` (H,) its Monte Carlo standard error (None for
    a closed form); ``mi_near_cap`` (H,) bool where an estimate is limited by log N (None when no
    cap applies); ``bound``: ``"upper"`` (never below the true I(x; z_h)) or ``"consistent"``;
    ``mixture``: the full §3 result (joint I, TC, caps) when this estimator computed one;
    ``vmi``: the §12 bounds (subsets, joint, the code) when this estimator is the VMI one.
    """

    name: str
    mi: Tensor
    bound: str
    mi_stderr: Tensor | None = None
    mi_near_cap: Tensor | None = None
    mixture: MixtureEstimate | None = None
    vmi: VMIEstimate | None = None


@dataclass(frozen=True, eq=False)
class EstimatorInputs:
    """What an estimator may use: the q* indicators (always), the posterior (kept when one
    ``needs_posterior``), the mixture's options, the fitted VMI bounds (``needs_model``)."""

    indicators: FactorIndicators
    posterior: Posterior | None = None
    options: MixtureOptions = MixtureOptions()
    vmi: VMIEstimate | None = None
    on_progress: Progress | None = None


class Estimator(Protocol):
    """``needs_posterior``: whether (mu, logvar) must be kept (else the streamed q* suffices);
    ``needs_factorised``: whether it assumes q(z|x) = Π_h q(z_h|x) (paper 003, Theorem 2);
    ``needs_model``: whether it needs a checkpoint's decoder (not a posterior file)."""

    needs_posterior: bool
    needs_factorised: bool
    needs_model: bool

    def __call__(self, inputs: EstimatorInputs) -> FactorEstimate: ...


ESTIMATORS: Registry[Estimator] = Registry("estimator", "‹estimator›")


class _QStarEstimator:
    """I_h = ½ log s²_h − ½ mean logvar_h: an upper bound on I(x; z_h) (MATH.md §1; paper 000,
    Algorithm 1 and Corollary 1). Needs only the streamed q* moments."""

    needs_posterior = False
    needs_factorised = False  # per-factor marginals are the same in every family (MATH.md §10)
    needs_model = False

    def __call__(self, inputs: EstimatorInputs) -> FactorEstimate:
        return FactorEstimate("qstar", inputs.indicators.mi.cpu(), "upper")


class _MixtureEstimator:
    """I(x; z_h), I(x; z) and TC(z) under the empirical data distribution (MATH.md §3): the
    aggregate posterior is the exact N-component mixture; Monte Carlo on the outer expectation
    only. Consistent, capped at log N."""

    needs_posterior = True
    needs_factorised = True  # its joint density and TC (MATH.md §3) need q(z|x) to factorise
    needs_model = False

    def __call__(self, inputs: EstimatorInputs) -> FactorEstimate:
        posterior, options = inputs.posterior, inputs.options
        assert posterior is not None  # rank_factors checks needs_posterior
        estimate = mixture_information(
            posterior.mu,
            posterior.logvar,
            samples=options.samples,
            eval_points=options.eval_points,
            seed=options.seed,
            time_budget_s=options.time_budget_s,
            on_progress=inputs.on_progress,
        )
        return FactorEstimate(
            "mixture",
            estimate.mi.cpu(),
            "consistent",
            mi_stderr=estimate.mi_stderr.cpu(),
            mi_near_cap=estimate.mi_near_cap.cpu(),
            mixture=estimate,
        )


class _VMIEstimator:
    """I_h ≥ ½ log 2πe + E log Q(z_h | x), z ~ p(z), x ~ p_θ(x|z) sampled: paper 001's lower
    bound on the generative joint's I(z_h; x) (MATH.md §4, §12), with Monte Carlo errors."""

    needs_posterior = False
    needs_factorised = False  # it samples the prior and the decoder, not q(z|x)
    needs_model = True

    def __call__(self, inputs: EstimatorInputs) -> FactorEstimate:
        vmi = inputs.vmi
        assert vmi is not None  # rank_factors checks needs_model
        return FactorEstimate("vmi", vmi.mi, "lower", mi_stderr=vmi.mi_stderr, vmi=vmi)


ESTIMATORS.register("qstar")(_QStarEstimator())
ESTIMATORS.register("mixture")(_MixtureEstimator())
ESTIMATORS.register("vmi")(_VMIEstimator())
ALL_ESTIMATORS = ("qstar", "mixture", "vmi")  # --estimator all: upper, consistent, lower


def needs_model(names: tuple[str, ...]) -> bool:
    """Whether any of the estimators ``names`` needs the checkpoint's decoder."""
    return any(ESTIMATORS.get(name).needs_model for name in names)


def needs_posterior(names: tuple[str, ...]) -> bool:
    """Whether any of the estimators ``names`` needs the posterior kept in memory."""
    return any(ESTIMATORS.get(name).needs_posterior for name in names)


def stable_order(mi: Tensor) -> Tensor:
    """Factor indices (H,) int64, largest ``mi`` first; ties keep index order."""
    return torch.sort(mi.cpu(), descending=True, stable=True).indices
