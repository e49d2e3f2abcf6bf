"""Keeping the top-k factors (paper 000, Tables 1-2, Fig. 4; MATH.md §5).

Factors are ranked (by I_h, or by another statistic for comparison); for a ratio r of the H
factors, k = floor(r·H) for r > 0 (at least 1) and k = 0 for r = 0. Pruned factors are set to 0,
the prior mean, before decoding: x_rec = dec(mu_kept, 0).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction

import torch
from torch import Tensor

from vaetool.analysis.classify import ProbeAccuracy
from vaetool.analysis.ranking import Ranking
from vaetool.data.feed import DeviceFeed
from vaetool.device import REDUCE_DTYPE, inference_batch_size
from vaetool.errors import ConfigError
from vaetool.models import VAE
from vaetool.options import comma_list
from vaetool.registry import Registry

PAPER_TOP = "100%,20%,10%,7%,5%,4%,3%,2%,1%,0%"  # paper 000, Table 1 (percent of H)
KEEP_RULE = "k = floor(r·H) for a ratio r > 0, at least 1; k = 0 for 0 %"
_NUMBER = re.compile(r"^\d+(\.\d+)?$")
_TOP_HELP = "expected percents (10%), counts (13) or a comma list of them (100%,20%,10% or 1,2,4)"


@dataclass(frozen=True)
class KeepSpec:
    """One row of a prune table: a ratio of H (``percent``) or a count (``count``)."""

    label: str  # as shown: "10%" or "13"
    percent: Fraction | None = None
    count: int | None = None

    def keep_count(self, num_factors: int) -> int:
        """k for H = ``num_factors`` (MATH.md §5; :data:`KEEP_RULE`), exact in rationals."""
        if self.count is not None:
            if self.count > num_factors:
                raise ConfigError(
                    f"‹top› {self.count}: more factors than the model has (H = {num_factors}); "
                    f"for a percent write {self.count}%"
                )
            return self.count
        ratio = (self.percent or Fraction(0)) / 100
        return 0 if ratio == 0 else max(1, math.floor(ratio * num_factors))


def keep_count(percent: float | str, num_factors: int) -> int:
    """k for ``percent`` % of H = ``num_factors`` (MATH.md §5): floor(r·H), at least 1, 0 at 0 %."""
    return KeepSpec(f"{percent}%", percent=Fraction(str(percent))).keep_count(num_factors)


def parse_top(text: str) -> list[KeepSpec]:
    """Rows of a prune table: ``10%`` (a percent of H), ``13`` (a count), or a comma list of
    either (``100%,20%,10%``, ``1,2,4,8``, mixed too), one row per item in the given order."""
    items = comma_list("top", text, _TOP_HELP.removeprefix("expected "))
    return [_keep_spec(item, text) for item in items]


def _keep_spec(item: str, text: str) -> KeepSpec:
    if item.endswith("%"):
        number = item[:-1].strip()
        if not _NUMBER.match(number) or not 0 <= Fraction(number) <= 100:
            raise ConfigError(f"‹top› {text!r}: {item!r} is not a percent between 0 and 100")
        value = Fraction(number)
        return KeepSpec(f"{float(value):g}%", percent=value)
    if not item.isdigit():
        raise ConfigError(f"‹top› {text!r}: {item!r} is neither a percent nor a count; {_TOP_HELP}")
    return KeepSpec(str(int(item)), count=int(item))


@dataclass(frozen=True, eq=False)
class PruneRows:
    """The rows of a prune table: which factors each row keeps.

    ``specs`` and ``counts`` (k) per row; ``kept`` the factor indices in rank order;
    ``mi_used`` (R,) float64 Σ_kept I_h in nats (ranking estimator); ``order`` (H,) int64 the
    order factors are kept in (``rank_by``); ``masks`` (R, H) float32, 1 for a kept factor.
    """

    specs: list[KeepSpec]
    counts: list[int]
    kept: list[list[int]]
    mi_used: Tensor
    rank_by: str
    order: Tensor
    masks: Tensor
    ranking: Ranking


def prune_rows(
    ranking: Ranking, specs: list[KeepSpec], rank_by: str = "mi", seed: int = 0
) -> PruneRows:
    """Rows keeping, for each spec, the first k factors of the ``rank_by`` order."""
    h = len(ranking.order)
    counts = [spec.keep_count(h) for spec in specs]
    order = factor_order(ranking, rank_by, seed)
    masks = keep_masks(order, counts, h)
    kept = [order[:k].tolist() for k in counts]
    mi_used = masks.double() @ ranking.mi.double()
    return PruneRows(specs, counts, kept, mi_used, rank_by, order, masks, ranking)


@dataclass(frozen=True, eq=False)
class ReconstructionTable:
    """Paper 000, Table 1: ``sse`` (R,) float64 per-image sum of squared errors on [0, 1]
    pixels, ``mse_pixel`` (R,) per pixel, over ``n_test`` images; ``compare_sse`` maps each
    other order (``--compare``) to its (R,) SSE at the same k."""

    rows: PruneRows
    sse: Tensor
    mse_pixel: Tensor
    n_test: int
    compare_sse: dict[str, Tensor]


@dataclass(frozen=True, eq=False)
class ClassificationTable:
    """Paper 000, Table 2: probe accuracies per row (see :class:`ProbeAccuracy`), the test
    labels' entropy H(Y) in nats, the class count K, and ``fano`` (R,) float64: Fano's lower
    bound on the error of any classifier fed z ~ q(z|x) with the row's factors kept."""

    rows: PruneRows
    accuracy: ProbeAccuracy
    label_entropy: float
    num_classes: int
    n_train: int
    n_test: int
    fano: Tensor


