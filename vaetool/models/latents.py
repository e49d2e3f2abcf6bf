"""Latent families: how a posterior's (mu, logvar) is sampled and scored (MATH.md §7, §10).

A family is a parameter-free module the VAE owns. ``gaussian``: q(z|x) = N(mu, diag σ²), the
papers' factorised posterior. ``correlated``: q(z|x) = N(mu, DΣ_ρD), equicorrelated
reparameterisation noise (paper 003 eq. 13). Further families (later a categorical part) register
here with the same interface.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from vaetool.config import ModelConfig
from vaetool.errors import ConfigError
from vaetool.models import noise
from vaetool.options import NoOptions, make_options, option
from vaetool.registry import Registry

LOG_2PI = math.log(2.0 * math.pi)


class LatentFamily(nn.Module):
    """q(z|x) given the encoder's (mu, logvar), each (B, H).

    ``factorised``: whether q(z|x) = Π_h q(z_h|x) (paper 003, Theorem 2's hypothesis, which the
    mixture estimator's joint term and TC need). The marginals q(z_h|x) = N(mu_h, σ²_h) are the
    same in every family, so per-factor analyses hold for all. ``noise_corr``: ρ of the
    equicorrelated reparameterisation noise (0 for a factorised family; MATH.md §10).
    """

    Options: type = NoOptions
    factorised: bool = True
    noise_corr: float = 0.0

    def sample(self, mu: Tensor, logvar: Tensor) -> Tensor:
        """z ~ q(z|x), reparameterised, (B, H); noise from vaetool.models.noise."""
        raise NotImplementedError

    def kl(self, mu: Tensor, logvar: Tensor) -> Tensor:
        """KL(q(z|x) ‖ N(0, I)) per row, (B,) nats, exact."""
        raise NotImplementedError

    def log_density(self, z: Tensor, mu: Tensor, logvar: Tensor) -> Tensor:
        """log q(z_i|x_i) for matching rows: (B,) nats."""
        raise NotImplementedError

    def log_density_pairs(self, z: Tensor, mu: Tensor, logvar: Tensor) -> tuple[Tensor, Tensor]:
        """(ℓ, joint): ℓ[i, j, h] = log N(z_ih; mu_jh, σ²_jh) (M, M, H) and joint[i, j] =
        log q(z_i|x_j) (M, M), for every pair of rows (β-TCVAE's minibatch estimators)."""
        raise NotImplementedError

    def kl_constant(self, latents: int) -> float:
        """c in KL(q(z|x) ‖ N(0, I)) = Σ_h KL(q(z_h|x) ‖ N(0, 1)) + c, nats, for H = ``latents``.

        c = KL(q(z|x) ‖ Π_h q(z_h|x)), the conditional TC (paper 003 Theorem 1; MATH.md §10):
        0 for a factorised family. It depends on H, so it changes when a model is sliced.
        """
        return 0.0


LATENTS: Registry[type[LatentFamily]] = Registry("latent family")


def marginal_log_density_pairs(z: Tensor, mu: Tensor, logvar: Tensor) -> Tensor:
    """ℓ[i, j, h] = log N(z_ih; mu_jh, exp(logvar_jh)): (M, M, H) from (M, H) each (MATH.md §9)."""
    diff = z.unsqueeze(1) - mu.unsqueeze(0)  # (M, M, H): z_i − mu_j
    return -0.5 * (diff.square() * (-logvar).exp().unsqueeze(0) + logvar.unsqueeze(0) + LOG_2PI)


@LATENTS.register("gaussian")
class DiagonalGaussian(LatentFamily):
    """q(z|x) = N(mu, diag exp(logvar)): z = mu + σ ⊙ ε, ε ~ N(0, I) (MATH.md §7)."""

    factorised = True

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()

    def sample(self, mu: Tensor, logvar: Tensor) -> Tensor:
        return mu + torch.exp(0.5 * logvar) * noise.normal(mu.shape, mu)

    def kl(self, mu: Tensor, logvar: Tensor) -> Tensor:
        """Σ_h ½(mu² + σ² − 1 − logvar): paper 002, Def. 1 per row."""
        return 0.5 * (mu.square() + logvar.exp() - 1.0 - logvar).sum(1)

    def log_density(self, z: Tensor, mu: Tensor, logvar: Tensor) -> Tensor:
        return -0.5 * ((z - mu).square() * (-logvar).exp() + logvar + LOG_2PI).sum(1)

    def log_density_pairs(self, z: Tensor, mu: Tensor, logvar: Tensor) -> tuple[Tensor, Tensor]:
        per_factor = marginal_log_density_pairs(z, mu, logvar)
        return per_factor, per_factor.sum(2)


def equicorrelated_log_det(latents: int, rho: float) -> float:
    """log det Σ_ρ, Σ_ρ = (1−ρ)I + ρ11ᵀ of size H = ``latents``: (H−1) log(1−ρ) + log(1+(H−1)ρ)
    from the eigenvalues 1 − ρ (H−1 times) and 1 + (H−1)ρ (MATH.md §10; paper 003 eq. 13)."""
    return (latents - 1) * math.log1p(-rho) + math.log1p((latents - 1) * rho)


def equicorrelated_kl_constant(latents: int, rho: float) -> float:
    """c_ρ = −½ log det Σ_ρ ≥ 0, nats: the exact KL's excess over the diagonal one, and the
    conditional TC KL(q(z|x) ‖ Π_h q(z_h|x)) for every x (MATH.md §10). H = 10, ρ = 0.9: 9.2575."""
    return -0.5 * equicorrelated_log_det(latents, rho)


def equicorrelated_log_density(e: Tensor, logvar_sum: Tensor, rho: float) -> Tensor:
    """log N(z; mu, DΣ_ρD) in O(H) (MATH.md §10), nats, shape (...).

    ``e`` = (z − mu)/σ, (..., H); ``logvar_sum`` = Σ_h logvar_h, broadcastable to (...). Uses
    Σ_ρ⁻¹ = [I − ρ/(1+(H−1)ρ)·11ᵀ]/(1−ρ), so eᵀΣ_ρ⁻¹e needs only Σ_h e_h² and (Σ_h e_h)².
    """
    H = e.shape[-1]
    quad = (e.square().sum(-1) - rho * e.sum(-1).square() / (1 + (H - 1) * rho)) / (1 - rho)
    return -0.5 * (H * LOG_2PI + logvar_sum + equicorrelated_log_det(H, rho) + quad)


@dataclass(frozen=True)
class CorrelatedOptions:
    noise_corr: float = option(0.9, "ρ of the equicorrelated noise, 0 < ρ < 1 (paper 003 eq. 13)")

    def __post_init__(self) -> None:
        if not (math.isfinite(self.noise_corr) and 0 < self.noise_corr < 1):
            raise ConfigError(f"‹noise_corr› {self.noise_corr}: expected ρ in (0, 1)")


@LATENTS.register("correlated")
class EquicorrelatedGaussian(LatentFamily):
    """q(z|x) = N(mu, DΣ_ρD), D = diag(σ), Σ_ρ = (1−ρ)I + ρ11ᵀ, ρ = ``noise_corr``
    (paper 003 eq. 13, which writes σ for ρ; MATH.md §10). The marginals N(mu_h, σ²_h) are the
    diagonal family's; only joint densities and the KL's constant c_ρ differ. c_ρ depends on H.
    """

    Options = CorrelatedOptions
    factorised = False

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        options = make_options("latent", "correlated", CorrelatedOptions, config.latent_options)
        self.noise_corr = options.noise_corr

    def sample(self, mu: Tensor, logvar: Tensor) -> Tensor:
        """z = mu + σ ⊙ ε, ε = √(1−ρ) u + √ρ w 1: u ~ N(0, I_H), one w ~ N(0, 1) per row. (B, H)."""
        rho = self.noise_corr
        u = noise.normal(mu.shape, mu)  # (B, H)
        w = noise.normal((*mu.shape[:-1], 1), mu)  # (B, 1), shared
        eps = math.sqrt(1.0 - rho) * u + math.sqrt(rho) * w
        return mu + torch.exp(0.5 * logvar) * eps

    def kl(self, mu: Tensor, logvar: Tensor) -> Tensor:
        """Σ_h ½(mu² + σ² − 1 − logvar) + c_ρ per row, (B,) nats, exact (MATH.md §10)."""
        diagonal = 0.5 * (mu.square() + logvar.exp() - 1.0 - logvar).sum(-1)
        return diagonal + self.kl_constant(mu.shape[-1])

    def log_density(self, z: Tensor, mu: Tensor, logvar: Tensor) -> Tensor:
        e = (z - mu) * torch.exp(-0.5 * logvar)  # (B, H) standardised residuals
        return equicorrelated_log_density(e, logvar.sum(-1), self.noise_corr)

    def log_density_pairs(self, z: Tensor, mu: Tensor, logvar: Tensor) -> tuple[Tensor, Tensor]:
        """ℓ (M, M, H) as the diagonal family's; joint[i, j] = log N(z_i; mu_j, D_jΣ_ρD_j)."""
        per_factor = marginal_log_density_pairs(z, mu, logvar)
        e = (z.unsqueeze(1) - mu.unsqueeze(0)) * torch.exp(-0.5 * logvar).unsqueeze(0)  # (M, M, H)
        joint = equicorrelated_log_density(e, logvar.sum(-1).unsqueeze(0), self.noise_corr)
        return per_factor, joint

    def kl_constant(self, latents: int) -> float:
        """c_ρ = −½ log det Σ_ρ for H = ``latents`` (see :func:`equicorrelated_kl_constant`)."""
        return equicorrelated_kl_constant(latents, self.noise_corr)


def build_latent(config: ModelConfig) -> LatentFamily:
    """The family named by ``config.latent`` (see :data:`LATENTS`)."""
    return LATENTS.get(config.latent)(config)
