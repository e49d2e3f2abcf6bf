"""Comparing two groups of runs (seeds) without assuming normality: the exact Mann–Whitney
rank test and the order statistics reported beside it (MATH.md §15, "Comparing groups of seeds").

U counts the pairs (a_i, b_j) with a_i > b_j (a tie counts ½). Under the null hypothesis that
both groups come from one distribution, every arrangement of the m + n ranks is equally likely,
so U's exact distribution is the number of arrangements with each U over C(m + n, m): computed
here by the recursion on who holds the largest value, as scipy's ``method="exact"`` (whose
p-values these equal; with ties, as scipy, U is floored and no tie correction is made).
With 3 runs a side the smallest one-sided p is 1/20 = 0.05; with 5, 1/252.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache

import numpy as np

ALTERNATIVES = ("two-sided", "greater", "less")


@cache
def u_counts(m: int, n: int) -> tuple[float, ...]:
    """counts[u] = the number of arrangements of m a's and n b's with U = u, u = 0 … m·n.

    The largest value is an a (it beats all n b's: U grows by n) or a b (U unchanged)."""
    if m == 0 or n == 0:
        return (1.0,)
    with_a, with_b = u_counts(m - 1, n), u_counts(m, n - 1)
    out = np.zeros(m * n + 1)
    out[n : n + len(with_a)] += with_a
    out[: len(with_b)] += with_b
    return tuple(out.tolist())


def u_statistic(a: np.ndarray, b: np.ndarray) -> float:
    """U of ``a`` against ``b``: Σ_ij [a_i > b_j] + ½ [a_i = b_j]."""
    a, b = np.asarray(a, float)[:, None], np.asarray(b, float)[None, :]
    return float((a > b).sum() + 0.5 * (a == b).sum())


@dataclass(frozen=True)
class RankTest:
    """An exact Mann–Whitney test of ``a`` against ``b``: U of a, its p-value."""

    u: float
    p: float
    alternative: str  # "greater": a tends to exceed b


def rank_test(a: np.ndarray, b: np.ndarray, alternative: str = "two-sided") -> RankTest:
    """The exact Mann–Whitney test (scipy.stats.mannwhitneyu(a, b, method="exact"))."""
    if alternative not in ALTERNATIVES:
        raise ValueError(f"alternative {alternative!r}: expected one of {ALTERNATIVES}")
    a, b = np.asarray(a, float), np.asarray(b, float)
    if len(a) == 0 or len(b) == 0:
        raise ValueError("a rank test needs at least one value in each group")
    m, n = len(a), len(b)
    u1 = u_statistic(a, b)
    u = {"greater": u1, "less": m * n - u1, "two-sided": max(u1, m * n - u1)}[alternative]
    counts = u_counts(m, n)
    tail = sum(counts[math.floor(u) :]) / math.comb(m + n, m)  # P(U ≥ floor(u))
    factor = 2.0 if alternative == "two-sided" else 1.0
    return RankTest(u1, min(1.0, factor * tail), alternative)


@dataclass(frozen=True)
class Spread:
    """n, mean ± sample standard deviation, median and quartiles (linear interpolation)."""

    n: int
    mean: float
    sd: float
    median: float
    q1: float
    q3: float


def spread(values: np.ndarray) -> Spread:
    """The spread of ``values`` (NaN dropped); sd is NaN for a single value."""
    x = np.asarray(values, float)
    x = x[~np.isnan(x)]
    if len(x) == 0:
        nan = float("nan")
        return Spread(0, nan, nan, nan, nan, nan)
    q1, median, q3 = np.percentile(x, [25, 50, 75])
    sd = float(x.std(ddof=1)) if len(x) > 1 else float("nan")
    return Spread(len(x), float(x.mean()), sd, float(median), float(q1), float(q3))