FactorOrder = Callable[[Ranking, int], Tensor]
FACTOR_ORDERS: Registry[FactorOrder] = Registry("ranking statistic", "‹rank_by›")
# Names that were ambiguous and are refused with a pointer to what replaced them.
RETIRED_ORDERS = {
    "variance": "use aggregate_variance (s²_h of q*, paper 000 Fig. 1's σ²_{z_h}, largest first) "
    "or posterior_variance (mean posterior variance E σ²_h, smallest first)",
    "active": "use var_mu (Var_n mu_h, the active-units statistic)",
}


@FACTOR_ORDERS.register("mi")
def _by_mi(ranking: Ranking, seed: int) -> Tensor:
    """I_h of the ranking estimator, largest first: the paper's indicator."""
    return ranking.order


@FACTOR_ORDERS.register("aggregate_variance")
def _by_aggregate_variance(ranking: Ranking, seed: int) -> Tensor:
    """s²_h of q*, largest first: PCA's rule, which paper 000 (Fig. 1) argues cannot find the
    influential factors (MATH.md §2: the paper's σ²_{z_h})."""
    values = ranking.indicators.aggregate_variance.cpu()
    return torch.sort(values, descending=True, stable=True).indices


@FACTOR_ORDERS.register("posterior_variance")
def _by_posterior_variance(ranking: Ranking, seed: int) -> Tensor:
    """Mean posterior variance E_n σ²[n,h], smallest first (a used factor is certain)."""
    return torch.sort(ranking.indicators.mean_posterior_variance.cpu(), stable=True).indices


@FACTOR_ORDERS.register("var_mu")
def _by_var_mu(ranking: Ranking, seed: int) -> Tensor:
    """Var_n mu[n,h], largest first: the active-units statistic (Burda et al.)."""
    values = ranking.indicators.var_posterior_mean.cpu()
    return torch.sort(values, descending=True, stable=True).indices


@FACTOR_ORDERS.register("kl")
def _by_kl(ranking: Ranking, seed: int) -> Tensor:
    """KLprior_h, largest first: the per-factor β-VAE rate."""
    return torch.sort(ranking.indicators.kl_prior.cpu(), descending=True, stable=True).indices


@FACTOR_ORDERS.register("random")
def _by_chance(ranking: Ranking, seed: int) -> Tensor:
    """A seeded random permutation: the baseline any indicator must beat."""
    return torch.randperm(len(ranking.order), generator=torch.Generator().manual_seed(seed))


