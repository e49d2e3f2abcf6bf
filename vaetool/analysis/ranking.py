"""Ranking latent factors by the information they carry (paper 000, §"influential factors").

The q* indicators (MATH.md §1-§2) are always computed: they are O(N·H) and need only the
streamed moments. The mixture estimator (§3) is added when asked for and needs the posterior.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from vaetool.analysis.encode import Posterior
from vaetool.analysis.indicators import (
    INFLUENTIAL_THRESHOLD_NATS,
    FactorIndicators,
    factor_indicators,
)
from vaetool.analysis.mixture import MixtureEstimate, mixture_information
from vaetool.analysis.qstar import QStar
from vaetool.errors import ConfigError

ESTIMATORS = ("qstar", "mixture", "both")  # "both" ranks by q* and shows the mixture beside it


@dataclass(frozen=True)
class MixtureOptions:
    """Monte Carlo settings of the §3 estimator (S samples at M' points, seeded)."""

    samples: int = 1
    eval_points: int | None = None
    seed: int = 0


@dataclass(frozen=True, eq=False)
class Ranking:
    """Factors ordered by information.

    ``mi`` (H,) float64 nats is the ranking estimator's I_h (q* for ``qstar`` and ``both``);
    ``order`` (H,) int64 lists factor indices from most to least informative (ties keep index
    order); ``influential`` (H,) bool is ``mi > threshold``.
    """

    indicators: FactorIndicators
    mixture: MixtureEstimate | None
    estimator: str
    mi: Tensor
    order: Tensor
    influential: Tensor
    threshold: float

    @property
    def total_mi(self) -> float:
        """Σ_h I_h of the ranking estimator, nats."""
        return float(self.mi.sum())


def check_estimator(estimator: str) -> None:
    if estimator not in ESTIMATORS:
        raise ConfigError(f"--estimator {estimator!r}: expected one of {', '.join(ESTIMATORS)}")


def rank_factors(
    qstar: QStar,
    posterior: Posterior | None = None,
    *,
    estimator: str = "qstar",
    threshold: float = INFLUENTIAL_THRESHOLD_NATS,
    mixture: MixtureOptions | None = None,
) -> Ranking:
    """Rank factors by I_h from ``estimator``; ``posterior`` is required for the mixture."""
    check_estimator(estimator)
    indicators = factor_indicators(qstar, influential_threshold=threshold)
    estimate = None
    if estimator != "qstar":
        if posterior is None:
            raise ConfigError(
                f"--estimator {estimator} needs the posterior (mu, logvar), not a q* fit"
            )
        opts = mixture or MixtureOptions()
        estimate = mixture_information(
            posterior.mu,
            posterior.logvar,
            samples=opts.samples,
            eval_points=opts.eval_points,
            seed=opts.seed,
        )
    mi = (estimate.mi if estimator == "mixture" and estimate else indicators.mi).cpu()
    order = torch.sort(mi, descending=True, stable=True).indices
    return Ranking(indicators, estimate, estimator, mi, order, mi > threshold, float(threshold))
