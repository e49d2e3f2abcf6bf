"""Per-factor indicators of a Gaussian-encoder VAE from a closed-form q* (MATH.md §1-§2).

Every quantity is a float64 tensor of shape (H,) in nats, one entry per latent factor. Each
paper equation is one small function below; :func:`factor_indicators` assembles them.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor

from vaetool.analysis.qstar import QStar
from vaetool.errors import ConfigError, DataError

INFLUENTIAL_THRESHOLD_NATS = 0.5
ACTIVE_THRESHOLD = 0.01
NORMAL_VARIANCE_TOLERANCE = 0.1  # τ of the normal-variance count (MATH.md §11, a proposal)
QSTAR_TENSORS = ("mean", "s2", "mean_mu2", "mean_var", "mean_logvar", "var_mu")


def factor_information(s2: Tensor, mean_logvar: Tensor) -> Tensor:
    """I_h = ½ log s²_h − ½ mean_n logvar[n,h], in nats, (H,) float64.

    MATH.md §1; paper 000, Algorithm 1 line 5 (corrected form: the extracted line is garbled) and
    Definition 2; paper 002, Def. 3. It is (1/N) Σ_n KL(q(z_h|x_n) ‖ q*(z_h)) for either q*
    variant: the ½(mu² + sigma²)/s² − ½ terms cancel because s² is the closed-form optimum. An
    upper bound on I(x; z_h) (paper 000, Corollary 1); ≥ 0 by Jensen, so values below 0 can
    only be float rounding and are clamped to 0.
    """
    return (0.5 * (s2.log() - mean_logvar)).clamp_min(0.0)


def kl_prior(mean_mu2: Tensor, mean_var: Tensor, mean_logvar: Tensor) -> Tensor:
    """KLprior_h = (1/N) Σ_n ½ (mu² + sigma² − 1 − logvar), nats, (H,) float64.

    MATH.md §2; paper 002, Def. 1: E_x KL(q(z_h|x) ‖ p(z_h)) with p = N(0, 1), the β-VAE rate.
    """
    return 0.5 * (mean_mu2 + mean_var - 1.0 - mean_logvar)


def kl_aggregate(kl_prior_h: Tensor, information_h: Tensor) -> Tensor:
    """KLagg_h = KLprior_h − I_h, nats, (H,) float64.

    MATH.md §2; paper 002, Def. 4 (eq. 8): estimate of KL(q(z_h) ‖ p(z_h)); by paper 002,
    Corollary 2, a lower bound of it.
    """
    return kl_prior_h - information_h


def kl_qstar_prior(mean: Tensor, s2: Tensor) -> Tensor:
    """KLqstar_h = ½ (s²_h + m²_h − 1 − log s²_h) = KL(N(m_h, s²_h) ‖ N(0, 1)), nats, (H,).

    MATH.md §2; paper 002, Def. 5 (eq. 30). With m_h = 0 (zero-mean q*) it is ½(s² − 1 − log s²).
    With the closed-form q* it equals :func:`kl_aggregate` exactly, for both variants.
    """
    return 0.5 * (s2 + mean.square() - 1.0 - s2.log())


def normal_variance(s2: Tensor, tolerance: float = NORMAL_VARIANCE_TOLERANCE) -> Tensor:
    """bool (H,): |s²_h − 1| ≤ τ, the factors whose aggregate variance is the prior's.

    Paper 002 Fig. 5b, "the number of normal-variance factors" (undefined in the text; MATH.md
    §11 adopts this reading with τ = 0.1, i.e. KLqstar_h ≲ 0.0025 nats). Ignored factors count.
    """
    return (s2 - 1.0).abs() <= tolerance


@dataclass(frozen=True, eq=False)
class FactorIndicators:
    """Per-factor indicators, each a float64 (H,) tensor in nats unless stated (MATH.md §2).

    Fields: ``mi`` (I_h, upper bound on I(x; z_h)), ``kl_prior`` (E KL(q(z_h|x) ‖ p)),
    ``kl_agg`` (KLprior_h − I_h, Def. 4), ``kl_qstar`` (KL(q* ‖ p), Def. 5),
    ``aggregate_variance`` (s²_h of q*: paper 000 Fig. 1's σ²_{z_h}, the variance of factor h
    under the aggregate posterior), ``mean_posterior_variance`` (E_n sigma²; near 1 for an
    ignored factor),
    ``var_posterior_mean`` (Var_n mu; the active-units statistic, unitless),
    ``influential`` (bool, I_h > ``influential_threshold``), ``active`` (bool,
    Var_n mu > ``active_threshold``), ``normal`` (bool, |s²_h − 1| ≤ ``normal_tolerance``, paper
    002 Fig. 5b), plus ``variant`` of q*, ``n`` points and the thresholds.
    """

    mi: Tensor
    kl_prior: Tensor
    kl_agg: Tensor
    kl_qstar: Tensor
    aggregate_variance: Tensor
    mean_posterior_variance: Tensor
    var_posterior_mean: Tensor
    influential: Tensor
    active: Tensor
    normal: Tensor
    variant: str
    n: int
    influential_threshold: float
    active_threshold: float
    normal_tolerance: float = NORMAL_VARIANCE_TOLERANCE

    @property
    def sum_mi(self) -> float:
        """Σ_h I_h, nats (paper 000, Theorem 3 / Algorithm 1 line 8): an upper bound on I(x; z),
        since each I_h bounds I(x; z_h) (Corollary 1) and Σ_h I(x; z_h) − I(x; z) = TC ≥ 0."""
        return float(self.mi.sum())

    @property
    def total_rate(self) -> float:
        """Σ_h KLprior_h = E_x KL(q(z|x) ‖ p(z)), nats (paper 002, Def. 1)."""
        return float(self.kl_prior.sum())

    @property
    def kl_qstar_sum(self) -> float:
        """Σ_h KLqstar_h = KL(q*(z) ‖ p(z)) for the factorised q*, nats (paper 002, Def. 5).

        It compares the product of q*'s marginals with the prior, so it omits the total
        correlation: it is not KL(q(z) ‖ p(z)) of the aggregate posterior itself.
        """
        return float(self.kl_qstar.sum())

    @property
    def n_influential(self) -> int:
        return int(self.influential.sum())

    @property
    def n_active(self) -> int:
        return int(self.active.sum())

    @property
    def n_normal(self) -> int:
        """Paper 002 Fig. 5b's number of normal-variance factors (:func:`normal_variance`)."""
        return int(self.normal.sum())


