"""Training objectives (MATH.md §9), registered by name; each is an :class:`Objective` class.

objective = build_objective("beta_vae", {"beta": 4.0}, model, context)
terms = objective.train_step(x)        # {"loss": …, "recon": …, "kl": …, "elbo": …}
"""

from __future__ import annotations

from typing import Any

from vaetool.models import VAE
from vaetool.objectives.annealed import AnnealedVAE
from vaetool.objectives.base import COMMON_TERMS, Objective, TrainContext, make_options
from vaetool.objectives.beta_vae import BetaVAE
from vaetool.objectives.dip import DIPVAEI, DIPVAEII
from vaetool.objectives.factor_vae import FactorVAE
from vaetool.objectives.tcvae import BetaTCVAE
from vaetool.objectives.vmi import VMIRegularised
from vaetool.registry import Registry

OBJECTIVES: Registry[type[Objective]] = Registry("objective", "‹objective›")
OBJECTIVES.register("beta_vae")(BetaVAE)
OBJECTIVES.register("annealed_vae")(AnnealedVAE)
OBJECTIVES.register("beta_tcvae")(BetaTCVAE)
OBJECTIVES.register("factor_vae")(FactorVAE)
OBJECTIVES.register("dip_vae_i")(DIPVAEI)
OBJECTIVES.register("dip_vae_ii")(DIPVAEII)
OBJECTIVES.register("vmi")(VMIRegularised)


def resolve_options(name: str, raw: dict[str, Any]) -> dict[str, Any]:
    """The objective's options with defaults filled in, as a plain dict (for the config)."""
    from dataclasses import asdict

    cls = OBJECTIVES.get(name)
    return asdict(make_options(name, cls.Options, raw))


def build_objective(
    name: str, options: dict[str, Any], model: VAE, context: TrainContext
) -> Objective:
    """The objective ``name`` for ``model`` with ``options`` (checked) on ``context.device``."""
    cls = OBJECTIVES.get(name)
    return cls(model, make_options(name, cls.Options, options), context).to(context.device)


__all__ = [
    "COMMON_TERMS",
    "OBJECTIVES",
    "Objective",
    "TrainContext",
    "build_objective",
    "resolve_options",
]
