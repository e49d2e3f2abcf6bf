"""β-VAE (Higgins et al. 2017; MATH.md §9): mean_i [rec_i + β KL_i]; β = 1 is the plain VAE."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from torch import Tensor

from vaetool.config import check_finite
from vaetool.objectives.base import OBJECTIVES, Objective
from vaetool.options import option


@dataclass(frozen=True)
class BetaVAEOptions:
    beta: float = option(1.0, "β, the weight of the KL term (dlib sweeps 1, 2, 4, 6, 8, 16)")

    def __post_init__(self) -> None:
        check_finite("‹beta›", self.beta)


@OBJECTIVES.register("beta_vae")
class BetaVAE(Objective):
    """β-VAE (Higgins et al. 2017): recon + β·KL; β = 1 is the plain VAE (MATH.md §9)."""

    Options = BetaVAEOptions

    @classmethod
    def kl_weight(cls, options: dict[str, Any]) -> float | None:
        return float(options.get("beta", BetaVAEOptions.beta))

    def losses(self, x: Tensor) -> dict[str, Tensor]:
        _, recon, kl = self.forward_terms(x)
        recon, kl = recon.mean(), kl.mean()
        return {
            "loss": recon + self.options.beta * kl,
            "recon": recon,
            "kl": kl,
            "elbo": -(recon + kl),
        }
