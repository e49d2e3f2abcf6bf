"""How a model config is written in a checkpoint's metadata: one flat table, as the first
releases wrote it — each component's options beside the model's own fields.

In memory a :class:`ModelConfig` holds the options of its likelihood and encoder as their own
tables (``likelihood_options``, ``encoder_options``); on disk they sit flat (``"sigma2": 0.01``
and ``"split_width": 256`` next to ``"latents"``), so checkpoints keep the shape earlier releases
and other tools read. Checkpoints written before the components owned their options carry every
component's options (a Bernoulli model's ``sigma2``, a paper encoder's ``split_width`` …): those
of components other than the model's are type-checked and dropped when read.
"""

from __future__ import annotations

from dataclasses import fields
from typing import Any

from vaetool.config import ModelConfig
from vaetool.errors import ConfigError
from vaetool.models import (
    ARCHITECTURES,
    MODEL_COMPONENTS,
    option_fields,
    resolve_component_options,
)
from vaetool.options import type_ok

OWN = {f.name for f in fields(ModelConfig)} - {f"{family}_options" for family in MODEL_COMPONENTS}


def model_document(config: ModelConfig) -> dict[str, Any]:
    """The flat table a checkpoint stores for ``config``."""
    flat = config.to_dict()
    for family in MODEL_COMPONENTS:
        flat.update(flat.pop(f"{family}_options"))
    return flat


def model_from_document(raw: dict[str, Any]) -> ModelConfig:
    """The model config of a checkpoint's flat table (every field checked)."""
    if not isinstance(raw, dict):
        raise ConfigError(f"ModelConfig: expected a mapping, got {type(raw).__name__}")
    model = {k: v for k, v in raw.items() if k in OWN}
    architecture = model.get("architecture")
    if architecture is None or model.get("image_shape") is None:
        raise ConfigError("ModelConfig: a stored model needs its architecture and image_shape")
    if not isinstance(architecture, str) or architecture not in ARCHITECTURES:
        raise ConfigError(f"architecture {architecture!r}: expected one of "
                          f"{', '.join(ARCHITECTURES.names())}")  # fmt: skip
    rest = {k: v for k, v in raw.items() if k not in OWN}
    for family in MODEL_COMPONENTS:
        name = model.get(family, getattr(ModelConfig, family))
        if not isinstance(name, str):
            raise ConfigError(f"{family} {name!r}: expected str")
        mine = option_fields(family, name)
        model[f"{family}_options"] = resolve_component_options(
            family, name, {k: rest.pop(k) for k in list(rest) if k in mine}
        )
    legacy = _all_options()
    for key, value in rest.items():  # another component's option, as older writers kept it
        if key not in legacy:
            raise ConfigError(f"ModelConfig: unknown key {key!r}; expected some of "
                              f"{', '.join(sorted(OWN))} and the components' options")  # fmt: skip
        if not type_ok(value, legacy[key]):
            raise ConfigError(f"{key} {value!r}: expected {legacy[key]}")
    return ModelConfig.from_dict(model)


def _all_options() -> dict[str, str]:
    """Every option of every registered model component, with its type."""
    return {option: hint for family, registry in MODEL_COMPONENTS.items() for name in registry
            for option, hint in option_fields(family, name).items()}  # fmt: skip
