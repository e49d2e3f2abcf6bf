"""β-TCVAE (Chen et al. 2018; MATH.md §9): the KL term split into index-code MI, total
correlation and dimension-wise KL, each weighted, with minibatch estimates of q(z) and q(z_h).

    loss = mean_i [ rec_i + α(log q(z_i|x_i) − log q̂(z_i)) + β(log q̂(z_i) − Σ_h log q̂_h(z_ih))
                    + γ(Σ_h log q̂_h(z_ih) − log p(z_i)) ]

log q̂ uses importance weights W (M, M) over the batch: ``mws`` (minibatch-weighted sampling,
W ≡ 1/(NM): biased, fine for gradients, never information), ``mss`` (minibatch-stratified, the
intended matrix, rows sum to 1) and ``mss_reference`` (the reference implementations' matrix,
for reproduction only: its strided writes hit columns, MATH.md §9).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from vaetool.config import check_finite
from vaetool.errors import ConfigError, field
from vaetool.models.latents import LOG_2PI
from vaetool.objectives.base import OBJECTIVES, Objective
from vaetool.options import option

TC_ESTIMATORS = ("mws", "mss", "mss_reference")


@dataclass(frozen=True)
class TCVAEOptions:
    """Defaults: α = γ = 1 (β-TCVAE proper) and β = 6 (tcvae's README and disvae; paper 003's
    runs), the minibatch-weighted estimator (tcvae's default and dlib's, whose (β − 1)·T̃C with
    the plain ELBO is the same objective)."""

    alpha: float = option(1.0, "α, the weight of the index-code MI")
    beta: float = option(6.0, "β, the weight of the total correlation")
    gamma: float = option(1.0, "γ, the weight of the dimension-wise KL")
    tc_estimator: str = option("mws", "TC estimator: mws, mss or mss_reference (MATH.md §9)")

    def __post_init__(self) -> None:
        for name in ("alpha", "beta", "gamma"):
            check_finite(field(name), getattr(self, name))
        if self.tc_estimator not in TC_ESTIMATORS:
            raise ConfigError(
                f"‹tc_estimator› {self.tc_estimator!r}: expected one of {', '.join(TC_ESTIMATORS)}"
            )


def log_importance_weights(
    kind: str, batch: int, n: int, device: torch.device, dtype: torch.dtype = torch.float32
) -> Tensor:
    """log W (batch, batch) for ``kind`` (MATH.md §9), N = dataset size, M' = M − 1.

    ``mws``: −log(N·M) everywhere. ``mss``: W_ii = 1/N, W_{i,s(i)} = (N − M')/(N M') with
    s(i) = (i + 1) mod M (proposal), 1/M' elsewhere. ``mss_reference``: tcvae's
    ``_log_importance_weight_matrix`` (= disvae's), exactly: 1/M', then writes of stride M'+1
    through the flattened matrix (column 0 = 1/N, column 1 = the stratum weight) and
    W[M − 2, 0] = the stratum weight. A batch of one row (an epoch's last, say) has no other
    row to stratify: every kind's weight is then W_11 = 1/N (mss's diagonal, mws at M = 1).
    """
    if kind == "mws" or batch == 1:
        return torch.full((batch, batch), -math.log(n * batch), device=device, dtype=dtype)
    m = batch - 1
    strat = (n - m) / (n * m)
    w = torch.full((batch, batch), 1.0 / m, device=device, dtype=dtype)
    if kind == "mss":
        rows = torch.arange(batch, device=device)
        w[rows, rows] = 1.0 / n
        w[rows, (rows + 1) % batch] = strat
    else:
        w.view(-1)[:: m + 1] = 1.0 / n
        w.view(-1)[1 :: m + 1] = strat
        w[m - 1, 0] = strat
    return w.log()


def tc_decomposition(
    per_factor: Tensor, joint: Tensor, log_qzx: Tensor, log_pz: Tensor, log_w: Tensor
) -> tuple[Tensor, Tensor, Tensor]:
    """Per-row (MI, TC, DWKL) terms (M,) each, nats (MATH.md §9):

    log q̂(z_i) = LSE_j [log W_ij + joint[i, j]], log q̂_h(z_ih) = LSE_j [log W_ij + ℓ[i, j, h]];
    MI = log q(z_i|x_i) − log q̂(z_i), TC = log q̂(z_i) − Σ_h log q̂_h, DWKL = Σ_h log q̂_h − log p.
    per_factor ℓ (M, M, H), joint (M, M), log_qzx and log_pz (M,), log_w (M, M).
    """
    log_qz = torch.logsumexp(log_w + joint, dim=1)
    log_qz_h = torch.logsumexp(log_w.unsqueeze(2) + per_factor, dim=1).sum(1)
    return log_qzx - log_qz, log_qz - log_qz_h, log_qz_h - log_pz


def standard_normal_log_density(z: Tensor) -> Tensor:
    """log N(z; 0, I) per row, (M,) from (M, H)."""
    return -0.5 * (z.square() + LOG_2PI).sum(1)


@OBJECTIVES.register("beta_tcvae")
class BetaTCVAE(Objective):
    """β-TCVAE (Chen et al. 2018): recon + α·MI + β·TC + γ·dimension-wise KL (MATH.md §9)."""

    Options = TCVAEOptions
    extra_terms = ("mi", "tc", "dwkl")
    supports_code = False  # its loss decomposes the Gaussian KL only

    def losses(self, x: Tensor) -> dict[str, Tensor]:
        out, recon, kl = self.forward_terms(x)
        latent = self.vae.latent
        per_factor, joint = latent.log_density_pairs(out.z, out.mu, out.logvar)
        log_w = log_importance_weights(
            self.options.tc_estimator, x.shape[0], self.context.n_train, x.device, joint.dtype
        )
        mi, tc, dwkl = tc_decomposition(
            per_factor,
            joint,
            latent.log_density(out.z, out.mu, out.logvar),
            standard_normal_log_density(out.z),
            log_w,
        )
        o = self.options
        recon, kl = recon.mean(), kl.mean()
        mi, tc, dwkl = mi.mean(), tc.mean(), dwkl.mean()
        return {
            "loss": recon + o.alpha * mi + o.beta * tc + o.gamma * dwkl,
            "recon": recon,
            "kl": kl,
            "elbo": -(recon + kl),
            "mi": mi,
            "tc": tc,
            "dwkl": dwkl,
        }
