"""The consistent mixture estimator under the empirical distribution (MATH.md §3)."""

from __future__ import annotations

import math
from collections.abc import Iterator

import pytest
import torch
from posteriors import random_posterior

import vaetool.analysis.mixture as mixture_module
import vaetool.analysis.mixture_kernels as kernels
from vaetool.analysis import auto_chunk_size, mixture_information
from vaetool.analysis.mixture import CAP_WARN_RATIO, MIN_BUDGET_EVAL_POINTS
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
    # M' = N: only the within-point variance remains, E_x Var(term | x) = a²(a²/2 + s²)/(a² + s²)²
    within = a * a * (a * a / 2 + s * s) / (a * a + s * s) ** 2
    assert est.mi_stderr.item() == pytest.approx(math.sqrt(within / 8000), rel=0.1)
    assert est.mi_joint_stderr == pytest.approx(est.mi_stderr.item(), rel=1e-9)
    # one factor: the per-factor (elementwise) and joint (GEMM) paths compute the same quantity
    assert abs(est.tc) < 1e-9
    assert (est.n, est.eval_points, est.samples) == (N_GRID, N_GRID, SAMPLES)
    assert est.eval_points_requested == N_GRID and not est.shrunk
    assert est.mi.dtype == F64 and est.mi.shape == (1,)


def test_single_sample_reports_the_iid_standard_error() -> None:
    # S = 1: the within-point variance is not separable, so the i.i.d. formula over all the
    # terms is reported: sqrt(a²/(a² + s²) / M') for q(z|x) = N(a x, s²) (see mc_tolerance).
    a, s = 1.5, 0.5
    est = mixture_information(*gaussian_posterior(a * normal_grid(N_GRID), [s]), seed=2)
    assert est.mi_stderr.item() == pytest.approx(
        math.sqrt(a * a / (a * a + s * s) / N_GRID), rel=0.1
    )
    assert abs(est.mi.item() - 0.5 * math.log1p(a * a / (s * s))) < mc_tolerance(a, s, N_GRID)


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
    # Independent factors: I(x; z) = Σ_h ½ log(1 + a_h²/s_h²) = 0.347 + 1.151 nats.
    true_joint = 0.5 * math.log1p(1.0) + 0.5 * math.log1p(1.5**2 / 0.5**2)
    assert abs(est.mi_joint - true_joint) < 5.0 * est.mi_joint_stderr + 4e-3


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
    assert est.tc_biased and est.mi_near_cap.tolist() == [True, True]
    far = mixture_information(*gaussian_posterior(normal_grid(n), [1.0]), samples=4)
    assert not far.near_cap and not far.tc_biased and far.cap_ratio < 0.5
    assert far.mi_near_cap.tolist() == [False]


def test_joint_near_cap_flags_upward_biased_total_correlation() -> None:
    # Independent factors (population TC = 0), each I_h = ½ log(1 + 1/0.1²) = 2.31 nats =
    # 0.59 log N at N = 50: below the flag. Their joint would carry 4.6 nats > log N = 3.9, so the
    # 50-component mixture caps I(x; z) and Σ_h I_h − I(x; z) reads ~1 nat of spurious TC.
    n, sd = 50, 0.1
    x1 = normal_grid(n)
    x2 = x1[torch.randperm(n, generator=torch.Generator().manual_seed(2))]
    est = mixture_information(*gaussian_posterior(torch.cat([x1, x2], 1), [sd, sd]), samples=8)
    true_mi = 0.5 * math.log1p(1 / sd**2)
    assert torch.all((est.mi - true_mi).abs() < 0.05)
    torch.testing.assert_close(est.mi_cap_ratio, est.mi / math.log(n), rtol=0, atol=0)
    assert est.mi_near_cap.tolist() == [False, False] and est.mi_near_cap.dtype == torch.bool
    assert est.cap_ratio >= CAP_WARN_RATIO and est.near_cap and est.tc_biased
    assert est.tc > 10.0 * est.tc_stderr  # the bias the flag warns about


def reference_terms(
    mu: torch.Tensor, logvar: torch.Tensor, z: torch.Tensor, log_own: torch.Tensor
) -> torch.Tensor:
    """Per-row terms (rows, H + 2) of MATH.md §3 the plain way: Normal.log_prob over the whole
    (rows, N, H) block, torch.logsumexp over N; then the joint and TC columns."""
    log_q = torch.distributions.Normal(mu, (0.5 * logvar).exp()).log_prob(z.unsqueeze(1))
    log_n = math.log(mu.shape[0])
    factor = log_own - torch.logsumexp(log_q, dim=1) + log_n
    joint = log_own.sum(1) - torch.logsumexp(log_q.sum(2), dim=1) + log_n
    return torch.cat([factor, joint[:, None], (factor.sum(1) - joint)[:, None]], 1)


