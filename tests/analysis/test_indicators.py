"""Per-factor indicators from the closed-form q* (MATH.md §1-§2, known answers)."""

from __future__ import annotations

import math

import pytest
import torch
from posteriors import random_posterior

from vaetool.analysis import factor_indicators, fit_qstar
from vaetool.errors import ConfigError

F64 = torch.float64


def linear_gaussian(n: int, a: float, s: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """x ~ N(0, 1) (random), q(z|x) = N(a x, s²): I(x; z) = ½ log(1 + a²/s²) (MATH.md checks)."""
    x = torch.randn(n, 1, generator=torch.Generator().manual_seed(seed), dtype=F64)
    return a * x, torch.full((n, 1), math.log(s * s), dtype=F64)


@pytest.mark.parametrize(("a", "s"), [(1.0, 1.0), (1.5, 0.5)])  # I = 0.347 and 1.151 nats
def test_linear_gaussian_recovers_true_information(a: float, s: float) -> None:
    # q(z) = N(0, a² + s²) is a zero-mean Gaussian, so q* is exact and the only error is the
    # sampling error of the sample second moment of x: I_est − I = ½ log(1 + a²(m2 − 1)/(a²+s²))
    # ≈ a² (m2 − 1) / (2(a² + s²)), with sd(m2) = sqrt(2/N). N = 200 000 gives sd ≤ 0.0016 nats;
    # the tolerance is 5 sd. A wrong formula (e.g. a missing ½ or a log σ instead of log σ²) is
    # off by ≥ 0.17 nats.
    n = 200_000
    mu, logvar = linear_gaussian(n, a, s, seed=10)
    ind = factor_indicators(fit_qstar(mu, logvar))
    true_mi = 0.5 * math.log1p(a * a / (s * s))
    sd = a * a * math.sqrt(2.0 / n) / (2.0 * (a * a + s * s))
    assert abs(ind.mi.item() - true_mi) < 5.0 * sd
    assert ind.sum_mi == pytest.approx(ind.mi.item())
    # the aggregate variance of q* is a² + s² (the exact q(z) here), not the posterior's s²
    assert ind.aggregate_variance.item() == pytest.approx(a * a + s * s, rel=0.02)
    assert ind.mean_posterior_variance.item() == pytest.approx(s * s, rel=1e-12)


def test_ignored_factor_has_zero_information_and_rate_exactly() -> None:
    mu, logvar = linear_gaussian(1000, 1.5, 0.5, seed=11)
    mu = torch.cat([mu, torch.zeros_like(mu)], dim=1)
    logvar = torch.cat([logvar, torch.zeros_like(logvar)], dim=1)
    ind = factor_indicators(fit_qstar(mu, logvar))
    assert ind.mi[1].item() == 0.0 and ind.kl_prior[1].item() == 0.0
    assert ind.kl_agg[1].item() == 0.0 and ind.kl_qstar[1].item() == 0.0
    assert ind.mean_posterior_variance[1].item() == 1.0
    assert ind.var_posterior_mean[1].item() == 0.0
    assert ind.influential.tolist() == [True, False] and ind.active.tolist() == [True, False]


@pytest.mark.parametrize("variant", ["zero_mean", "free_mean"])
def test_indicators_match_their_definitions(variant: str) -> None:
    # Averages of per-point closed-form Gaussian KLs (paper 000 Def. 2; paper 002 Defs. 1, 3).
    mu, logvar = random_posterior(400, 5, seed=12, shift=0.8)
    q = fit_qstar(mu, logvar, variant)
    ind = factor_indicators(q)
    var = logvar.exp()
    kl_to_qstar = 0.5 * (q.s2.log() - logvar + (var + (mu - q.mean) ** 2) / q.s2 - 1.0)
    kl_to_prior = 0.5 * (mu**2 + var - 1.0 - logvar)
    torch.testing.assert_close(ind.mi, kl_to_qstar.mean(0), rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(ind.kl_prior, kl_to_prior.mean(0), rtol=1e-10, atol=1e-12)
    assert ind.total_rate == pytest.approx(float(kl_to_prior.mean(0).sum()), rel=1e-12)
    assert ind.variant == variant and ind.n == 400


@pytest.mark.parametrize("variant", ["zero_mean", "free_mean"])
@pytest.mark.parametrize("shift", [0.0, 3.0])
def test_kl_aggregate_equals_kl_qstar(variant: str, shift: float) -> None:
    # paper 002 Def. 4 (KLprior − I) and Def. 5 (KL(q* ‖ p)) agree exactly for the closed form.
    mu, logvar = random_posterior(300, 6, seed=13, shift=shift)
    ind = factor_indicators(fit_qstar(mu, logvar, variant))
    torch.testing.assert_close(ind.kl_agg, ind.kl_qstar, rtol=0, atol=1e-10)
    assert ind.kl_qstar_sum == pytest.approx(float(ind.kl_agg.sum()), abs=1e-10)


@pytest.mark.parametrize("seed", [14, 15])
def test_information_is_nonnegative(seed: int) -> None:
    mu, logvar = random_posterior(50, 8, seed=seed)
    const = torch.full((50, 1), -2.3, dtype=F64)  # constant posterior: I = 0 up to rounding
    mu, logvar = torch.cat([mu, torch.zeros_like(const)], 1), torch.cat([logvar, const], 1)
    for variant in ("zero_mean", "free_mean"):
        ind = factor_indicators(fit_qstar(mu, logvar, variant))
        assert torch.all(ind.mi >= 0.0)
        assert ind.mi[-1].item() < 1e-14


def test_free_mean_bound_is_tighter_when_means_are_shifted() -> None:
    mu, logvar = linear_gaussian(2000, 1.0, 1.0, seed=16)
    mu = mu + 2.0
    zero = factor_indicators(fit_qstar(mu, logvar, "zero_mean"))
    free = factor_indicators(fit_qstar(mu, logvar, "free_mean"))
    assert free.mi.item() < zero.mi.item() - 0.5  # ½ log(1 + 4/2) ≈ 0.55 nats looser
    assert abs(free.mi.item() - 0.5 * math.log(2.0)) < 0.05
    mu_r, logvar_r = random_posterior(200, 6, seed=17)
    free_r = factor_indicators(fit_qstar(mu_r, logvar_r, "free_mean")).mi
    assert torch.all(free_r <= factor_indicators(fit_qstar(mu_r, logvar_r)).mi + 1e-15)


def test_flags_follow_thresholds() -> None:
    # Factors: I ≈ 1.15 (var mu 2.25), I ≈ 0.35 (var mu 1), I = 0 (var mu 0.005), I = 0 (none).
    gen = torch.Generator().manual_seed(18)
    x = torch.randn(20_000, 1, generator=gen, dtype=F64)
    small = 0.005**0.5 * torch.randn(20_000, 1, generator=gen, dtype=F64)
    mu = torch.cat([1.5 * x, x, small, torch.zeros_like(x)], dim=1)
    logvar = torch.log(torch.tensor([0.25, 1.0, 1.0, 1.0], dtype=F64)).expand(20_000, 4)
    q = fit_qstar(mu, logvar)
    ind = factor_indicators(q)
    assert ind.influential.tolist() == [True, False, False, False]
    assert ind.active.tolist() == [True, True, False, False]
    assert (ind.n_influential, ind.n_active) == (1, 2)
    loose = factor_indicators(q, influential_threshold=0.3, active_threshold=0.001)
    assert loose.influential.tolist() == [True, True, False, False]
    assert loose.active.tolist() == [True, True, True, False]
    assert loose.influential.dtype == torch.bool and loose.influential_threshold == 0.3


def test_negative_threshold_is_config_error() -> None:
    q = fit_qstar(*random_posterior(10, 2, seed=19))
    with pytest.raises(ConfigError, match=r"threshold -1.*expected >= 0 nats"):
        factor_indicators(q, influential_threshold=-1.0)
    with pytest.raises(ConfigError, match=r"active threshold -0\.1"):
        factor_indicators(q, active_threshold=-0.1)
