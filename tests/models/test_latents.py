"""Latent families against dense references and MATH.md §14's known answers (MATH.md §7, §10).

Every family is checked through one dense reference: q(z|x) = N(mu, DΣ_ρD), D = diag(σ),
Σ_ρ = (1−ρ)I + ρ11ᵀ with ρ = ``family.noise_corr`` (0 for the diagonal family). Exact identities
are checked in float64 to 1e-10 nats: the O(H) formulas and the dense Cholesky/slogdet agree to
≲ 2e-12 (measured) on these well-conditioned matrices (σ² in [e^−2, e^2], ρ ≤ 0.9 so
λ_min(Σ_ρ) ≥ 0.1).
"""

from __future__ import annotations

import math

import pytest
import torch
from torch.distributions import MultivariateNormal, Normal, kl_divergence

from vaetool.config import ModelConfig
from vaetool.models.latents import (
    LATENTS,
    DiagonalGaussian,
    EquicorrelatedGaussian,
    LatentFamily,
    build_latent,
    equicorrelated_kl_constant,
    equicorrelated_log_det,
)

H = 10
RHO = 0.9  # paper 003's value
CONFIGS = {
    "gaussian": ModelConfig("mlp", (1, 4, 4), latents=H),
    "correlated": ModelConfig(
        "mlp", (1, 4, 4), latents=H, latent="correlated", latent_options={"noise_corr": RHO}
    ),
}
EXACT = 1e-10  # nats, float64


def _family(name: str) -> LatentFamily:
    return build_latent(CONFIGS[name])


