"""The consistent mixture estimator under the empirical distribution (MATH.md §3)."""

from __future__ import annotations

import math

import pytest
import torch

from vaetool.analysis import auto_chunk_size, mixture_information
from vaetool.errors import ConfigError, DataError

F64 = torch.float64
N_GRID, SAMPLES = 1000, 8


def normal_grid(n: int) -> torch.Tensor:
    """x_n = Φ⁻¹((n + ½)/N), (N, 1): an empirical N(0, 1) without data-sampling noise."""
    return torch.special.ndtri((torch.arange(n, dtype=F64) + 0.5) / n).unsqueeze(1)


def gaussian_posterior(means: torch.Tensor, stds: list[float]) -> tuple[torch.Tensor, ...]:
    """mu = means (N, H); logvar[:, h] = log stds[h]² for every point."""
    logvar = torch.tensor([math.log(s * s) for s in stds], dtype=F64).expand_as(means)
    return means, logvar.clone()


def mc_tolerance(a: float, s: float, rows: int) -> float:
    """4 sd of the outer Monte Carlo mean plus a finite-N allowance, nats.

    For q(z|x) = N(a x, s²) the per-sample term log q(z|x) − log q(z) = ½(u² − ε²) + const with
    corr(u, ε) = ρ = s/sqrt(a² + s²), so its variance is 1 − ρ² = a²/(a² + s²). The empirical
    mixture of N = 1000 grid points with spacing ≪ s is Gaussian to far below 1e-3 nats; the grid's
    second moment (0.9987) moves I by < 1e-3 nats: 0.002 covers both.
    """
    return 4.0 * math.sqrt(a * a / (a * a + s * s) / rows) + 0.002


@pytest.mark.parametrize(("a", "s"), [(1.0, 1.0), (1.5, 0.5)])  # I = 0.347 and 1.151 nats
def test_linear_gaussian_recovers_true_information(a: float, s: float) -> None:
    mu, logvar = gaussian_posterior(a * normal_grid(N_GRID), [s])
    est = mixture_information(mu, logvar, samples=SAMPLES, seed=1)
    true_mi = 0.5 * math.log1p(a * a / (s * s))
    tol = mc_tolerance(a, s, N_GRID * SAMPLES)  # 0.034 and 0.040 nats
    assert abs(est.mi.item() - true_mi) < tol
    assert abs(est.mi_joint - true_mi) < tol
    assert est.mi_stderr.item() == pytest.approx(math.sqrt(a * a / (a * a + s * s) / 8000), rel=0.1)
    assert abs(est.tc) < 1e-9  # one factor: joint and per-factor are the same quantity
    assert (est.n, est.eval_points, est.samples) == (N_GRID, N_GRID, SAMPLES)
    assert est.mi.dtype == F64 and est.mi.shape == (1,)


def test_ignored_factor_has_zero_information() -> None:
    x = normal_grid(300)
    mu, logvar = gaussian_posterior(torch.cat([1.5 * x, torch.zeros_like(x)], 1), [0.5, 1.0])
    est = mixture_information(mu, logvar, samples=2)
    assert abs(est.mi[1].item()) < 1e-9
    assert abs(est.tc) < 5.0 * est.tc_stderr + 1e-3  # an ignored factor adds no correlation


def test_total_correlation_near_zero_for_independent_factors() -> None:
    x1 = normal_grid(N_GRID)
    x2 = x1[torch.randperm(N_GRID, generator=torch.Generator().manual_seed(2))]
    mu, logvar = gaussian_posterior(torch.cat([x1, 1.5 * x2], 1), [1.0, 0.5])
    est = mixture_information(mu, logvar, samples=4, seed=3)
    # The empirical joint of a random pairing has |sample corr| ~ 1/sqrt(N) = 0.03, which adds
    # ≲ corr²/2 ≈ 5e-4 nats of true TC; beyond that only the Monte Carlo error (5 sd) remains.
    assert abs(est.tc) < 5.0 * est.tc_stderr + 2e-3
    assert est.mi_joint == pytest.approx(float(est.mi.sum()) - est.tc, abs=1e-12)


def test_total_correlation_positive_for_dependent_factors() -> None:
    # Both factors encode the same a·x: I_h = ½ log(1 + a²/s²), I_joint = ½ log(1 + 2a²/s²).
    a, s = 1.5, 0.5
    x = normal_grid(N_GRID)
    mu, logvar = gaussian_posterior(torch.cat([a * x, a * x], 1), [s, s])
    est = mixture_information(mu, logvar, samples=4, seed=4)
    true_tc = math.log1p(a * a / (s * s)) - 0.5 * math.log1p(2 * a * a / (s * s))  # 0.83 nats
    assert est.tc > 20.0 * est.tc_stderr
    assert abs(est.tc - true_tc) < 5.0 * est.tc_stderr + 0.004
    assert abs(est.mi_joint - 0.5 * math.log1p(2 * a * a / (s * s))) < 0.05


