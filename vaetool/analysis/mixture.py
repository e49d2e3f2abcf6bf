"""A consistent mutual-information estimator under the empirical data distribution (MATH.md §3).

With p_data the empirical distribution of N points, the aggregate posterior is the exact mixture
q(z) = (1/N) Σ_k q(z|x_k), so

    I(x; z_h) = E_n E_{z~q(z_h|x_n)} [log q(z_h|x_n) − log (1/N) Σ_k q(z_h|x_k)]
    I(x; z)   = E_n E_{z~q(z|x_n)}   [log q(z|x_n)   − log (1/N) Σ_k q(z|x_k)]
    TC(z)     = Σ_h I(x; z_h) − I(x; z)        (paper 003, Theorem 2; q(z|x) factorizes)

Monte Carlo covers the outer expectations only (S samples at each of M' evaluation points); the
inner mixture runs over all N components with logsumexp. Each estimate is at most log N.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from vaetool.analysis.posterior_checks import check_posterior
from vaetool.device import REDUCE_DTYPE
from vaetool.errors import ConfigError

DEFAULT_MAX_EVAL_POINTS = 10_000
NEAR_CAP_RATIO = 0.95
# Peak bytes of the per-chunk work (the (chunk, N, H) float64 block, logsumexp's two temporaries
# of the same size, and the (chunk, N) joint matrices) are kept under this budget.
_CHUNK_BUDGET_BYTES = {"cuda": 512 * 1024**2, "cpu": 256 * 1024**2}
_LOG_2PI = math.log(2.0 * math.pi)


@dataclass(frozen=True, eq=False)
class MixtureEstimate:
    """MATH.md §3 estimates, in nats, with their Monte Carlo standard errors.

    Fields: ``mi`` (H,) float64 per-factor I(x; z_h); ``mi_joint`` I(x; z); ``tc`` = Σ_h mi −
    mi_joint (total correlation); ``mi_stderr`` (H,), ``mi_joint_stderr``, ``tc_stderr`` (standard
    errors of the outer Monte Carlo average over the M'·S samples); ``log_n_cap`` = log N, the most
    any estimate can be; ``cap_ratio`` = mi_joint / log N; ``near_cap`` (cap_ratio >= 0.95: the
    joint estimate is limited by N and understates the encoder's information); ``n`` = N;
    ``eval_points`` = M'; ``samples`` = S.
    """

    mi: Tensor
    mi_joint: float
    tc: float
    mi_stderr: Tensor
    mi_joint_stderr: float
    tc_stderr: float
    log_n_cap: float
    cap_ratio: float
    near_cap: bool
    n: int
    eval_points: int
    samples: int


def _check_options(n: int, samples: int, eval_points: int | None, chunk: int | None) -> int:
    """Validate the sampling options; return M' (None -> min(N, DEFAULT_MAX_EVAL_POINTS))."""
    if samples < 1:
        raise ConfigError(f"samples must be >= 1; got {samples}")
    if chunk is not None and chunk < 1:
        raise ConfigError(f"chunk_size must be >= 1 or None (automatic); got {chunk}")
    if eval_points is None:
        return min(n, DEFAULT_MAX_EVAL_POINTS)
    if not 2 <= eval_points <= n:
        raise ConfigError(f"eval_points must be in [2, N = {n}]; got {eval_points}")
    return eval_points


def auto_chunk_size(n: int, h: int, device: torch.device) -> int:
    """Rows per chunk so that the per-chunk float64 work stays under the device's memory budget.

    Per row: 3·N·H float64 (the (N, H) block and logsumexp's two temporaries, measured on CUDA)
    plus 3·N for the joint (N,) rows. Budget: 512 MiB on CUDA, 256 MiB on CPU. At least 1 row (a
    single row may exceed the budget when N·H is huge).
    """
    budget = _CHUNK_BUDGET_BYTES["cuda" if device.type == "cuda" else "cpu"]
    bytes_per_row = 8 * n * (3 * h + 3)
    return max(1, budget // bytes_per_row)


def _draw_samples(
    mu: Tensor, logvar: Tensor, eval_points: int, samples: int, seed: int
) -> tuple[Tensor, Tensor]:
    """Reparameterised z ~ q(z|x_m) at M' points drawn without replacement, S per point.

    The indices and standard-normal noise come from a seeded CPU generator and are then moved to
    mu's device, so every device sees the same draws. Returns z (M'·S, H) and the exact
    log q(z_h|x_m) = −½(ε² + logvar + log 2π), (M'·S, H), both float64; row = point·S + sample.
    """
    generator = torch.Generator(device="cpu").manual_seed(seed)
    index = torch.randperm(mu.shape[0], generator=generator)[:eval_points].to(mu.device)
    noise_shape = (eval_points, samples, mu.shape[1])
    eps = torch.randn(noise_shape, generator=generator, dtype=REDUCE_DTYPE).to(mu.device)
    mu_eval, logvar_eval = mu[index].unsqueeze(1), logvar[index].unsqueeze(1)
    z = mu_eval + (0.5 * logvar_eval).exp() * eps
    log_own = -0.5 * (eps.square() + logvar_eval + _LOG_2PI)
    return z.reshape(-1, mu.shape[1]), log_own.reshape(-1, mu.shape[1])


def _log_mixture_per_factor(z: Tensor, mu: Tensor, inv_var: Tensor, log_norm: Tensor) -> Tensor:
    """log Σ_k N(z_h; mu[k,h], sigma²[k,h]) for each row and factor: (c, H) from z (c, H).

    Elementwise over the (c, N, H) block −½((z_h − mu_kh)² / sigma²_kh + logvar_kh + log 2π),
    built in place, then logsumexp over the N components.
    """
    block = z.unsqueeze(1) - mu.unsqueeze(0)
    block.square_().mul_(inv_var).add_(log_norm).mul_(-0.5)
    return torch.logsumexp(block, dim=1)


def _log_mixture_joint(z: Tensor, inv_var: Tensor, mu_inv_var: Tensor, const: Tensor) -> Tensor:
    """log Σ_k N(z; mu_k, diag sigma²_k) for each row: (c,) from z (c, H).

    Σ_h (z_h − mu_kh)²/sigma²_kh = z² @ (1/sigma²)ᵀ − 2 z @ (mu/sigma²)ᵀ + Σ_h mu²/sigma², two
    GEMMs. It is done in float64 because the expansion subtracts terms as large as z²/sigma²
    (1e5 for sigma = 0.01, |z| = 3): float64 leaves ~1e-11 nats of cancellation error where
    float32 would leave ~1e-2. The quadratic form is clamped at 0 against that rounding.
    ``const`` is (quad_k, logdet_k) stacked as (2, N): Σ_h mu²/sigma² and Σ_h logvar + H log 2π.
    """
    quad = torch.addmm(const[0], z.square(), inv_var.T).addmm_(z, mu_inv_var.T, alpha=-2.0)
    quad.clamp_min_(0.0).add_(const[1]).mul_(-0.5)
    return torch.logsumexp(quad, dim=1)


def _row_terms(
    mu: Tensor, logvar: Tensor, z: Tensor, log_own: Tensor, chunk_size: int
) -> tuple[Tensor, Tensor]:
    """Σ over rows of the per-row terms and of their squares, float64.

    Per row: per-factor terms (H) = log q(z_h|x_m) − log mean_k q(z_h|x_k), the joint term, and
    the TC term Σ_h per-factor − joint, stacked to (H + 2). Returns (sums, sums of squares).
    """
    n = mu.shape[0]
    inv_var = (-logvar).exp()
    log_norm = logvar + _LOG_2PI
    mu_inv_var = mu * inv_var
    const = torch.stack([(mu * mu_inv_var).sum(1), log_norm.sum(1)])
    sums = torch.zeros(mu.shape[1] + 2, dtype=REDUCE_DTYPE, device=mu.device)
    sums_sq = torch.zeros_like(sums)
    for start in range(0, z.shape[0], chunk_size):
        z_chunk, own = z[start : start + chunk_size], log_own[start : start + chunk_size]
        factor = own - _log_mixture_per_factor(z_chunk, mu, inv_var, log_norm) + math.log(n)
        joint = own.sum(1) - _log_mixture_joint(z_chunk, inv_var, mu_inv_var, const)
        joint = joint + math.log(n)
        terms = torch.cat([factor, joint[:, None], (factor.sum(1) - joint)[:, None]], dim=1)
        sums += terms.sum(0)
        sums_sq += terms.square().sum(0)
    return sums, sums_sq


def mixture_information(
    mu: Tensor,
    logvar: Tensor,
    *,
    samples: int = 1,
    eval_points: int | None = None,
    seed: int = 0,
    chunk_size: int | None = None,
) -> MixtureEstimate:
    """Per-factor I(x; z_h), joint I(x; z) and TC(z) under the empirical distribution (MATH.md §3).

    Args:
        mu, logvar: posterior means and log-variances, (N, H), any float dtype, on any device;
            the work runs there in float64.
        samples: S >= 1 reparameterised samples per evaluation point.
        eval_points: M' in [2, N] points drawn without replacement for the outer expectation;
            None uses min(N, 10 000).
        seed: seeds the CPU generator of points and noise (same draws on every device).
        chunk_size: rows (of the M'·S samples) per chunk; None picks it from a memory budget
            (:func:`auto_chunk_size`). Results do not depend on it beyond float64 rounding.

    Cost O(M'·S·N·H); memory O(chunk·N·H).
    """
    check_posterior(mu, logvar)
    n, h = mu.shape
    eval_points = _check_options(n, samples, eval_points, chunk_size)
    mu64, logvar64 = mu.to(REDUCE_DTYPE), logvar.to(REDUCE_DTYPE)
    chunk_size = chunk_size or auto_chunk_size(n, h, mu.device)
    z, log_own = _draw_samples(mu64, logvar64, eval_points, samples, seed)
    sums, sums_sq = _row_terms(mu64, logvar64, z, log_own, chunk_size)
    rows = z.shape[0]
    means = sums / rows
    stderr = ((sums_sq / rows - means.square()).clamp_min(0.0) / max(rows - 1, 1)).sqrt()
    means, stderr = means.cpu(), stderr.cpu()
    mi_joint, log_n = float(means[h]), math.log(n)
    return MixtureEstimate(
        mi=means[:h].to(mu.device),
        mi_joint=mi_joint,
        tc=float(means[h + 1]),
        mi_stderr=stderr[:h].to(mu.device),
        mi_joint_stderr=float(stderr[h]),
        tc_stderr=float(stderr[h + 1]),
        log_n_cap=log_n,
        cap_ratio=mi_joint / log_n,
        near_cap=mi_joint >= NEAR_CAP_RATIO * log_n,
        n=n,
        eval_points=eval_points,
        samples=samples,
    )
