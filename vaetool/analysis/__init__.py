"""Which latent factors of a trained Gaussian-encoder VAE carry information (MATH.md §1-§3).

- :func:`fit_qstar`, :func:`fit_qstar_streaming`, :class:`QStarAccumulator`: closed-form q*(z).
- :func:`factor_indicators`: I_h upper bounds, KL terms, active/influential flags (§1-§2).
- :func:`mixture_information`: consistent per-factor / joint I and TC(z) under the empirical
  data distribution (§3).
"""

from vaetool.analysis.indicators import (
    ACTIVE_THRESHOLD,
    INFLUENTIAL_THRESHOLD_NATS,
    FactorIndicators,
    factor_indicators,
    factor_information,
    kl_aggregate,
    kl_prior,
    kl_qstar_prior,
)
from vaetool.analysis.mixture import MixtureEstimate, auto_chunk_size, mixture_information
from vaetool.analysis.posterior_checks import check_posterior
from vaetool.analysis.qstar import (
    QSTAR_VARIANTS,
    PosteriorMoments,
    QStar,
    QStarAccumulator,
    fit_qstar,
    fit_qstar_streaming,
)

__all__ = [
    "ACTIVE_THRESHOLD",
    "INFLUENTIAL_THRESHOLD_NATS",
    "QSTAR_VARIANTS",
    "FactorIndicators",
    "MixtureEstimate",
    "PosteriorMoments",
    "QStar",
    "QStarAccumulator",
    "auto_chunk_size",
    "check_posterior",
    "factor_indicators",
    "factor_information",
    "fit_qstar",
    "fit_qstar_streaming",
    "kl_aggregate",
    "kl_prior",
    "kl_qstar_prior",
    "mixture_information",
]
