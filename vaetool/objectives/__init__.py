"""Training objectives (MATH.md §9), registered by name; each is an :class:`Objective` class.

objective = build_objective("beta_vae", {"beta": 4.0}, model, context)
terms = objective.train_step(x)        # {"loss": …, "recon": …, "kl": …, "elbo": …}
"""

from __future__ import annotations

from typing import Any

from vaetool.config import ModelConfig
from vaetool.errors import ConfigError
from vaetool.models import VAE

# each module registers its objectives with @OBJECTIVES.register when imported
from vaetool.objectives import annealed, beta_vae, dip, factor_vae, tcvae, vmi  # noqa: F401
from vaetool.objectives.base import COMMON_TERMS, OBJECTIVES, Objective, TrainContext
from vaetool.options import make_options


def resolve_options(name: str, raw: dict[str, Any]) -> dict[str, Any]:
    """The objective's options with defaults filled in, as a plain dict (for the config)."""
    from dataclasses import asdict

    cls = OBJECTIVES.get(name)
    return asdict(make_options("objective", name, cls.Options, raw))


def check_fits(name: str, options: dict[str, Any], config: ModelConfig) -> None:
    """Refuse the objective ``name`` with ``options`` for the model ``config``: options that do
    not fit it (a regularised factor it lacks), or a categorical code the loss leaves out."""
    cls = OBJECTIVES.get(name)
    cls.check_model(options, config)
    if config.categories and not cls.supports_code:
        codes = ", ".join(n for n in OBJECTIVES.names() if OBJECTIVES.get(n).supports_code)
        raise ConfigError(
            f"‹objective› {name} with ‹categories› {config.categories}: its loss "
            f"decomposes the Gaussian KL only; a categorical code trains with {codes}"
        )


def build_objective(
    name: str, options: dict[str, Any], model: VAE, context: TrainContext
) -> Objective:
    """The objective ``name`` for ``model`` with ``options`` (checked) on ``context.device``."""
    cls = OBJECTIVES.get(name)
    return cls(model, make_options("objective", name, cls.Options, options), context).to(
        context.device
    )


__all__ = [
    "COMMON_TERMS",
    "OBJECTIVES",
    "Objective",
    "TrainContext",
    "build_objective",
    "check_fits",
    "resolve_options",
]
