"""Disentanglement metric arithmetic (MATH.md §8, §13): MIG equal to disentanglement_lib's
computation (written here from its source: numpy histogram + digitize, sklearn's plug-in MI) to
1e-9, and to an independent implementation from the definition; the known answers."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from vaetool.analysis.disentanglement import (
    continuous_sap_matrix,
    dci_scores,
    factor_vae_accuracy,
    factor_vae_votes,
    histogram_discretize,
    mig,
    modularity,
)

SIZES = (3, 6, 40, 32, 32)  # dSprites


def _factors(samples: int, seed: int = 0) -> np.ndarray:
    rng = np.random.RandomState(seed)
    return np.stack([rng.randint(0, n, samples) for n in SIZES])  # (K, S)


def _dlib_mig(codes: np.ndarray, factors: np.ndarray) -> float:
    """disentanglement_lib mig.py `_compute_mig` with utils.py's helpers, verbatim in numpy."""
    from sklearn.metrics import mutual_info_score

    disc = np.zeros_like(codes)
    for i in range(codes.shape[0]):
        disc[i, :] = np.digitize(codes[i, :], np.histogram(codes[i, :], 20)[1][:-1])
    m = np.array([[mutual_info_score(factors[j], disc[i]) for j in range(len(factors))]
                  for i in range(len(codes))])  # fmt: skip
    entropy = np.array([mutual_info_score(f, f) for f in factors])
    top = np.sort(m, axis=0)[::-1]
    return float(np.mean((top[0] - top[1]) / entropy))


def _definition_mig(codes: np.ndarray, factors: np.ndarray) -> float:
    """From the definition with plain Python counting: I = Σ p(a,b) log p(a,b)/(p(a)p(b))."""
    from collections import Counter

    def mi(a, b) -> float:
        n = len(a)
        pa, pb, pab = Counter(a), Counter(b), Counter(zip(a, b, strict=True))
        return sum(c / n * math.log(c * n / (pa[x] * pb[y])) for (x, y), c in pab.items())

    bins = []
    for row in codes:
        lo, hi = float(row.min()), float(row.max())
        width = (hi - lo) / 20
        bins.append([min(int((x - lo) // width) + 1, 20) if width else 1 for x in row.tolist()])
    gaps = []
    for f in factors.tolist():
        values = sorted((mi(b, f) for b in bins), reverse=True)
        gaps.append((values[0] - values[1]) / mi(f, f))
    return sum(gaps) / len(gaps)


@pytest.mark.parametrize("dtype", [pytest.param(np.float32, marks=pytest.mark.slow), np.float64])
def test_mig_equals_disentanglement_lib(dtype) -> None:
    pytest.importorskip("sklearn")
    v = _factors(3000)
    rng = np.random.RandomState(1)
    codes = np.concatenate([v[:3] + rng.randn(3, 3000), rng.randn(3, 3000),
                            np.zeros((1, 3000))]).astype(dtype)  # fmt: skip
    ours = float(mig(torch.from_numpy(codes), torch.from_numpy(v))["mig"])
    assert ours == pytest.approx(_dlib_mig(codes, v), abs=1e-9)
    assert ours == pytest.approx(_definition_mig(codes.astype(np.float64), v), abs=1e-6)
    assert 0.05 < ours < 1


def test_discretisation_is_numpys_bit_for_bit() -> None:
    rng = np.random.RandomState(2)
    codes = np.concatenate([rng.randn(3, 500), np.full((1, 500), 2.5),
                            np.linspace(0, 1, 500)[None]]).astype(np.float32)  # fmt: skip
    ours = histogram_discretize(torch.from_numpy(codes)).numpy()
    theirs = np.stack([np.digitize(r, np.histogram(r, 20)[1][:-1]) for r in codes])
    assert (ours == theirs).all() and ours.min() >= 1 and ours.max() <= 20


def test_mig_known_answers() -> None:
    v = torch.from_numpy(_factors(10_000))
    identity = mig(v.double(), v)
    gaps = identity["mig_per_factor"]
    matrix, entropy = identity["mi_matrix"], identity["entropy"]
    for k in (0, 1):  # n_k <= 20: the binned code keeps every value, I = H(v_k) exactly
        assert float(matrix[k, k]) == pytest.approx(float(entropy[k]), abs=1e-12)
        assert float(gaps[k]) > 0.99  # minus the plug-in bias of the other codes
    assert 0.78 < float(gaps[2]) < 0.84 and 0.82 < float(gaps[3]) < 0.88  # H(bin v)/H(v)
    assert float(identity["mig"]) == pytest.approx(0.8955, abs=0.01)
    flipped = mig(-3.0 * v.double() + 7.0, v)["mig"]
    assert float(flipped) == pytest.approx(float(identity["mig"]), abs=1e-12)
    assert float(mig(torch.cat([v, v]).double(), v)["mig"]) == 0.0  # duplicated: tied top two
    noise = torch.from_numpy(np.random.RandomState(3).randn(5, 10_000))
    assert float(mig(noise, v)["mig"]) < 0.005
    assert float(mig(torch.zeros(5, 10_000, dtype=torch.float64), v)["mig"]) == 0.0


@pytest.mark.parametrize(("matrix", "d", "c", "m"), [
    (5 * np.eye(5), 1.0, 1.0, 1.0),
    (np.vstack([np.eye(2), np.zeros((1, 2))]), 1.0, 1.0, 2 / 3),
    (np.vstack([np.eye(5), np.eye(5)]), 1.0, 1 - math.log(2) / math.log(10), 1.0),
    (np.hstack([np.eye(5), np.eye(5)]), 1 - math.log(2) / math.log(10), 1.0, 8 / 9),
    (np.zeros((5, 5)), 0.0, 0.0, 0.0),
])  # fmt: skip
def test_dci_and_modularity_matrix_answers(matrix, d, c, m) -> None:
    r = torch.from_numpy(matrix)
    scores = dci_scores(r)
    assert float(scores["disentanglement"]) == pytest.approx(d, abs=1e-6)
    assert float(scores["completeness"]) == pytest.approx(c, abs=1e-6)
    assert float(modularity(r)) == pytest.approx(m, abs=1e-12)


def test_continuous_sap_and_factor_vae_votes() -> None:
    v = torch.from_numpy(_factors(5000))
    s = continuous_sap_matrix(v.double(), v)
    assert torch.allclose(s.diagonal(), torch.ones(5, dtype=torch.float64))
    assert float(continuous_sap_matrix(torch.zeros(2, 5000), v).abs().max()) == 0.0
    # factor k fixed in a batch -> code k has the least variance: a perfect vote matrix
    variances = torch.ones(6, 3, dtype=torch.float64)
    fixed = torch.tensor([0, 1, 2, 0, 1, 2])
    variances[torch.arange(6), fixed] = 0.0
    votes = factor_vae_votes(variances, torch.ones(3), torch.ones(3, dtype=torch.bool), fixed, 3)
    assert votes.tolist() == [[2, 0, 0], [0, 2, 0], [0, 0, 2]]
    train, evaluation = factor_vae_accuracy(votes, votes)
    assert float(train) == float(evaluation) == 1.0
    inactive = torch.tensor([True, False, True])
    assert factor_vae_votes(variances, torch.ones(3), inactive, fixed, 3).shape == (3, 2)
