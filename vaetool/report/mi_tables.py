"""The `mi rank` outputs: the per-factor ranking table and the summary, as pandas/dicts."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from vaetool.analysis.ranking import Ranking

NATS_PER_BIT = math.log(2.0)


def ranking_frame(ranking: Ranking, bits: bool = False) -> pd.DataFrame:
    """One row per factor, most informative first.

    Columns: rank (1-based), factor (0-based index), mi (I_h, nats), mi_bits (with ``bits``),
    share_pct and cumulative_pct of Σ I_h, mi_qstar / mi_mixture (estimator "both"), kl_prior,
    kl_agg, mean_posterior_variance, var_posterior_mean, influential, active.
    """
    ind, order = ranking.indicators, ranking.order
    mi = ranking.mi[order].double()
    total = float(ranking.mi.sum())
    share = 100.0 * mi / total if total > 0 else mi * 0.0
    columns: dict[str, Any] = {
        "rank": range(1, len(order) + 1),
        "factor": order.tolist(),
        "mi": mi.tolist(),
    }
    if bits:
        columns["mi_bits"] = (mi / NATS_PER_BIT).tolist()
    columns["share_pct"] = share.tolist()
    columns["cumulative_pct"] = share.cumsum(0).tolist()
    if ranking.estimator == "both" and ranking.mixture is not None:
        columns["mi_qstar"] = ind.mi.cpu()[order].tolist()
        columns["mi_mixture"] = ranking.mixture.mi.cpu()[order].tolist()
    for name in ("kl_prior", "kl_agg", "mean_posterior_variance", "var_posterior_mean"):
        columns[name] = getattr(ind, name).cpu()[order].tolist()
    columns["influential"] = ranking.influential[order].tolist()
    columns["active"] = ind.active.cpu()[order].tolist()
    return pd.DataFrame(columns)


def ranking_summary(ranking: Ranking, **context: Any) -> dict[str, Any]:
    """Totals in nats: total_mi (Σ I_h of the ranking estimator), total_rate (Σ KLprior_h),
    kl_aggregate (KL(q(z) ‖ p(z)): Σ KLagg_h for q*, total_rate − I(x; z) for the mixture),
    counts, N, H, estimator and ``context`` (data, split, checkpoint ...)."""
    ind = ranking.indicators
    summary: dict[str, Any] = dict(context)
    summary.update(
        estimator=ranking.estimator,
        qstar_variant=ind.variant,
        total_mi=ranking.total_mi,
        total_mi_bits=ranking.total_mi / NATS_PER_BIT,
        total_rate=ind.total_rate,
        kl_aggregate=ind.kl_agg_total,
        kl_aggregate_method="sum of per-factor KLagg_h (factorized q*)",
        n_influential=int(ranking.influential.sum()),
        influential_threshold_nats=ranking.threshold,
        n_active=ind.n_active,
        n=ind.n,
        latents=len(ranking.order),
    )
    mix = ranking.mixture
    if mix is not None:
        summary.update(
            mixture_mi_joint=mix.mi_joint,
            mixture_mi_joint_stderr=mix.mi_joint_stderr,
            mixture_tc=mix.tc,
            mixture_tc_stderr=mix.tc_stderr,
            mixture_log_n_cap=mix.log_n_cap,
            mixture_near_cap=bool(mix.near_cap),
            mixture_eval_points=mix.eval_points,
            mixture_samples=mix.samples,
        )
        if ranking.estimator == "mixture":
            summary["kl_aggregate"] = ind.total_rate - mix.mi_joint
            summary["kl_aggregate_method"] = "total_rate − I(x; z) (mixture, empirical data)"
    return summary