def check_order(by: str) -> str:
    """``by`` if it names a registered order; a ConfigError naming the replacement otherwise."""
    if by in RETIRED_ORDERS:
        raise ConfigError(f"‹rank_by› {by}: ambiguous and no longer accepted; {RETIRED_ORDERS[by]}")
    FACTOR_ORDERS.get(by)
    return by


def factor_order(ranking: Ranking, by: str = "mi", seed: int = 0) -> Tensor:
    """Factor indices (H,) int64 in the order ``by`` keeps them (see :data:`FACTOR_ORDERS`)."""
    return FACTOR_ORDERS.get(check_order(by))(ranking, seed)


def keep_masks(order: Tensor, counts: list[int], num_factors: int) -> Tensor:
    """(R, H) float masks: row r keeps the first ``counts[r]`` factors of ``order``."""
    position = torch.empty(num_factors, dtype=torch.long)
    position[order] = torch.arange(num_factors)  # rank of each factor
    return (position[None, :] < torch.tensor(counts)[:, None]).to(torch.float32)


def masked_inputs(model: VAE, codes: Tensor, masks: Tensor, keep_code: bool = True) -> Tensor:
    """Decoder inputs of every mask row at once: codes (B, H + K) at the posterior mode, masks
    (R, H) -> (R·B, H + K) with each pruned z_h at 0 (paper 000) and a categorical code kept
    or, when not ``keep_code``, at the uniform prior's mean 1/K (vaetool.models.slicing)."""
    k = model.categories
    if k:
        code_mask = masks.new_full((masks.shape[0], k), 1.0 if keep_code else 0.0)
        masks = torch.cat([masks, code_mask], dim=1)
    fill = model.prior_fill(codes)  # (H + K,)
    return (fill + masks[:, None, :] * (codes[None] - fill)).flatten(0, 1)


@torch.no_grad()
def reconstruction_errors(
    model: VAE, feed: DeviceFeed, masks: Tensor, keep_code: bool = True
) -> tuple[Tensor, Tensor]:
    """Per-image SSE and per-pixel MSE on [0, 1] pixels for each mask row (R,), float64.

    One pass over ``feed``: encode each batch to its mode [mu, one-hot code] (B, H + K), prune
    every mask at once (:func:`masked_inputs`), decode (R·B) images with the likelihood's mean
    and sum squared errors (paper 000, Table 1's "mean square error" column matches half the
    per-image sum at the full code: docs/reproduction.md). Decoder
    batches are split so R·B stays at the device's inference batch size.
    """
    masks = masks.to(feed.device)
    rows = masks.shape[0]
    sse = torch.zeros(rows, dtype=REDUCE_DTYPE, device=feed.device)
    batch = max(1, inference_batch_size(feed.device) // max(rows, 1))
    for x in feed.batches(batch):
        z = masked_inputs(model, model.mode(x), masks, keep_code)  # (R·B, H + K)
        recon = model.decode_mean(z).view(rows, *x.shape)  # (R, B, C, H, W)
        sse += (recon - x[None]).square().flatten(2).sum(2).to(REDUCE_DTYPE).sum(1)
    per_image = sse / len(feed)
    pixels = math.prod(model.config.image_shape)
    return per_image.cpu(), (per_image / pixels).cpu()


@torch.no_grad()
def reconstruction_grid(
    model: VAE, images: Tensor, masks: Tensor, keep_code: bool = True
) -> Tensor:
    """Paper 000, Fig. 4: (n, 1 + R, C, H, W) float in [0, 1] on the CPU.

    Column 0 holds the ``images`` (n, C, H, W) themselves; column 1 + r their reconstructions
    with mask row r (pruned factors set to 0), decoded with the likelihood's mean.
    """
    masks = masks.to(images.device)
    z = masked_inputs(model, model.mode(images), masks, keep_code)  # (R·n, H + K)
    recon = model.decode_mean(z).view(masks.shape[0], *images.shape).transpose(0, 1)
    return torch.cat([images[:, None], recon], dim=1).clamp(0, 1).cpu()
