"""vaetool.rank_posterior on posteriors with known answers (MATH.md, checks with known answers)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import vaetool
from vaetool.analysis import fit_qstar, fit_qstar_streaming
from vaetool.analysis.estimators import MixtureOptions
from vaetool.errors import ConfigError, DataError


def linear_gaussian(n: int, gains: list[float], s: float = 0.5, seed: int = 0):
    """x ~ N(0, 1); factor h has q(z_h|x) = N(a_h x, s²): I_h = ½ log(1 + a_h²/s²)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 1, generator=g, dtype=torch.float64)
    mu = x * torch.tensor(gains, dtype=torch.float64)
    logvar = torch.full_like(mu, 2 * math.log(s))
    return mu, logvar


def test_rank_orders_factors_and_recovers_known_information() -> None:
    gains = [0.0, 2.0, 0.5, 1.0]  # factor 0 ignores x
    mu, logvar = linear_gaussian(50_000, gains)
    result = vaetool.rank_posterior(mu, logvar)
    table = result.frame()
    assert table["factor"].tolist() == [1, 3, 2, 0]
    expected = {h: 0.5 * math.log(1 + a * a / 0.25) for h, a in enumerate(gains)}
    # q* error is the sampling error of the second moment: < 4 sd ≈ 4·a²√(2/N)/(2(a²+s²)) < 0.03
    for row in table.itertuples():
        assert row.mi == pytest.approx(expected[row.factor], abs=0.03)
    summary = result.summary()
    assert summary["sum_mi"] == pytest.approx(table["mi"].sum())
    assert "upper bound on I(x; z)" in summary["sum_mi_is"]
    assert summary["n_influential"] == 2  # I = 1.44, 0.80 nats > 0.5; 0.35 and 0 are not
    assert table["cumulative_pct"].iloc[-1] == pytest.approx(100.0)


def test_rank_mixture_estimator_agrees_with_known_answer() -> None:
    mu, logvar = linear_gaussian(2000, [1.5, 0.0])
    result = vaetool.rank_posterior(
        mu, logvar, estimators=("qstar", "mixture"), mixture=MixtureOptions(samples=4)
    )
    table = result.frame()
    top = table.iloc[0]
    # mixture: MC error √(a²/(a²+s²)/(M'S)) ≈ 0.01 at M'S = 8000, plus finite-N bias < 0.01
    assert top["mi_mixture"] == pytest.approx(0.5 * math.log(1 + 1.5**2 / 0.25), abs=0.05)
    assert abs(table.iloc[1]["mi_mixture"]) < 0.01
    assert result.summary()["mixture_tc"] == pytest.approx(0.0, abs=0.03)
    assert 0 < top["mi_mixture_stderr"] < 0.05


def test_rank_accepts_numpy_and_bits() -> None:
    mu, logvar = linear_gaussian(1000, [1.0, 0.2])
    table = vaetool.rank_posterior(mu.numpy(), logvar.numpy()).frame(bits=True)
    assert np.allclose(table["mi_bits"], table["mi"] / math.log(2))


def test_streaming_fit_equals_one_shot() -> None:
    mu, logvar = linear_gaussian(1001, [1.0, 0.3, 0.0])
    one_shot = fit_qstar(mu, logvar)
    batches = [(mu[i : i + 97], logvar[i : i + 97]) for i in range(0, 1001, 97)]
    streamed = fit_qstar_streaming(batches)
    assert torch.allclose(one_shot.s2, streamed.s2, rtol=1e-12, atol=0)
    assert torch.allclose(one_shot.mean_logvar, streamed.mean_logvar, rtol=1e-12, atol=0)


@pytest.mark.parametrize(
    ("mu", "logvar", "needle"),
    [
        (torch.full((4, 2), float("nan")), torch.zeros(4, 2), "NaN"),
        (torch.zeros(4, 2), torch.full((4, 2), float("inf")), "inf"),
        (torch.zeros(4, 2), torch.zeros(4, 3), "shapes differ"),
        (torch.zeros(1, 2), torch.zeros(1, 2), "N = 1"),
    ],
)
def test_bad_posteriors_are_rejected(mu: torch.Tensor, logvar: torch.Tensor, needle: str) -> None:
    with pytest.raises(DataError, match=needle):
        vaetool.rank_posterior(mu, logvar)


def test_mixture_ranking_carries_its_own_kl_agg_and_stderr() -> None:
    """Under --estimator mixture, kl_agg_h = KLprior_h − I_h(mixture) (MATH.md §2 with the
    ranking estimator's I_h), and Σ_h of it is the dimension-wise KL in the summary."""
    mu, logvar = linear_gaussian(1500, [1.5, 0.3, 0.0])
    result = vaetool.rank_posterior(mu, logvar, estimators=("mixture", "qstar"))
    table, summary = result.frame(), result.summary()
    assert np.allclose(table["kl_agg"], table["kl_prior"] - table["mi"], atol=1e-12)
    assert not np.allclose(table["mi"], table["mi_qstar"], atol=1e-3)  # really the mixture's
    assert summary["kl_dimensionwise"] == pytest.approx(table["kl_agg"].sum())
    assert summary["kl_aggregate"] == pytest.approx(
        summary["total_rate"] - summary["mixture_mi_joint"]
    )
    assert {"mi_stderr", "mi_near_cap", "mi_qstar"} <= set(table.columns)
    assert "Σ_h I(x; z_h) estimated consistently" in summary["sum_mi_is"]


@pytest.mark.parametrize("names", [("best",), ("qstar", "qstar"), ()])
def test_bad_estimator_lists_are_refused(names: tuple[str, ...]) -> None:
    mu, logvar = linear_gaussian(50, [1.0])
    with pytest.raises(ConfigError, match="estimator"):
        vaetool.rank_posterior(mu, logvar, estimators=names)


def test_an_opened_source_is_encoded_once(trained_run, monkeypatch) -> None:
    """rank then fit on one opened checkpoint (what quickstart and report do) make one encoding
    pass: the ranking's pass, which kept the posterior, also gives fit its q*."""
    from vaetool.workflows import FitRequest, Points, RankRequest, fit, open_source, rank
    from vaetool.workflows import mi as workflow

    calls = []
    real = workflow.posterior_pass
    monkeypatch.setattr(
        workflow, "posterior_pass", lambda *a, **k: calls.append(1) or real(*a, **k)
    )
    source = open_source(trained_run / "model.safetensors", "cpu")
    ranked = rank(RankRequest(source.path, estimators=("qstar", "mixture")), None, source)
    fitted = fit(FitRequest(source.path), None, source)
    assert len(calls) == 1
    assert source.passes[(Points(), "zero_mean")][0] is fitted.qstar  # the ranking's q*
    assert fitted.sidecar.is_file() and ranked.qstar_from == "fit"