def factor_indicators(
    q: QStar,
    influential_threshold: float = INFLUENTIAL_THRESHOLD_NATS,
    active_threshold: float = ACTIVE_THRESHOLD,
) -> FactorIndicators:
    """All MATH.md §1-§2 indicators from a fitted :class:`QStar` (see :func:`fit_qstar`).

    ``influential_threshold`` is in nats (the papers use 0.5 and 0.7); ``active_threshold``
    bounds Var_n mu (Burda et al.'s active units, 0.01). Both must be >= 0.
    """
    if influential_threshold < 0:
        raise ConfigError(f"‹threshold› {influential_threshold}: expected >= 0 nats")
    if active_threshold < 0:
        raise ConfigError(f"active threshold {active_threshold}: expected >= 0")
    check_qstar(q)
    mi = factor_information(q.s2, q.mean_logvar)
    rate = kl_prior(q.mean_mu2, q.mean_var, q.mean_logvar)
    return FactorIndicators(
        mi=mi,
        kl_prior=rate,
        kl_agg=kl_aggregate(rate, mi),
        kl_qstar=kl_qstar_prior(q.mean, q.s2),
        aggregate_variance=q.s2,
        mean_posterior_variance=q.mean_var,
        var_posterior_mean=q.var_mu,
        influential=mi > influential_threshold,
        active=q.var_mu > active_threshold,
        normal=normal_variance(q.s2),
        variant=q.variant,
        n=q.n,
        influential_threshold=float(influential_threshold),
        active_threshold=float(active_threshold),
    )


def check_qstar(q: QStar) -> None:
    """DataError (one line) unless every field of ``q`` is one float (H,) tensor, H >= 1, on one
    device, and N >= 2 (a q* built by hand, or read from a damaged file, is caught here, not
    deep inside the arithmetic)."""
    fields = {name: getattr(q, name) for name in QSTAR_TENSORS}
    shapes = {name: tuple(t.shape) for name, t in fields.items()}
    if len(set(shapes.values())) != 1 or len(shapes["s2"]) != 1 or shapes["s2"][0] < 1:
        shown = ", ".join(f"{name} {shape}" for name, shape in shapes.items())
        raise DataError(f"q* statistics have shapes {shown}; expected one (H,) shape, H >= 1")
    if not all(t.is_floating_point() for t in fields.values()):
        raise DataError("q* statistics must be floating-point tensors")
    if len({t.device for t in fields.values()}) != 1:
        raise DataError("q* statistics are on different devices; expected one")
    if isinstance(q.n, bool) or not isinstance(q.n, int) or q.n < 2:
        raise DataError(f"q* was fitted on N = {q.n!r} points; expected an integer >= 2")