def test_estimates_are_capped_at_log_n() -> None:
    # Posteriors far narrower than the spacing of the means: every sample identifies its point.
    n = 50
    x = normal_grid(n)
    mu, logvar = gaussian_posterior(torch.cat([x, -x], 1), [1e-3, 1e-3])
    est = mixture_information(mu, logvar, samples=4)
    assert est.log_n_cap == pytest.approx(math.log(n))
    assert torch.all(est.mi <= est.log_n_cap + 1e-9) and est.mi_joint <= est.log_n_cap + 1e-9
    assert est.mi_joint > 0.999 * est.log_n_cap and est.near_cap and est.cap_ratio > 0.999
    far = mixture_information(*gaussian_posterior(normal_grid(n), [1.0]), samples=4)
    assert not far.near_cap and far.cap_ratio < 0.5


def test_chunking_is_exact() -> None:
    gen = torch.Generator().manual_seed(5)
    mu = torch.randn(200, 3, generator=gen, dtype=F64)
    logvar = -3.0 + 3.0 * torch.rand(200, 3, generator=gen, dtype=F64)
    small = mixture_information(mu, logvar, samples=3, eval_points=150, chunk_size=7)
    large = mixture_information(mu, logvar, samples=3, eval_points=150, chunk_size=10_000)
    auto = mixture_information(mu, logvar, samples=3, eval_points=150)
    for other in (large, auto):
        torch.testing.assert_close(small.mi, other.mi, rtol=0, atol=1e-9)
        assert small.mi_joint == pytest.approx(other.mi_joint, abs=1e-9)
        assert small.tc == pytest.approx(other.tc, abs=1e-9)
    assert auto_chunk_size(200, 3, torch.device("cpu")) >= 450
    assert auto_chunk_size(10**7, 64, torch.device("cpu")) == 1


def test_seed_controls_the_draws_and_float32_input_is_accepted() -> None:
    mu, logvar = gaussian_posterior(normal_grid(100), [0.5])
    first = mixture_information(mu, logvar, eval_points=60, seed=7)
    again = mixture_information(mu.float(), logvar.float(), eval_points=60, seed=7)
    other = mixture_information(mu, logvar, eval_points=60, seed=8)
    assert first.eval_points == 60 and first.samples == 1
    assert abs(first.mi_joint - again.mi_joint) < 1e-5  # float32 input rounding only
    assert first.mi_joint != other.mi_joint


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu() -> None:
    gen = torch.Generator().manual_seed(6)
    mu = torch.randn(300, 4, generator=gen, dtype=F64)
    logvar = -2.0 + 2.0 * torch.rand(300, 4, generator=gen, dtype=F64)
    cpu = mixture_information(mu, logvar, samples=2, eval_points=200)
    gpu = mixture_information(mu.cuda(), logvar.cuda(), samples=2, eval_points=200)
    assert gpu.mi.device.type == "cuda"
    torch.testing.assert_close(gpu.mi.cpu(), cpu.mi, rtol=0, atol=1e-9)
    assert gpu.mi_joint == pytest.approx(cpu.mi_joint, abs=1e-9)


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"samples": 0}, "samples must be >= 1; got 0"),
        ({"eval_points": 1}, r"eval_points must be in \[2, N = 10\]; got 1"),
        ({"eval_points": 11}, r"eval_points must be in \[2, N = 10\]; got 11"),
        ({"chunk_size": 0}, "chunk_size must be >= 1 or None"),
    ],
)
def test_bad_options_raise_config_error(options: dict[str, int], match: str) -> None:
    mu, logvar = gaussian_posterior(normal_grid(10), [1.0])
    with pytest.raises(ConfigError, match=match):
        mixture_information(mu, logvar, **options)


def test_bad_posterior_raises_data_error() -> None:
    mu, logvar = gaussian_posterior(normal_grid(10), [1.0])
    mu[3, 0] = math.nan
    with pytest.raises(DataError, match="posterior mu has 1 NaN and 0 inf"):
        mixture_information(mu, logvar)
    with pytest.raises(DataError, match=r"shapes differ: mu \(10, 1\), logvar \(10, 2\)"):
        mixture_information(torch.zeros(10, 1), torch.zeros(10, 2))
    with pytest.raises(DataError, match="N = 1 points"):
        mixture_information(torch.zeros(1, 2), torch.zeros(1, 2))
