"""What a traversal shows: which factors (chosen by information), how many seeds, which grid.

``TraversalPlan`` is the validated form of `vaetool traverse`'s options; ``select_factors`` turns
it and the ranking's I_h into factor indices, most informative first; ``traverse_plan`` decodes
the plan around given seed posterior means (MATH.md §6). Choosing and encoding the seed images is
the workflow's job (vaetool.workflows.traverse).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from vaetool.analysis.indicators import INFLUENTIAL_THRESHOLD_NATS
from vaetool.analysis.traversal import (
    DEFAULT_RANGE,
    DEFAULT_STEPS,
    FactorTraversal,
    PairTraversal,
    check_factors,
    factor_traversal,
    pair_traversal,
    traversal_values,
)
from vaetool.errors import ConfigError
from vaetool.models import VAE

DEFAULT_SEEDS = 8


@dataclass(frozen=True)
class TraversalPlan:
    """Validated traversal options; at most one of ``factors``, ``top``, ``min_mi``, ``pair``.

    With none of them, all factors with I_h > 0.5 nats (the influential ones) are shown.
    """

    factors: tuple[int, ...] = ()  # these factor indices (--factor)
    top: int | None = None  # the K most informative factors (--top)
    min_mi: float | None = None  # every factor with I_h > min_mi nats (--min-mi)
    pair: tuple[int, int] | None = None  # a 2-D grid over two factors (--pair)
    seeds: int | None = None  # the first N images of the test split (default 8)
    seed_indices: tuple[int, ...] = ()  # or these positions in the test split
    value_range: tuple[float, float] = DEFAULT_RANGE  # z_h from LO to HI (offsets if relative)
    steps: int = DEFAULT_STEPS  # values per traversal
    relative: bool = False  # sweep mu_h + [LO, HI] around each seed (paper 002, Fig. 3)
    code: bool = False  # the categorical code's K classes per seed (paper 001 Figs. 4–5)

    def __post_init__(self) -> None:
        chosen = [self.factors != (), self.top is not None, self.min_mi is not None]
        if self.code and (any(chosen) or self.pair is not None or self.relative):
            raise ConfigError("‹code› sweeps the categorical code's classes: drop ‹factor›, "
                              "‹top›, ‹min_mi›, ‹pair› and ‹relative›")  # fmt: skip
        if sum(chosen) > 1:
            raise ConfigError("‹factor›, ‹top› and ‹min_mi› choose factors differently: give one")
        if self.pair is not None and any(chosen):
            raise ConfigError("‹pair› names its two factors: drop ‹factor›, ‹top› and ‹min_mi›")
        if self.pair is not None and self.pair[0] == self.pair[1]:
            raise ConfigError(
                f"‹pair› {self.pair[0]} {self.pair[1]}: expected two different factors"
            )
        if self.top is not None and self.top < 1:
            raise ConfigError(f"‹top› {self.top}: expected at least 1 factor")
        if self.seeds is not None and self.seed_indices:
            raise ConfigError("‹seeds› and ‹seed_index› both choose seed images: give one of them")
        if self.seeds is not None and self.seeds < 1:
            raise ConfigError(f"‹seeds› {self.seeds}: expected at least 1 seed image")
        traversal_values(*self.value_range, self.steps)  # checks steps >= 2 and LO < HI

    @property
    def threshold(self) -> float:
        """The I_h threshold (nats) that marks factors influential in the pulse plot."""
        return INFLUENTIAL_THRESHOLD_NATS if self.min_mi is None else self.min_mi

    @property
    def by_threshold(self) -> bool:
        """True in the "all factors above a threshold" mode (the default, or --min-mi)."""
        return self.pair is None and not self.factors and self.top is None and not self.code

    def values(self) -> Tensor:
        """The swept values (or offsets when relative): (steps,) float32."""
        return traversal_values(*self.value_range, self.steps)

    def check_latents(self, latents: int) -> None:
        """Raise a ConfigError if a factor index or --top does not fit H = ``latents``."""
        check_factors(self.factors, latents)
        check_factors(self.pair or (), latents, option="‹pair›")
        if self.top is not None and self.top > latents:
            raise ConfigError(f"‹top› {self.top}: expected 1 to {latents} (the model's H)")


def select_factors(mi: Tensor, request: TraversalPlan) -> list[int]:
    """Factor indices to traverse, most informative first (ties in index order).

    mi (H,) nats, e.g. ``Ranking.mi``. Explicit ``factors`` are de-duplicated and ordered by
    I_h too; ``top`` takes the first K; otherwise every factor with I_h > ``request.threshold``.
    """
    order = [int(h) for h in torch.sort(mi.cpu(), descending=True, stable=True).indices]
    if request.factors:
        wanted = set(request.factors)
        return [h for h in order if h in wanted]
    if request.top is not None:
        return order[: request.top]
    chosen = [h for h in order if float(mi[h]) > request.threshold]
    if not chosen:
        best = order[0]
        raise ConfigError(
            f"‹min_mi› {request.threshold:g}: no factor has I_h above it (the largest is "
            f"{float(mi[best]):.3g} nats, factor {best}); lower ‹min_mi› or use ‹top› K"
        )
    return chosen


def traverse_plan(
    model: VAE,
    plan: TraversalPlan,
    seed_mu: Tensor,
    mi: Tensor | None = None,
    seed_rows: Sequence[int] | None = None,
) -> FactorTraversal | PairTraversal:
    """Select factors by ``mi`` (H,) nats and decode the grid around ``seed_mu`` (S, H + K),
    the seeds' decoder inputs at the posterior mode (a categorical code stays at its class).

    ``mi`` is required unless the plan names its factors (``factors`` or ``pair``); it also
    labels the blocks. Returns a :class:`PairTraversal` for ``pair``, else a
    :class:`FactorTraversal` with blocks ordered by I_h.
    """
    plan.check_latents(model.config.latents)
    options = {"relative": plan.relative, "mi": mi, "seed_rows": seed_rows}
    if plan.pair is not None:
        return pair_traversal(model, seed_mu, *plan.pair, plan.values(), **options)
    return factor_traversal(model, seed_mu, _block_factors(plan, mi), plan.values(), **options)


def _block_factors(request: TraversalPlan, mi: Tensor | None) -> list[int]:
    """One-factor blocks: by I_h when ``mi`` (H,) is known, else as given (duplicates dropped)."""
    if mi is not None:
        return select_factors(mi, request)
    if not request.factors:
        raise ConfigError("‹top› and ‹min_mi› need the factors' I_h: pass the ranking's mi")
    return list(dict.fromkeys(request.factors))
