"""Training objectives as named loss terms (MATH.md §7). Later variants register here too."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from vaetool.models import VAE
from vaetool.registry import Registry


@dataclass(frozen=True)
class LossTerms:
    """Batch means, in nats per image. ``loss`` is what the optimiser minimises."""

    loss: torch.Tensor
    recon: torch.Tensor  # E −log p(x|z)
    kl: torch.Tensor  # E KL(q(z|x) ‖ p(z)), summed over factors
    elbo: torch.Tensor  # −(recon + kl): the β = 1 evidence lower bound

    def detached(self) -> dict[str, float]:
        return {k: float(v.detach()) for k, v in self.__dict__.items()}


Objective = Callable[[VAE, torch.Tensor, float], LossTerms]
OBJECTIVES: Registry[Objective] = Registry("objective", "--objective")


def kl_to_standard_normal(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, exp(logvar)) ‖ N(0, I)) per row, (B, H) -> (B,); paper 002, Def. 1."""
    return 0.5 * (mu.square() + logvar.exp() - 1.0 - logvar).sum(1)


@OBJECTIVES.register("beta_vae")
def beta_vae(model: VAE, x: torch.Tensor, beta: float) -> LossTerms:
    """β-VAE: minimise E[−log p(x|z)] + β·KL(q(z|x) ‖ p(z)); β = 1 is the plain VAE."""
    out = model(x)
    recon = model.likelihood.nll(out.params, x).mean()
    kl = kl_to_standard_normal(out.mu, out.logvar).mean()
    return LossTerms(loss=recon + beta * kl, recon=recon, kl=kl, elbo=-(recon + kl))
