"""Keeping the top-k factors (paper 000, Tables 1-2, Fig. 4; MATH.md §5).

Factors are ranked (by I_h, or by another statistic for comparison); for a ratio r of the H
factors, k = 0 if r = 0 else max(1, round(r·H)) with halves rounded up. Pruned factors are set to
0, the prior mean, before decoding: x_rec = dec(mu_kept, 0).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from vaetool.analysis.classify import ProbeAccuracy
from vaetool.analysis.ranking import Ranking
from vaetool.data.feed import DeviceFeed
from vaetool.device import REDUCE_DTYPE, inference_batch_size
from vaetool.errors import ConfigError
from vaetool.models import VAE
from vaetool.registry import Registry

PAPER_RATIOS = "100,20,10,7,5,4,3,2,1,0"  # paper 000, Table 1 (percent of H)
ROUNDING_RULE = "k = 0 for 0 %, else max(1, round(r·H)) with halves rounded up"
_NUMBER = re.compile(r"^\d+(\.\d+)?$")


@dataclass(frozen=True)
class KeepSpec:
    """One row of a prune table: a ratio of H (``percent``) or a count (``count``)."""

    label: str  # as shown: "10%" or "13"
    percent: float | None = None
    count: int | None = None

    def keep_count(self, num_factors: int) -> int:
        """k for H = ``num_factors``; MATH.md §5's rule for ratios."""
        if self.count is not None:
            if self.count > num_factors:
                raise ConfigError(
                    f"--top {self.count}: more factors than the model has (H = {num_factors})"
                )
            return self.count
        ratio = (self.percent or 0.0) / 100.0
        return 0 if ratio == 0 else max(1, math.floor(ratio * num_factors + 0.5))


def parse_top(text: str) -> list[KeepSpec]:
    """``10%`` (a percent of H), ``13`` (a count), or a list ``100,20,10,...`` of percents.

    Items of a list are percents with or without ``%``; a single bare number is a count.
    """
    items = [item.strip() for item in text.split(",")]
    if not text.strip() or any(not item for item in items):
        raise ConfigError(
            f"--top {text!r}: expected a percent (10%), a count (13) or a list of percents"
        )
    if len(items) == 1 and not items[0].endswith("%"):
        if not items[0].isdigit():
            raise ConfigError(
                f"--top {text!r}: expected a percent (10%), a count (13) or a list of percents"
            )
        return [KeepSpec(items[0], count=int(items[0]))]
    return [_percent(item, text) for item in items]


def _percent(item: str, text: str) -> KeepSpec:
    number = item[:-1] if item.endswith("%") else item
    if not _NUMBER.match(number) or not 0 <= float(number) <= 100:
        raise ConfigError(f"--top {text!r}: {item!r} is not a percent between 0 and 100")
    value = float(number)
    return KeepSpec(f"{value:g}%", percent=value)


@dataclass(frozen=True, eq=False)
class PruneResult:
    """A prune table, one entry per row.

    ``specs``, ``counts`` (k), ``kept`` (factor indices in rank order), ``mi_used`` (Σ_kept I_h,
    nats), ``sse`` (per-image sum of squared errors) and ``mse_pixel``: (R,) float64.
    ``compare_sse``: ranking name -> (R,) SSE of the baselines (--compare). ``accuracy``,
    ``label_entropy`` (nats) and ``num_classes`` for the classification task.
    """

    specs: list[KeepSpec]
    counts: list[int]
    kept: list[list[int]]
    mi_used: Tensor
    sse: Tensor
    mse_pixel: Tensor
    ranking: Ranking
    rank_by: str
    order: Tensor  # (H,) int64: the factor order the rows keep from (``rank_by``)
    n_test: int
    compare_sse: dict[str, Tensor] | None = None
    accuracy: ProbeAccuracy | None = None
    label_entropy: float | None = None
    num_classes: int | None = None


RANKERS: Registry[Callable[[Ranking, int], Tensor]] = Registry("ranking statistic")