def test_matches_plain_logsumexp_reference() -> None:
    mu, logvar = random_posterior(60, 5, seed=8)
    m, s = 30, 3
    est = mixture_information(mu, logvar, samples=s, eval_points=m, seed=11, chunk_size=7)
    terms = reference_terms(mu, logvar, *kernels.draw_samples(mu, logvar, m, s, 11))
    means = terms.mean(0)
    torch.testing.assert_close(est.mi, means[:-2], rtol=0, atol=1e-11)
    assert est.mi_joint == pytest.approx(float(means[-2]), abs=1e-11)
    assert est.tc == pytest.approx(float(means[-1]), abs=1e-11)
    # Two-stage standard error straight from its definition, points as rows of (M', S, H + 2).
    by_point = terms.view(m, s, -1)
    f = m / mu.shape[0]
    var = (1 - f) * by_point.mean(1).var(0) / m + f * by_point.var(1).mean(0) / (m * s)
    reported = torch.cat(
        [est.mi_stderr, torch.tensor([est.mi_joint_stderr, est.tc_stderr], dtype=F64)]
    )
    torch.testing.assert_close(reported, var.sqrt(), rtol=1e-9, atol=0)


def test_per_factor_sums_survive_extreme_variance_spread() -> None:
    # Factor 0 mixes logvar -700 and +700 (mu = 0): a wide point's own density is ~700 nats below
    # the narrow components' peak, under the -700 clamp of the exponents unless its row is
    # shifted. (The joint's GEMM expansion overflows here: z² ~ e^700; per-factor only.)
    mu, logvar = random_posterior(40, 2, seed=9)
    mu[:, 0] = 0.0
    logvar[:, 0] = torch.tensor([-700.0, 700.0], dtype=F64).repeat(20)
    m, s = 40, 2
    est = mixture_information(mu, logvar, samples=s, eval_points=m, seed=12, chunk_size=9)
    z, log_own = kernels.draw_samples(mu, logvar, m, s, 12)
    peak = kernels.components(mu, logvar).peak
    assert (log_own - peak).min() < -700.5  # the clamp alone would lose this row's own term
    factor = reference_terms(mu, logvar, z, log_own)[:, :2]
    assert torch.isfinite(factor).all()
    torch.testing.assert_close(est.mi, factor.mean(0), rtol=0, atol=1e-11)


