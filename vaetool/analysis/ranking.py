"""Ranking latent factors by the information they carry (paper 000, "influential factors").

The q* indicators (MATH.md §1-§2) are always computed: they need only the streamed moments. The
estimators named in the request (:data:`vaetool.analysis.estimators.ESTIMATORS`) each give I_h;
the first one ranks, the others are shown beside it.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, replace

from torch import Tensor

from vaetool.analysis.categorical import CodeInformation
from vaetool.analysis.encode import Posterior
from vaetool.analysis.estimators import (
    ALL_ESTIMATORS,
    ESTIMATORS,
    EstimatorInputs,
    FactorEstimate,
    MixtureOptions,
    Progress,
    stable_order,
)
from vaetool.analysis.indicators import (
    INFLUENTIAL_THRESHOLD_NATS,
    FactorIndicators,
    factor_indicators,
)
from vaetool.analysis.qstar import QStar
from vaetool.analysis.vmi import VMIEstimate
from vaetool.errors import ConfigError, VaetoolWarning

WARN_POINTS = 100  # fewer points than this: the estimates are said to be noisy


@dataclass(frozen=True, eq=False)
class Ranking:
    """Factors ordered by information.

    ``estimates``: one :class:`FactorEstimate` per requested estimator, the ranking one first.
    ``order`` (H,) int64: factor indices, most informative first (ties in index order);
    ``influential`` (H,) bool: I_h > ``threshold`` nats for the ranking estimator.
    """

    indicators: FactorIndicators
    estimates: tuple[FactorEstimate, ...]
    order: Tensor
    influential: Tensor
    threshold: float
    noise_corr: float = 0.0  # ρ of the model's correlated posterior noise (0: factorised)
    code: CodeInformation | None = None  # a categorical code's information (paper 001)

    @property
    def primary(self) -> FactorEstimate:
        return self.estimates[0]

    @property
    def estimator(self) -> str:
        return self.primary.name

    @property
    def mi(self) -> Tensor:
        """(H,) float64 nats, the ranking estimator's I_h."""
        return self.primary.mi

    @property
    def sum_mi(self) -> float:
        """Σ_h I_h of the ranking estimator, nats: at least I(x; z), since TC(z) ≥ 0."""
        return float(self.mi.sum())

    @property
    def kl_agg(self) -> Tensor:
        """KLagg_h = KLprior_h − I_h with the ranking estimator's I_h, nats (H,) float64.

        MATH.md §2, paper 002 Def. 4: E KL(q(z_h|x) ‖ p) = I(x; z_h) + KL(q(z_h) ‖ p(z_h)), so
        this estimates KL(q(z_h) ‖ p(z_h)) with whichever I_h ranks (= KLqstar_h for q*).
        """
        return self.indicators.kl_prior.cpu() - self.mi

    def estimate(self, name: str) -> FactorEstimate | None:
        return next((e for e in self.estimates if e.name == name), None)


def check_estimators(names: Sequence[str], noise_corr: float = 0.0) -> tuple[str, ...]:
    """Validated estimator names (the first ranks); ``all`` alone is every estimator that
    applies (upper q*, consistent mixture, lower VMI; the mixture not for correlated noise)."""
    if tuple(names) == ("all",):
        return tuple(
            n for n in ALL_ESTIMATORS if not (ESTIMATORS.get(n).needs_factorised and noise_corr)
        )
    if not names:
        raise ConfigError(f"‹estimator›: expected one of {', '.join(ESTIMATORS.names())}")
    if len(set(names)) != len(names):
        raise ConfigError(f"‹estimator› {','.join(names)}: an estimator is named twice")
    for name in names:
        if name not in ESTIMATORS:
            raise ConfigError(
                f"‹estimator› {name!r}: expected one of {', '.join(ESTIMATORS.names())} or all "
                "(a comma list ranks by the first and shows the others beside it)"
            )
    return tuple(names)


def rank_factors(
    qstar: QStar,
    posterior: Posterior | None = None,
    *,
    estimators: Sequence[str] = ("qstar",),
    threshold: float = INFLUENTIAL_THRESHOLD_NATS,
    mixture: MixtureOptions | None = None,
    on_progress: Progress | None = None,
    noise_corr: float = 0.0,
    vmi: VMIEstimate | None = None,
    code: CodeInformation | None = None,
) -> Ranking:
    """Rank factors by I_h from ``estimators[0]``; the others are computed beside it.

    ``posterior`` (mu, logvar) is required by estimators that need it (the mixture), ``vmi``
    (Q's bounds, fitted on the checkpoint's decoder) by the VMI estimator. ``noise_corr`` ρ > 0
    (a correlated-noise posterior, MATH.md §10) refuses estimators that need q(z|x) to
    factorise. ``code``: a categorical code's information, shown beside the factors (its VMI
    bound is added from ``vmi``).
    """
    names = check_estimators(estimators, noise_corr)
    if qstar.n < WARN_POINTS:
        warnings.warn(
            f"I_h estimated from N = {qstar.n} points (fewer than {WARN_POINTS}): the ranking "
            "is mostly noise; use more points (‹samples›, or a larger split)",
            VaetoolWarning,
            stacklevel=2,
        )
    indicators = factor_indicators(qstar, influential_threshold=threshold)
    inputs = EstimatorInputs(indicators, posterior, mixture or MixtureOptions(), vmi, on_progress)
    estimates = []
    for name in names:
        estimator = ESTIMATORS.get(name)
        if estimator.needs_posterior and posterior is None:
            raise ConfigError(f"‹estimator› {name} needs the posterior (mu, logvar), not a q* fit")
        if estimator.needs_model and vmi is None:
            raise ConfigError(f"‹estimator› {name} needs a vaetool checkpoint (it samples the "
                              "decoder), not a posterior file or arrays")  # fmt: skip
        if estimator.needs_factorised and noise_corr > 0:
            raise ConfigError(
                f"‹estimator› {name}: the model's posterior has correlated noise (ρ = "
                f"{noise_corr:g}), so q(z|x) does not factorise and its joint I(x; z) and TC "
                "(paper 003, Theorem 2) do not apply; the per-factor q* I_h do (‹estimator› qstar)"
            )
        estimates.append(estimator(inputs))
    mi = estimates[0].mi
    order, influential = stable_order(mi), mi > threshold
    if code is not None and vmi is not None and vmi.code is not None:
        code = replace(code, lower=vmi.code[0], lower_stderr=vmi.code[1])
    return Ranking(indicators, tuple(estimates), order, influential, threshold, noise_corr, code)