@RANKERS.register("mi")
def _by_mi(ranking: Ranking, seed: int) -> Tensor:
    """I_h descending: the paper's indicator."""
    return ranking.order


@RANKERS.register("variance")
def _by_posterior_variance(ranking: Ranking, seed: int) -> Tensor:
    """Mean posterior variance E σ²_h ascending (paper 000 Fig. 1's σ²_{z_h})."""
    return torch.sort(ranking.indicators.mean_posterior_variance.cpu(), stable=True).indices


@RANKERS.register("kl")
def _by_kl(ranking: Ranking, seed: int) -> Tensor:
    """KLprior_h descending: the per-factor β-VAE rate."""
    return torch.sort(ranking.indicators.kl_prior.cpu(), descending=True, stable=True).indices


@RANKERS.register("active")
def _by_active(ranking: Ranking, seed: int) -> Tensor:
    """Var_n mu_h descending: the active-units statistic."""
    values = ranking.indicators.var_posterior_mean.cpu()
    return torch.sort(values, descending=True, stable=True).indices


@RANKERS.register("random")
def _by_chance(ranking: Ranking, seed: int) -> Tensor:
    """A seeded random permutation: the baseline any indicator must beat."""
    return torch.randperm(len(ranking.order), generator=torch.Generator().manual_seed(seed))


def factor_order(ranking: Ranking, by: str = "mi", seed: int = 0) -> Tensor:
    """Factor indices (H,) int64 in the order ``by`` keeps them (see :data:`RANKERS`)."""
    return RANKERS.get(by)(ranking, seed)


def keep_masks(order: Tensor, counts: list[int], num_factors: int) -> Tensor:
    """(R, H) float masks: row r keeps the first ``counts[r]`` factors of ``order``."""
    position = torch.empty(num_factors, dtype=torch.long)
    position[order] = torch.arange(num_factors)  # rank of each factor
    return (position[None, :] < torch.tensor(counts)[:, None]).to(torch.float32)


@torch.no_grad()
def reconstruction_errors(model: VAE, feed: DeviceFeed, masks: Tensor) -> tuple[Tensor, Tensor]:
    """Per-image SSE and per-pixel MSE on [0, 1] pixels for each mask row (R,), float64.

    One pass over ``feed``: encode each batch to mu (B, H), zero the pruned factors of every
    mask at once (R, B, H), decode (R·B) images with the likelihood's mean and sum squared errors
    (paper 000, Table 1 "mean square error" = per-image sum). Decoder batches are split so R·B
    stays at the device's inference batch size.
    """
    masks = masks.to(feed.device)
    rows = masks.shape[0]
    sse = torch.zeros(rows, dtype=REDUCE_DTYPE, device=feed.device)
    batch = max(1, inference_batch_size(feed.device) // max(rows, 1))
    for x in feed.batches(batch):
        mu, _ = model.encode(x)
        z = (masks[:, None, :] * mu[None]).flatten(0, 1)  # (R·B, H)
        recon = model.decode_mean(z).view(rows, *x.shape)  # (R, B, C, H, W)
        sse += (recon - x[None]).square().flatten(2).sum(2).to(REDUCE_DTYPE).sum(1)
    per_image = sse / len(feed)
    pixels = math.prod(model.config.image_shape)
    return per_image.cpu(), (per_image / pixels).cpu()


@torch.no_grad()
def reconstruction_grid(model: VAE, images: Tensor, masks: Tensor) -> Tensor:
    """Paper 000, Fig. 4: (n, 1 + R, C, H, W) float in [0, 1] on the CPU.

    Column 0 holds the ``images`` (n, C, H, W) themselves; column 1 + r their reconstructions
    with mask row r (pruned factors set to 0), decoded with the likelihood's mean.
    """
    masks = masks.to(images.device)
    mu, _ = model.encode(images)
    z = (masks[:, None, :] * mu[None]).flatten(0, 1)  # (R·n, H)
    recon = model.decode_mean(z).view(masks.shape[0], *images.shape).transpose(0, 1)
    return torch.cat([images[:, None], recon], dim=1).clamp(0, 1).cpu()
