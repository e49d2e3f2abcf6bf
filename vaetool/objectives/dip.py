"""DIP-VAE (Kumar et al. 2018; MATH.md §9): the ELBO plus a penalty pulling a covariance of the
codes to the identity — of the posterior means (DIP-I) or of q(z) itself (DIP-II).

    loss = mean_i [rec_i + KL_i] + λ_od Σ_{h≠h'} C²_hh' + λ_d Σ_h (C_hh − 1)²
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from vaetool.config import check_finite
from vaetool.objectives.base import OBJECTIVES, Objective
from vaetool.options import option


@dataclass(frozen=True)
class DIPOptions:
    """λ_od = 10 (dlib sweeps {1, 2, 5, 10, 20, 50}: a proposal in its middle); λ_d = None
    means dlib's λ_d_factor·λ_od, with factor 10 for DIP-I and 1 for DIP-II."""

    lambda_od: float = option(10.0, "λ_od, the weight of the off-diagonal covariance")
    lambda_d: float | None = option(None, "λ_d, of the diagonal; none: dlib's factor × λ_od")

    def __post_init__(self) -> None:
        check_finite("‹lambda_od›", self.lambda_od)
        if self.lambda_d is not None:
            check_finite("‹lambda_d›", self.lambda_d)


def mean_covariance(mu: Tensor) -> Tensor:
    """Cov[mu] = mean_i mu_i mu_iᵀ − mū mūᵀ (biased, as dlib), (H, H) from (M, H)."""
    centred = mu - mu.mean(0, keepdim=True)
    return centred.T @ centred / mu.shape[0]


def posterior_covariance(logvar: Tensor, noise_corr: float) -> Tensor:
    """E_i Cov q(z|x_i) = mean_i D_i Σ_ρ D_i, (H, H): diag mean σ², off-diagonals ρ·mean σ_h σ_h'
    (MATH.md §10's last bullet; ρ = 0 is dlib's diag(exp logvar))."""
    sigma = (0.5 * logvar).exp()
    if noise_corr == 0:
        return torch.diag(sigma.square().mean(0))
    outer = sigma.T @ sigma / sigma.shape[0]
    return noise_corr * outer + (1 - noise_corr) * torch.diag(sigma.square().mean(0))


def dip_penalty(c: Tensor, lambda_od: float, lambda_d: float) -> Tensor:
    """λ_od Σ_{h≠h'} C²_hh' + λ_d Σ_h (C_hh − 1)² (Kumar et al. 2018, eq. 6-7), 0-dim."""
    diag = torch.diagonal(c)
    off = c - torch.diag(diag)
    return lambda_od * off.square().sum() + lambda_d * (diag - 1).square().sum()


class _DIPVAE(Objective):
    Options = DIPOptions
    extra_terms = ("dip_penalty",)
    diagonal_factor = 10.0  # dlib: λ_d = factor·λ_od
    uses_posterior = False  # DIP-II adds E Cov q(z|x)

    def losses(self, x: Tensor) -> dict[str, Tensor]:
        out, recon, kl = self.forward_terms(x)
        c = mean_covariance(out.mu)
        if self.uses_posterior:
            c = c + posterior_covariance(out.logvar, self.vae.latent.noise_corr)
        o = self.options
        lambda_d = o.lambda_d if o.lambda_d is not None else self.diagonal_factor * o.lambda_od
        penalty = dip_penalty(c, o.lambda_od, lambda_d)
        recon, kl = recon.mean(), kl.mean()
        return {
            "loss": recon + kl + penalty,
            "recon": recon,
            "kl": kl,
            "elbo": -(recon + kl),
            "dip_penalty": penalty,
        }


@OBJECTIVES.register("dip_vae_i")
class DIPVAEI(_DIPVAE):
    """DIP-I: C = Cov[mu]."""


@OBJECTIVES.register("dip_vae_ii")
class DIPVAEII(_DIPVAE):
    """DIP-II: C = Cov[mu] + E_i Cov q(z|x_i), the covariance of q(z)."""

    diagonal_factor = 1.0
    uses_posterior = True
