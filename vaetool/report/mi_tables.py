"""The `mi rank` outputs: the per-factor ranking table and the summary, as pandas/dicts.

Every label here claims only what holds (MATH.md §1-§3): Σ_h I_h is an upper bound on I(x; z),
Σ_h KLqstar_h is the factorised KL(q*(z) ‖ p(z)), and a mixture estimate near log N is flagged.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd
import torch

from vaetool.analysis.mixture import CAP_WARN_RATIO
from vaetool.analysis.ranking import Ranking
from vaetool.models.latents import equicorrelated_kl_constant

NATS_PER_BIT = math.log(2.0)

# Column -> header in table mode (every --format other than table keeps the column names).
TABLE_HEADERS = {
    "mi": "I_h [nats]",
    "mi_bits": "I_h [bits]",
    "mi_stderr": "± s.e.",
    "mi_near_cap": "near log N",
    "mi_qstar": "I_h ≤ (q*)",
    "mi_mixture": "I_h (mixture)",
    "mi_mixture_stderr": "± s.e. (mixture)",
    "mi_vmi": "I_h ≥ (vmi)",
    "mi_vmi_stderr": "± s.e. (vmi)",
    "share_pct": "share %",
    "cumulative_pct": "cum. %",
    "kl_prior": "KLprior",
    "kl_agg": "KLagg",
    "aggregate_variance": "s² (agg.)",
    "posterior_variance": "mean σ²",
    "var_mu": "Var μ",
    "influential": "influential",
    "active": "active",
}

# Summary key -> label, in display order (table mode, the HTML report).
SUMMARY_LABELS = {
    "sum_mi": "Σ_h I_h [nats] (≥ I(x; z): an upper bound)",
    "total_rate": "rate E KL(q(z|x) ‖ p(z)) = Σ_h KLprior_h [nats]",
    "kl_qstar_factorised": "Σ_h KL(q*(z_h) ‖ p(z_h)) [nats] (factorised q*, omits TC)",
    "kl_dimensionwise": "Σ_h KL(q(z_h) ‖ p(z_h)) [nats] (mixture, omits TC)",
    "kl_aggregate": "KL(q(z) ‖ p(z)) = rate − I(x; z) [nats] (mixture)",
    "c_rho": "c_ρ = −½ log det Σ_ρ [nats] (correlated noise: add it to the rate and Σ_h I_h)",
    "n_influential": "influential factors",
    "n_active": "active units (Var μ > 0.01)",
    "n_normal_variance": "normal-variance factors (|s²_h − 1| ≤ 0.1; paper 002 Fig. 5b)",
    "normalised_variance": "normalised variance β·σ² (paper 002 §7.2.1)",
    "evlb": "EVLB: β = 1 ELBO at the model's noise, validation split [nats/image]",
    "evlb_normalised": "EVLB at σ² = β·σ² (paper 002 Fig. 4) [nats/image]",
    "n": "points N",
    "latents": "factors H",
    "estimator": "ranked by",
    "qstar_variant": "q* variant",
    "mixture_mi_joint": "mixture: I(x; z) [nats]",
    "mixture_mi_joint_stderr": "mixture: I(x; z) s.e. [nats]",
    "mixture_cap_ratio": "mixture: I(x; z) / log N",
    "mixture_tc": "mixture: TC(z) = Σ_h I(x; z_h) − I(x; z) [nats]",
    "mixture_tc_stderr": "mixture: TC s.e. [nats]",
    "mixture_eval_points": "mixture: evaluation points M'",
    "mixture_samples": "mixture: samples per point S",
    "vmi_joint": "VMI: I(z; x) ≥ [nats] (paper 001, factorised Q)",
    "vmi_joint_stderr": "VMI: I(z; x) bound s.e. [nats]",
    "vmi_subset_mi": "VMI: I(z_S; x) ≥ [nats] for S = --vmi-subset",
    "vmi_subset_stderr": "VMI: I(z_S; x) bound s.e. [nats]",
    "vmi_pairs": "VMI: fresh (z, x) pairs",
    "bracket_crossings": "factors whose lower bound exceeds an upper one (> 3 s.e.)",
    "code_categories": "categorical code: K classes",
    "code_mi": "code: I(x; c) = H(π̄) − E H(π) [nats] (exact on these points)",
    "code_kl_prior": "code: E KL(q(c|x) ‖ U_K) [nats] (training KL, ≥ I(x; c))",
    "code_vmi": "code: I(c; x) ≥ [nats] (VMI, paper 001)",
    "code_vmi_stderr": "code: VMI bound s.e. [nats]",
    "code_cap": "code: log K [nats] (the most a K-class code carries)",
}
BRACKET_SE = 3.0  # a lower bound above an upper one by more than this many s.e. is a crossing


def ranking_frame(ranking: Ranking, bits: bool = False) -> pd.DataFrame:
    """One row per factor, most informative first (columns: docs/mi.md).

    ``mi`` (and ``mi_stderr``, ``mi_near_cap`` when the ranking estimator has them) is the
    ranking estimator's I_h in nats; each other estimator adds ``mi_<name>`` (and
    ``mi_<name>_stderr``); ``kl_agg`` = KLprior_h − the ranking estimator's I_h.
    """
    ind, order, primary = ranking.indicators, ranking.order, ranking.primary
    mi = ranking.mi[order].double()
    total = float(ranking.mi.sum())
    share = 100.0 * mi / total if total > 0 else mi * 0.0
    columns: dict[str, Any] = {"rank": range(1, len(order) + 1), "factor": order.tolist()}
    columns["mi"] = mi.tolist()
    if bits:
        columns["mi_bits"] = (mi / NATS_PER_BIT).tolist()
    _add(columns, "mi_stderr", primary.mi_stderr, order)
    _add(columns, "mi_near_cap", primary.mi_near_cap, order)
    columns["share_pct"] = share.tolist()
    columns["cumulative_pct"] = share.cumsum(0).tolist()
    for other in ranking.estimates[1:]:
        _add(columns, f"mi_{other.name}", other.mi, order)
        _add(columns, f"mi_{other.name}_stderr", other.mi_stderr, order)
    columns["kl_prior"] = ind.kl_prior.cpu()[order].tolist()
    columns["kl_agg"] = ranking.kl_agg[order].tolist()
    columns["aggregate_variance"] = ind.aggregate_variance.cpu()[order].tolist()
    columns["posterior_variance"] = ind.mean_posterior_variance.cpu()[order].tolist()
    columns["var_mu"] = ind.var_posterior_mean.cpu()[order].tolist()
    columns["influential"] = ranking.influential[order].tolist()
    columns["active"] = ind.active.cpu()[order].tolist()
    columns["normal_variance"] = ind.normal.cpu()[order].tolist()
    frame = pd.DataFrame(columns)
    return frame if ranking.code is None else _with_code_row(frame, ranking)


def _code_value(ranking: Ranking, name: str) -> tuple[float, float]:
    """(I, s.e.) of the categorical code for estimator ``name`` (NaN where it has none)."""
    code = ranking.code
    assert code is not None
    if name == "vmi":
        lower = code.lower if code.lower is not None else math.nan
        return lower, code.lower_stderr if code.lower_stderr is not None else math.nan
    return code.mi, 0.0  # exact on these points: q* and the mixture agree (MATH.md §12)


def _with_code_row(frame: pd.DataFrame, ranking: Ranking) -> pd.DataFrame:
    """The code as one more row, ``factor`` = "c", placed by the ranking estimator's value;
    the Gaussian-only columns (variances, shares) are empty for it."""
    code = ranking.code
    assert code is not None
    mi, stderr = _code_value(ranking, ranking.estimator)
    row: dict[str, Any] = {column: math.nan for column in frame.columns}
    row.update(factor="c", mi=mi, kl_prior=code.kl_prior, kl_agg=code.kl_prior - mi)
    row.update(influential=bool(mi > ranking.threshold), active=None, normal_variance=None)
    if "mi_bits" in frame:
        row["mi_bits"] = mi / NATS_PER_BIT
    if "mi_stderr" in frame:
        row["mi_stderr"] = stderr
    for other in ranking.estimates[1:]:
        value, other_se = _code_value(ranking, other.name)
        row[f"mi_{other.name}"] = value
        if f"mi_{other.name}_stderr" in frame:
            row[f"mi_{other.name}_stderr"] = other_se
    position = int((frame["mi"] > mi).sum()) if not math.isnan(mi) else len(frame)
    out = pd.concat([frame.iloc[:position], pd.DataFrame([row]), frame.iloc[position:]])
    out["rank"] = range(1, len(out) + 1)
    return out.astype({"factor": object}).reset_index(drop=True)


def _add(columns: dict[str, Any], name: str, values: torch.Tensor | None, order: Any) -> None:
    if values is not None:
        columns[name] = values.cpu()[order].tolist()


def ranking_summary(ranking: Ranking, **context: Any) -> dict[str, Any]:
    """Totals (nats), counts and flags of a ranking, JSON-ready; ``context`` (source, data,
    split, qstar_from …) first. Keys and meanings: :data:`SUMMARY_LABELS`, docs/mi.md."""
    ind = ranking.indicators
    summary: dict[str, Any] = dict(context)
    summary.update(
        estimator=ranking.estimator,
        estimators=[e.name for e in ranking.estimates],
        qstar_variant=ind.variant,
        sum_mi=ranking.sum_mi,
        sum_mi_bits=ranking.sum_mi / NATS_PER_BIT,
        sum_mi_is=_SUM_MI_MEANING[ranking.primary.bound],
        sum_mi_bound=ranking.primary.bound,
        total_rate=ind.total_rate,
        kl_qstar_factorised=ind.kl_qstar_sum,
        n_influential=int(ranking.influential.sum()),
        influential_threshold_nats=ranking.threshold,
        n_active=ind.n_active,
        n_normal_variance=ind.n_normal,
        normal_variance_tolerance=ind.normal_tolerance,
        n=ind.n,
        latents=len(ranking.order),
    )
    if ranking.noise_corr > 0:
        summary.update(_correlated_summary(ranking))
    mixture = ranking.estimate("mixture")
    if mixture is not None and mixture.mixture is not None:
        summary.update(_mixture_summary(ranking, mixture.mi, mixture.mixture))
    vmi = ranking.estimate("vmi")
    if vmi is not None and vmi.vmi is not None:
        joint, joint_se = vmi.vmi.joint
        summary.update(vmi_joint=joint, vmi_joint_stderr=joint_se, vmi_pairs=vmi.vmi.n)
        summary.update(bracket_crossings=bracket_crossings(ranking))
    if ranking.code is not None:
        summary.update(_code_summary(ranking))
    return summary


def bracket_crossings(ranking: Ranking) -> int:
    """Factors whose VMI lower bound exceeds the q* upper bound or the mixture estimate by more
    than BRACKET_SE standard errors (MATH.md §12: the two bound different joints, so a crossing
    says the generative and encoder joints disagree, not that a number is wrong)."""
    vmi = ranking.estimate("vmi")
    if vmi is None or vmi.mi_stderr is None:
        return 0
    lower = vmi.mi - BRACKET_SE * vmi.mi_stderr
    crossed = torch.zeros_like(lower, dtype=torch.bool)
    for other in ranking.estimates:
        if other.name != "vmi":
            slack = 0.0 if other.mi_stderr is None else BRACKET_SE * other.mi_stderr
            crossed |= lower > other.mi + slack
    return int(crossed.sum())


def _code_summary(ranking: Ranking) -> dict[str, Any]:
    code = ranking.code
    assert code is not None
    out: dict[str, Any] = {"code_categories": code.categories, "code_mi": code.mi,
                           "code_kl_prior": code.kl_prior, "code_cap": code.cap}  # fmt: skip
    if code.lower is not None:
        out.update(code_vmi=code.lower, code_vmi_stderr=code.lower_stderr)
    return out


_SUM_MI_MEANING = {
    "upper": "an upper bound on I(x; z): each q* I_h bounds I(x; z_h) from above (paper 000, "
    "Cor. 1) and Σ_h I(x; z_h) − I(x; z) = TC(z) ≥ 0",
    "consistent": "Σ_h I(x; z_h) estimated consistently; at least I(x; z) since TC(z) ≥ 0",
    "lower": "a lower bound on I(z; x) of the decoder's joint p(z)p(x|z): each VMI I_h bounds "
    "I(z_h; x) from below and, the prior's z_h being independent, Σ_h I(z_h; x) ≤ I(z; x) "
    "(paper 001; MATH.md §12)",
}
SUM_MI_LOWER_LABEL = "Σ_h I_h [nats] (VMI: ≤ I(z; x) of the decoder's joint, a lower bound)"


def _correlated_summary(ranking: Ranking) -> dict[str, Any]:
    """MATH.md §10: with equicorrelated noise the per-factor I_h stand, but I(x; z) is bounded
    by Σ_h I_h + c_ρ, c_ρ = −½ log det Σ_ρ, and the rate E KL(q(z|x) ‖ p) includes c_ρ."""
    h, rho = len(ranking.order), ranking.noise_corr
    c_rho = equicorrelated_kl_constant(h, rho)
    return {
        "noise_corr": rho,
        "c_rho": c_rho,
        "sum_mi_is": (
            f"Σ_h I_h bounds Σ_h I(x; z_h) from above; q(z|x) has correlated noise (ρ = {rho:g}), "
            f"so I(x; z) ≤ Σ_h I_h + c_ρ = Σ_h I_h + {c_rho:.4g} nats (MATH.md §10)"
        ),
    }


def _mixture_summary(ranking: Ranking, mi: torch.Tensor, est: Any) -> dict[str, Any]:
    """The §3 joint quantities with their caps: near_cap from I(x; z) ≥ 0.8 log N flags the
    joint estimate and TC (then biased upward) and KL(q(z) ‖ p(z)) derived from it."""
    rate = ranking.indicators.total_rate
    return {
        "kl_dimensionwise": float((ranking.indicators.kl_prior.cpu() - mi).sum()),
        "kl_aggregate": rate - est.mi_joint,
        "mixture_mi_joint": est.mi_joint,
        "mixture_mi_joint_stderr": est.mi_joint_stderr,
        "mixture_log_n_cap": est.log_n_cap,
        "mixture_cap_ratio": est.cap_ratio,
        "mixture_near_cap": bool(est.near_cap),
        "mixture_near_cap_threshold": CAP_WARN_RATIO,
        "mixture_tc": est.tc,
        "mixture_tc_stderr": est.tc_stderr,
        "mixture_tc_biased": bool(est.tc_biased),
        "mixture_factors_near_cap": int(est.mi_near_cap.sum()),
        "mixture_eval_points": est.eval_points,
        "mixture_eval_points_requested": est.eval_points_requested,
        "mixture_shrunk": bool(est.shrunk),
        "mixture_samples": est.samples,
    }


def summary_rows(summary: dict[str, Any]) -> list[tuple[str, Any]]:
    """(label, value) pairs in display order; a joint estimate near log N and the TC and KL
    derived from it carry their flag in the value."""
    flags = {}
    if summary.get("mixture_near_cap"):
        flags = {
            "mixture_mi_joint": "near log N: understated",
            "mixture_cap_ratio": f"≥ {CAP_WARN_RATIO}",
            "mixture_tc": "biased upward (I(x; z) near log N)",
            "kl_aggregate": "biased upward (I(x; z) near log N)",
        }
    rows: list[tuple[str, Any]] = []
    for key, label in SUMMARY_LABELS.items():
        if key == "sum_mi" and summary.get("sum_mi_bound") == "lower":
            label = SUM_MI_LOWER_LABEL
        if key in summary:
            value = summary[key]
            rows.append((label, f"{value:.6g} ({flags[key]})" if key in flags else value))
    rows.append(("data", f"{summary.get('data')} [{summary.get('split')}]"))
    return rows


def summary_frame(summary: dict[str, Any]) -> pd.DataFrame:
    """:func:`summary_rows` as a two-column (quantity, value) table."""
    frame = pd.DataFrame(summary_rows(summary), columns=["quantity", "value"])
    return frame.astype({"value": object})


def summary_warnings(summary: dict[str, Any]) -> list[str]:
    """One sentence per flag the summary raises (shown under tables and in the report)."""
    lines = []
    if summary.get("mixture_near_cap"):
        lines.append(
            f"the mixture's I(x; z) is {summary['mixture_cap_ratio']:.2f} of log N "
            f"(≥ {CAP_WARN_RATIO}): N limits it, so I(x; z) is understated and TC(z) and "
            "KL(q(z) ‖ p(z)) are biased upward; use more points"
        )
    if summary.get("mixture_factors_near_cap"):
        lines.append(
            f"{summary['mixture_factors_near_cap']} factor(s) have a mixture I_h ≥ "
            f"{CAP_WARN_RATIO} log N (column near log N): understated"
        )
    if summary.get("bracket_crossings"):
        lines.append(
            f"{summary['bracket_crossings']} factor(s) have a VMI lower bound above an upper or "
            "consistent estimate: the bounds are of the decoder's joint p(z)p(x|z) and the "
            "encoder's q(z|x)p(x), which then disagree (MATH.md §12)"
        )
    if summary.get("mixture_shrunk"):
        lines.append(
            f"the mixture used {summary['mixture_eval_points']} of "
            f"{summary['mixture_eval_points_requested']} default evaluation points to fit its "
            f"time budget; I(x; z) s.e. {summary['mixture_mi_joint_stderr']:.3g} nats "
            "(pass --mc-points to choose)"
        )
    return lines