def _posterior(rows: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Random float64 (mu, logvar), each (rows, H): mu ~ N(0, 1), logvar ~ U(−2, 2)."""
    gen = torch.Generator().manual_seed(seed)
    mu = torch.randn(rows, H, generator=gen, dtype=torch.float64)
    logvar = 4 * torch.rand(rows, H, generator=gen, dtype=torch.float64) - 2
    return mu, logvar


def _noise_cov(family: LatentFamily, latents: int = H) -> torch.Tensor:
    """Dense Σ_ρ (latents, latents) float64 for the family's ρ."""
    rho = family.noise_corr
    eye = torch.eye(latents, dtype=torch.float64)
    return (1 - rho) * eye + rho * torch.ones_like(eye)


def _dense_q(family: LatentFamily, mu: torch.Tensor, logvar: torch.Tensor) -> MultivariateNormal:
    """N(mu, DΣ_ρD) batched over rows: covariance (B, H, H)."""
    sigma = torch.exp(0.5 * logvar)  # (B, H)
    cov = sigma.unsqueeze(2) * _noise_cov(family) * sigma.unsqueeze(1)  # D Σ_ρ D
    return MultivariateNormal(mu, covariance_matrix=cov)


def test_every_family_has_a_test_config() -> None:
    assert sorted(CONFIGS) == LATENTS.names()
    for name, config in CONFIGS.items():
        assert type(build_latent(config)) is LATENTS.get(name)


def test_correlated_family_attributes() -> None:
    family = _family("correlated")
    assert isinstance(family, EquicorrelatedGaussian)
    assert not family.factorised and family.noise_corr == RHO
    assert list(family.parameters()) == []
    assert isinstance(_family("gaussian"), DiagonalGaussian) and _family("gaussian").factorised


def test_c_rho_known_answers() -> None:
    """MATH.md §14: c_ρ(H = 10, ρ = 0.9) = 9.2575 (4 decimals given); H = 2, ρ = 0.8: 0.5108."""
    assert equicorrelated_kl_constant(10, 0.9) == pytest.approx(9.2575, abs=5e-5)
    assert equicorrelated_kl_constant(2, 0.8) == pytest.approx(-0.5 * math.log(0.36), abs=1e-15)
    assert equicorrelated_kl_constant(2, 0.8) == pytest.approx(0.5108, abs=5e-5)
    assert equicorrelated_kl_constant(1, 0.9) == 0.0  # a 1×1 Σ_ρ is 1
    assert equicorrelated_kl_constant(H, 0.0) == 0.0


@pytest.mark.parametrize("latents", [1, 2, 10, 128])
@pytest.mark.parametrize("rho", [0.0, 0.3, 0.9, 0.99])
def test_log_det_matches_dense_slogdet(latents: int, rho: float) -> None:
    eye = torch.eye(latents, dtype=torch.float64)
    sign, logdet = torch.linalg.slogdet((1 - rho) * eye + rho * torch.ones_like(eye))
    assert sign.item() == 1.0
    assert equicorrelated_log_det(latents, rho) == pytest.approx(logdet.item(), abs=1e-10)


def test_inverse_formula() -> None:
    """MATH.md §10/§14: Σ_ρ⁻¹ = [I − ρ/(1+(H−1)ρ)·11ᵀ]/(1−ρ), so Σ_ρ⁻¹Σ_ρ = I (the O(H)
    quadratic form in log_density rests on it)."""
    eye = torch.eye(H, dtype=torch.float64)
    ones = torch.ones_like(eye)
    inverse = (eye - RHO / (1 + (H - 1) * RHO) * ones) / (1 - RHO)
    torch.testing.assert_close(inverse @ ((1 - RHO) * eye + RHO * ones), eye, atol=1e-13, rtol=0)


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_kl_constant_is_minus_half_slogdet(name: str) -> None:
    family = _family(name)
    for latents in (1, 3, H):
        expected = -0.5 * torch.linalg.slogdet(_noise_cov(family, latents)).logabsdet.item()
        assert family.kl_constant(latents) == pytest.approx(expected, abs=EXACT)


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_kl_equals_dense_formula(name: str) -> None:
    """KL(N(mu, C) ‖ N(0, I)) = ½[tr C + muᵀmu − H − log det C], C = DΣ_ρD (MATH.md §14)."""
    family = _family(name)
    mu, logvar = _posterior(64)
    cov = _dense_q(family, mu, logvar).covariance_matrix  # (B, H, H)
    trace = cov.diagonal(dim1=1, dim2=2).sum(1)
    dense = 0.5 * (trace + mu.square().sum(1) - H - torch.linalg.slogdet(cov).logabsdet)
    kl = family.kl(mu, logvar)
    assert kl.shape == (64,) and kl.dtype == torch.float64
    torch.testing.assert_close(kl, dense, atol=EXACT, rtol=0)


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_log_density_equals_multivariate_normal(name: str) -> None:
    family = _family(name)
    mu, logvar = _posterior(64)
    z = mu + 2 * torch.randn(mu.shape, generator=torch.Generator().manual_seed(1), dtype=mu.dtype)
    log_q = family.log_density(z, mu, logvar)
    assert log_q.shape == (64,)
    torch.testing.assert_close(log_q, _dense_q(family, mu, logvar).log_prob(z), atol=EXACT, rtol=0)


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_log_density_pairs_equal_dense_loop(name: str) -> None:
    """ℓ[i, j, h] = log N(z_ih; mu_jh, σ²_jh); joint[i, j] = log q(z_i|x_j) by a dense loop."""
    family = _family(name)
    M = 6
    mu, logvar = _posterior(M)
    z = family.sample(mu, logvar)
    per_factor, joint = family.log_density_pairs(z, mu, logvar)
    assert per_factor.shape == (M, M, H) and joint.shape == (M, M)
    sigma = torch.exp(0.5 * logvar)
    for i in range(M):
        for j in range(M):
            marginal = Normal(mu[j], sigma[j]).log_prob(z[i])  # (H,)
            torch.testing.assert_close(per_factor[i, j], marginal, atol=EXACT, rtol=0)
            dense = _dense_q(family, mu[j : j + 1], logvar[j : j + 1]).log_prob(z[i])
            torch.testing.assert_close(joint[i, j], dense[0], atol=EXACT, rtol=0)
    torch.testing.assert_close(joint.diagonal(), family.log_density(z, mu, logvar))


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_sampler_covariance(name: str) -> None:
    """Covariance of 4·10⁵ draws at mu = 0, logvar = 0 within 0.01 of Σ_ρ (MATH.md §14). An
    entry's standard error is √((1 + Σ_ij²)/n) ≤ √(2/4·10⁵) = 0.0022, so 0.01 is ≥ 4.5 s.e."""
    family = _family(name)
    torch.manual_seed(0)
    zeros = torch.zeros(400_000, H, dtype=torch.float64)
    z = family.sample(zeros, zeros)
    assert z.shape == zeros.shape and z.dtype == torch.float64
    error = (torch.cov(z.T) - _noise_cov(family)).abs().max().item()
    assert error < 0.01
    assert z.mean(0).abs().max().item() < 0.01  # s.e. of a mean ≤ √(1/4·10⁵) = 0.0016


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_sample_is_reparameterised(name: str) -> None:
    """z = mu + σ ⊙ ε: same ε gives dz/dmu = 1 and dz/dlogvar = ½(z − mu)."""
    family = _family(name)
    mu, logvar = (t.requires_grad_() for t in _posterior(8))
    z = family.sample(mu, logvar)
    grad_mu, grad_lv = torch.autograd.grad(z.sum(), (mu, logvar))
    torch.testing.assert_close(grad_mu, torch.ones_like(mu))
    torch.testing.assert_close(grad_lv, 0.5 * (z - mu).detach())


def test_gaussian_family_matches_torch_distributions() -> None:
    family = _family("gaussian")
    mu, logvar = _posterior(64)
    q = Normal(mu, torch.exp(0.5 * logvar))
    z = q.sample()
    torch.testing.assert_close(family.log_density(z, mu, logvar), q.log_prob(z).sum(1))
    prior = Normal(torch.zeros_like(mu), torch.ones_like(mu))
    torch.testing.assert_close(family.kl(mu, logvar), kl_divergence(q, prior).sum(1))


def test_correlated_family_tends_to_diagonal_as_rho_to_zero() -> None:
    """At ρ = 1e−12 every term differs from the diagonal family's by O(Hρ·e²) ≈ 1e−10."""
    config = ModelConfig("mlp", (1, 4, 4), latents=H, latent="correlated",
                         latent_options={"noise_corr": 1e-12})  # fmt: skip
    correlated, diagonal = build_latent(config), _family("gaussian")
    mu, logvar = _posterior(16)
    z = diagonal.sample(mu, logvar)
    close = {"atol": 1e-9, "rtol": 0}
    torch.testing.assert_close(correlated.kl(mu, logvar), diagonal.kl(mu, logvar), **close)
    torch.testing.assert_close(
        correlated.log_density(z, mu, logvar), diagonal.log_density(z, mu, logvar), **close
    )
    for got, want in zip(
        correlated.log_density_pairs(z, mu, logvar),
        diagonal.log_density_pairs(z, mu, logvar),
        strict=True,
    ):
        torch.testing.assert_close(got, want, **close)


def test_correlated_kl_excess_is_conditional_tc() -> None:
    """KL(q(z|x) ‖ Π_h q(z_h|x)) = c_ρ for any x (MATH.md §10): the dense KL between the joint
    and its diagonal part equals kl_constant(H)."""
    family = _family("correlated")
    mu, logvar = _posterior(4)
    joint = _dense_q(family, mu, logvar)
    product = MultivariateNormal(mu, covariance_matrix=torch.diag_embed(logvar.exp()))
    expected = torch.full((4,), family.kl_constant(H), dtype=torch.float64)
    torch.testing.assert_close(kl_divergence(joint, product), expected, atol=EXACT, rtol=0)
