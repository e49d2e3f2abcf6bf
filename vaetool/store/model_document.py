"""How a model config is written in a checkpoint's metadata: one flat table, as the first
releases wrote it — the likelihood's options beside the model's own fields.

In memory a :class:`ModelConfig` holds the likelihood's options as its own table
(``likelihood_options``); on disk they sit flat (``"sigma2": 0.01`` next to ``"latents"``), so
checkpoints read by earlier releases and by other tools keep their shape. Checkpoints written
before the likelihoods owned their options carry every likelihood's options (a Bernoulli model's
``sigma2``, ``noise_fit`` …): those of other likelihoods are dropped when read.
"""

from __future__ import annotations

from dataclasses import fields
from typing import Any

from vaetool.config import ModelConfig
from vaetool.errors import ConfigError
from vaetool.likelihoods import LIKELIHOODS, resolve_likelihood_options
from vaetool.options import type_ok


def model_document(config: ModelConfig) -> dict[str, Any]:
    """The flat table a checkpoint stores for ``config``."""
    flat = config.to_dict()
    options = flat.pop("likelihood_options")
    return {**flat, **options}


def model_from_document(raw: dict[str, Any]) -> ModelConfig:
    """The model config of a checkpoint's flat table (every field checked)."""
    if not isinstance(raw, dict):
        raise ConfigError(f"ModelConfig: expected a mapping, got {type(raw).__name__}")
    own = {f.name for f in fields(ModelConfig)} - {"likelihood_options"}
    model = {k: v for k, v in raw.items() if k in own}
    rest = {k: v for k, v in raw.items() if k not in own}
    name = model.get("likelihood", ModelConfig.likelihood)
    if not isinstance(name, str):
        raise ConfigError(f"likelihood {name!r}: expected str")
    mine = {f.name for f in fields(LIKELIHOODS.get(name).Options)}
    legacy = _legacy_options()
    unknown = sorted(set(rest) - mine - set(legacy))
    if unknown:
        raise ConfigError(
            f"ModelConfig: unknown key {unknown[0]!r}; expected some of "
            f"{', '.join(sorted(own | mine))}"
        )
    for key, value in rest.items():  # another likelihood's option, as older writers kept it
        if key not in mine and not type_ok(value, legacy[key]):
            raise ConfigError(f"{key} {value!r}: expected {legacy[key]}")
    options = {k: v for k, v in rest.items() if k in mine}
    return ModelConfig.from_dict(
        {**model, "likelihood_options": resolve_likelihood_options(name, options)}
    )


def _legacy_options() -> dict[str, str]:
    """Every likelihood's option names with their types."""
    return {
        f.name: str(f.type) for name in LIKELIHOODS for f in fields(LIKELIHOODS.get(name).Options)
    }
