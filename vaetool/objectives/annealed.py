"""Annealed capacity (Burgess et al. 2018, eq. 8; MATH.md §9): mean_i rec_i + γ |mean_i KL_i − C(t)|
with the capacity C(t) growing linearly from 0 to C_max over T steps."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from vaetool.config import check_finite
from vaetool.errors import ConfigError
from vaetool.objectives.base import OBJECTIVES, Objective
from vaetool.options import option


@dataclass(frozen=True)
class AnnealedOptions:
    """Defaults: dlib ``AnnealedVAE`` (γ = 1000, T = 10⁵ steps) with disvae's C_max = 25 nats
    (dSprites); dlib sweeps C_max in {5, 10, 25, 50, 75, 100}, disvae uses γ = 100."""

    gamma: float = option(1000.0, "γ, the weight of |KL − C(t)|")
    capacity: float = option(25.0, "C_max, the capacity reached, nats")
    capacity_steps: int = option(100_000, "T, steps for the capacity to reach C_max")

    def __post_init__(self) -> None:
        check_finite("‹gamma›", self.gamma)
        check_finite("‹capacity›", self.capacity)
        if self.capacity_steps < 1:
            raise ConfigError(f"‹capacity_steps› {self.capacity_steps}: expected at least 1")


def capacity_at(step: Tensor, capacity: float, steps: int) -> Tensor:
    """C(t) = min(C_max, C_max·t/T) (Burgess et al. 2018, eq. 8; MATH.md §9), 0-dim float."""
    return (step.to(torch.float32) * (capacity / steps)).clamp(max=capacity)


@OBJECTIVES.register("annealed_vae")
class AnnealedVAE(Objective):
    """Annealed capacity (Burgess et al. 2018): recon + γ·|KL − C(t)| (MATH.md §9)."""

    Options = AnnealedOptions
    extra_terms = ("capacity",)

    def losses(self, x: Tensor) -> dict[str, Tensor]:
        _, recon, kl = self.forward_terms(x)
        recon, kl = recon.mean(), kl.mean()
        c = capacity_at(self.step, self.options.capacity, self.options.capacity_steps)
        return {
            "loss": recon + self.options.gamma * (kl - c).abs(),
            "recon": recon,
            "kl": kl,
            "elbo": -(recon + kl),
            "capacity": c,
        }
