"""The exact rank test and the spread reported beside it (MATH.md §15)."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from vaetool.analysis.compare import rank_test, spread, u_counts, u_statistic


@pytest.mark.parametrize(("m", "n"), [(1, 1), (2, 3), (3, 3), (4, 6), (5, 5)])
def test_u_distribution_is_the_enumeration_of_arrangements(m: int, n: int) -> None:
    """counts[u] equals a brute-force count over all C(m+n, m) rank arrangements."""
    found = np.zeros(m * n + 1)
    for a_ranks in itertools.combinations(range(m + n), m):
        b_ranks = [r for r in range(m + n) if r not in a_ranks]
        found[int(u_statistic(np.array(a_ranks), np.array(b_ranks)))] += 1
    assert np.array_equal(found, u_counts(m, n))
    assert sum(u_counts(m, n)) == math.comb(m + n, m)


def test_known_answers() -> None:
    """Three against three, fully separated: one-sided p = 1/20, two-sided 1/10; identical
    groups: p = 1."""
    high, low = np.array([3.0, 4.0, 5.0]), np.array([0.0, 1.0, 2.0])
    assert rank_test(high, low, "greater").p == pytest.approx(1 / 20)
    assert rank_test(high, low, "less").p == pytest.approx(1.0)
    assert rank_test(high, low).p == pytest.approx(1 / 10)
    assert rank_test(high, low).u == 9
    assert rank_test(low, low).p == 1.0


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("alternative", ["two-sided", "greater", "less"])
def test_equals_scipy_exact(seed: int, alternative: str) -> None:
    stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(seed)
    m, n = rng.integers(2, 8, size=2)
    a, b = rng.normal(0.5, 1, m), rng.normal(0, 1, n)
    if seed % 2:  # ties: scipy floors U and makes no correction; so does vaetool
        a, b = np.round(a), np.round(b)
    expected = stats.mannwhitneyu(a, b, alternative=alternative, method="exact")
    found = rank_test(a, b, alternative)
    assert found.u == pytest.approx(expected.statistic)
    assert found.p == pytest.approx(expected.pvalue, rel=1e-12)


def test_spread_and_bad_input() -> None:
    s = spread(np.array([1.0, 2.0, 3.0, 4.0, np.nan]))
    assert (s.n, s.mean, s.median, s.q1, s.q3) == (4, 2.5, 2.5, 1.75, 3.25)
    assert s.sd == pytest.approx(np.std([1, 2, 3, 4], ddof=1))
    assert math.isnan(spread(np.array([1.0])).sd) and spread(np.array([])).n == 0
    with pytest.raises(ValueError, match="alternative"):
        rank_test(np.ones(2), np.ones(2), "bigger")
    with pytest.raises(ValueError, match="at least one"):
        rank_test(np.ones(2), np.array([]))


def test_matched_confusion_orders_classes_by_their_label() -> None:
    """A code that relabels the digits (class k takes digit (k + 3) mod 5): after matching, row
    y is the class matched to digit y, so the matrix is diagonal; a sixth, empty class last."""
    pytest.importorskip("scipy")
    from vaetool.analysis.categorical import confusion, matched_confusion

    labels = np.repeat(np.arange(5), [4, 5, 6, 7, 8])
    codes = (labels + 2) % 5  # digit y -> class y + 2
    matched = matched_confusion(confusion(codes, labels, 6))
    assert np.array_equal(matched[:5], np.diag([4, 5, 6, 7, 8]))
    assert matched[5].sum() == 0