@pytest.fixture()
def one_thread() -> Iterator[None]:
    """Run on one torch thread: hundreds of tiny calls gain nothing from more, and on a loaded
    2-core machine two threads made them 5-30x slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.usefixtures("one_thread")
@pytest.mark.parametrize(("eval_points", "samples"), [(200, 8), (20, 16)])  # M' = N, M' = N/10
def test_standard_error_matches_spread_over_seeds(eval_points: int, samples: int) -> None:
    # The two-stage standard error against the standard deviation of the estimates over 100 seeds
    # (which redraw points and noise). The sd of a 100-seed sd is ~7 %: 25 % is > 3 sd. The
    # i.i.d. formula this replaced was off by 1.1-1.5x (M' = N) and 0.3-0.7x (M' = N/10) here.
    mu, logvar = random_posterior(200, 4, seed=0)
    runs = [
        mixture_information(mu, logvar, samples=samples, eval_points=eval_points, seed=seed)
        for seed in range(100)
    ]
    values = torch.stack([torch.cat([r.mi, torch.tensor([r.mi_joint], dtype=F64)]) for r in runs])
    stderr = torch.stack(
        [torch.cat([r.mi_stderr, torch.tensor([r.mi_joint_stderr], dtype=F64)]) for r in runs]
    )
    ratio = stderr.square().mean(0).sqrt() / values.std(0)  # per factor, then joint
    assert torch.all((ratio - 1).abs() < 0.25), ratio


def test_chunking_is_exact() -> None:
    gen = torch.Generator().manual_seed(5)
    mu = torch.randn(200, 3, generator=gen, dtype=F64)
    logvar = -3.0 + 3.0 * torch.rand(200, 3, generator=gen, dtype=F64)
    small = mixture_information(mu, logvar, samples=3, eval_points=150, chunk_size=7)
    large = mixture_information(mu, logvar, samples=3, eval_points=150, chunk_size=10_000)
    auto = mixture_information(mu, logvar, samples=3, eval_points=150)
    for other in (large, auto):
        torch.testing.assert_close(small.mi, other.mi, rtol=0, atol=1e-9)
        torch.testing.assert_close(small.mi_stderr, other.mi_stderr, rtol=1e-9, atol=0)
        assert small.mi_joint == pytest.approx(other.mi_joint, abs=1e-9)
        assert small.tc == pytest.approx(other.tc, abs=1e-9)
        assert small.tc_stderr == pytest.approx(other.tc_stderr, rel=1e-9)
    # 8·N·(H + 1) bytes of work per row under 2 GiB on the CPU, 512 MiB on CUDA.
    assert auto_chunk_size(20_000, 127, torch.device("cpu")) == 104
    assert auto_chunk_size(20_000, 127, torch.device("cuda")) == 26
    assert auto_chunk_size(10**7, 64, torch.device("cpu")) == 1


def test_progress_reports_every_chunk() -> None:
    mu, logvar = random_posterior(50, 2, seed=3)
    calls: list[tuple[int, int]] = []
    est = mixture_information(
        mu, logvar, samples=3, eval_points=40, chunk_size=25, on_progress=lambda *a: calls.append(a)
    )
    assert calls == [(25, 120), (50, 120), (75, 120), (100, 120), (120, 120)]
    assert est.eval_points == 40 and not est.shrunk


def test_zero_time_budget_shrinks_default_points_to_the_floor() -> None:
    mu, logvar = random_posterior(400, 3, seed=4)
    full = mixture_information(mu, logvar, samples=2, chunk_size=20, time_budget_s=None)
    cut = mixture_information(mu, logvar, samples=2, chunk_size=20, time_budget_s=0.0)
    assert (full.eval_points, full.eval_points_requested, full.shrunk) == (400, 400, False)
    assert (cut.eval_points, cut.eval_points_requested, cut.shrunk) == (
        MIN_BUDGET_EVAL_POINTS,
        400,
        True,
    )
    assert torch.isfinite(cut.mi).all() and math.isfinite(cut.mi_joint) and math.isfinite(cut.tc)
    assert cut.mi_joint_stderr > 1.5 * full.mi_joint_stderr  # M' = N has no between-point term
    assert torch.all(cut.mi_stderr > full.mi_stderr)
    explicit = mixture_information(mu, logvar, samples=2, eval_points=400, time_budget_s=0.0)
    assert (explicit.eval_points, explicit.shrunk) == (400, False)  # never shrunk when given


def test_time_budget_fits_points_to_the_measured_rate(monkeypatch: pytest.MonkeyPatch) -> None:
    ticks = iter(range(1000))  # a clock that advances 1 s per reading: 1 s per chunk
    monkeypatch.setattr(mixture_module, "_clock", lambda device: float(next(ticks)))
    mu, logvar = random_posterior(400, 3, seed=4)
    calls: list[tuple[int, int]] = []
    est = mixture_information(
        mu,
        logvar,
        samples=4,
        chunk_size=40,
        time_budget_s=25.0,
        on_progress=lambda *a: calls.append(a),
    )
    # 40 rows = 10 points per second: 25 s fit 250 of the 400 default points.
    assert (est.eval_points, est.eval_points_requested, est.shrunk) == (250, 400, True)
    assert calls[0] == (40, 1000) and calls[-1] == (1000, 1000) and len(calls) == 25
    assert torch.isfinite(est.mi_stderr).all() and est.mi_joint_stderr > 0


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
    assert gpu.mi.device.type == "cuda" and gpu.mi_near_cap.device.type == "cuda"
    torch.testing.assert_close(gpu.mi.cpu(), cpu.mi, rtol=0, atol=1e-9)
    torch.testing.assert_close(gpu.mi_stderr.cpu(), cpu.mi_stderr, rtol=1e-7, atol=0)
    assert gpu.mi_joint == pytest.approx(cpu.mi_joint, abs=1e-9)


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"samples": 0}, "samples must be >= 1; got 0"),
        ({"eval_points": 1}, r"eval_points must be in \[2, N = 10\]; got 1"),
        ({"eval_points": 11}, r"eval_points must be in \[2, N = 10\]; got 11"),
        ({"chunk_size": 0}, "chunk_size must be >= 1 or None"),
        ({"time_budget_s": -1.0}, r"time_budget_s must be >= 0 seconds or None \(no limit\)"),
    ],
)
def test_bad_options_raise_config_error(options: dict[str, float], match: str) -> None:
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
