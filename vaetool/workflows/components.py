"""Every registered component family, by the name a user sees: the one source of the names the
CLI and the docs offer (`vaetool components`). Adding a component to a registry adds it here."""

from __future__ import annotations

import inspect
from dataclasses import dataclass, is_dataclass

from vaetool.options import OptionDoc, option_docs
from vaetool.registry import Registry


@dataclass(frozen=True)
class Component:
    family: str
    name: str
    doc: str  # the first line of the component's docstring ("" when it has none)
    options: tuple[OptionDoc, ...] = ()  # what its Options dataclass holds (name, type, default)


def families() -> dict[str, Registry]:
    """Family -> its registry (importing them all: torch is loaded)."""
    from vaetool.analysis.classify import PROBES
    from vaetool.analysis.estimators import ESTIMATORS
    from vaetool.analysis.metrics import METRICS
    from vaetool.analysis.pruning import FACTOR_ORDERS
    from vaetool.analysis.qstar import QSTAR_VARIANTS
    from vaetool.data import DATASETS
    from vaetool.importers import IMPORTERS
    from vaetool.likelihoods import LIKELIHOODS
    from vaetool.models import ARCHITECTURES, ENCODERS
    from vaetool.models.latents import LATENTS
    from vaetool.objectives import OBJECTIVES
    from vaetool.workflows.prune import TASKS

    return {
        "dataset": DATASETS,
        "architecture": ARCHITECTURES,
        "encoder": ENCODERS,
        "latent": LATENTS,
        "likelihood": LIKELIHOODS,
        "objective": OBJECTIVES,
        "estimator": ESTIMATORS,
        "variant": QSTAR_VARIANTS,
        "rank-by": FACTOR_ORDERS,
        "probe": PROBES,
        "task": TASKS,
        "metric": METRICS,
        "import": IMPORTERS,
    }


def components(family: str | None = None) -> list[Component]:
    """Every component (of ``family`` only, when given), in registry order."""
    from vaetool.errors import ConfigError, field

    known = families()
    if family is not None and family not in known:
        raise ConfigError(f"{field('family')} {family!r}: expected one of {', '.join(known)}")
    chosen = {family: known[family]} if family else known
    return [Component(f, name, _first_line(registry.get(name)), _options(registry.get(name)))
            for f, registry in chosen.items() for name in registry.names()]  # fmt: skip


def _options(obj: object) -> tuple[OptionDoc, ...]:
    """The component's options when it declares an ``Options`` dataclass."""
    options = getattr(obj, "Options", None)
    return tuple(option_docs(options)) if is_dataclass(options) else ()


def _first_line(obj: object) -> str:
    doc = inspect.getdoc(obj) or ""
    return doc.strip().splitlines()[0] if doc.strip() else ""
