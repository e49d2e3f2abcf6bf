"""Keep the top-k factors: the Python API behind `vaetool prune` (paper 000, Tables 1-2, Fig. 4).

import vaetool.prune
result = vaetool.prune.prune_table("run/model.safetensors")        # Table-1 rows
vaetool.prune.save_pruned("run/model.safetensors", 13, "run/top13.safetensors")
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import torch
from torch import Tensor

from vaetool.analysis.classify import classification_accuracies, label_entropy
from vaetool.analysis.encode import encode
from vaetool.analysis.pruning import (
    PAPER_RATIOS,
    PruneResult,
    factor_order,
    keep_masks,
    parse_top,
    reconstruction_errors,
    reconstruction_grid,
)
from vaetool.analysis.ranking import Ranking
from vaetool.analysis.source import Source, open_source, source_data, source_feed
from vaetool.checkpoint import CheckpointInfo, save_checkpoint
from vaetool.data import ImageData
from vaetool.device import resolve_device
from vaetool.errors import ConfigError, DataError
from vaetool.mi import FitRequest, rank_source
from vaetool.models.slicing import slice_latents

# --compare: the paper's claim is that variance cannot find the influential factors; the
# active-units statistic and a random order are the other usual baselines.
COMPARE_WITH = ("variance", "active", "random")


@dataclass(frozen=True)
class PruneRequest:
    top: str = PAPER_RATIOS
    rank_by: str = "mi"
    seed: int = 0  # for --rank-by random and the probes
    data: str | None = None
    split: str = "test"
    samples: int = 10_000


def prune_table(
    path: str | Path | Source,
    request: PruneRequest = PruneRequest(),
    *,
    compare: bool = False,
    classify: bool = False,
    refit: bool = False,
    repeats: int = 3,
    device: str = "auto",
    ranking: Ranking | None = None,
) -> PruneResult:
    """Rank (unless ``ranking`` is given), then for each row keep the top k factors, zero the
    rest, and measure the damage. ``path`` may be an opened checkpoint :class:`Source`."""
    source = _checkpoint_source(path, device)
    specs = parse_top(request.top)
    h = source.latents
    counts = [spec.keep_count(h) for spec in specs]
    if ranking is None:
        ranking, _ = rank_source(source, FitRequest(request.data, request.split, request.samples))
    order = factor_order(ranking, request.rank_by, request.seed)
    masks = keep_masks(order, counts, h)
    data = source_data(source, request.data)
    feed = source_feed(source, data, request.split, request.samples)
    assert source.model is not None
    sse, mse = reconstruction_errors(source.model, feed, masks)
    compare_sse = None
    if compare:
        compare_sse = {}
        for by in COMPARE_WITH:
            other = keep_masks(factor_order(ranking, by, request.seed), counts, h)
            compare_sse[by] = reconstruction_errors(source.model, feed, other)[0]
    result = PruneResult(
        specs=specs,
        counts=counts,
        kept=[order[:k].tolist() for k in counts],
        mi_used=masks.double() @ ranking.mi.double(),
        sse=sse,
        mse_pixel=mse,
        ranking=ranking,
        rank_by=request.rank_by,
        order=order,
        n_test=len(feed),
        compare_sse=compare_sse,
    )
    return (
        _with_classification(result, source, data, masks, request, refit, repeats)
        if classify
        else result
    )


def _with_classification(
    result: PruneResult,
    source: Source,
    data: ImageData,
    masks: Tensor,
    request: PruneRequest,
    refit: bool,
    repeats: int,
) -> PruneResult:
    if data.labels is None:
        raise DataError(f"--task classify: dataset {data.spec} has no labels")
    assert source.model is not None
    device = next(source.model.parameters()).device
    train = _latent_means(source, data, "train", len(data), device)  # the whole train split
    test = _latent_means(source, data, request.split, request.samples, device)
    accuracy = classification_accuracies(
        train, test, masks.to(device), repeats=repeats, refit=refit, seed=request.seed
    )
    classes = int(max(train[1].max(), test[1].max())) + 1
    return replace(
        result, accuracy=accuracy, label_entropy=label_entropy(test[1]), num_classes=classes
    )


def _latent_means(
    source: Source, data: ImageData, split: str, samples: int, device: torch.device
) -> tuple[Tensor, Tensor]:
    """Latent means (N, H) and labels (N,) of the first ``samples`` images of ``split``."""
    feed = source_feed(source, data, split, samples)
    assert source.model is not None
    posterior = encode(source.model, feed)
    labels = torch.as_tensor(data.labels[feed.indices.numpy()], device=device)
    return posterior.mu, labels


def save_pruned(
    path: str | Path, kept: list[int], out: str | Path, *, force: bool = False, device: str = "cpu"
) -> Path:
    """Write the sliced model keeping factors ``kept`` (original indices, in order) to ``out``."""
    source = _checkpoint_source(path, device)
    assert source.model is not None and source.info is not None
    smaller = slice_latents(source.model, kept)
    info: CheckpointInfo = source.info
    extra = dict(info.extra)
    extra["pruned"] = {
        "from": source.path.name,
        "from_sha256": source.sha256,
        "original_latents": source.latents,
        "kept_factors": list(kept),
    }
    new_info = replace(info, model=smaller.config, extra=extra)
    return save_checkpoint(out, smaller, new_info, overwrite=force)


def _checkpoint_source(path: str | Path | Source, device: str) -> Source:
    source = path if isinstance(path, Source) else open_source(path, resolve_device(device))
    if not source.is_checkpoint:
        raise ConfigError(
            f"{path}: pruning needs a vaetool checkpoint (a decoder), not a posterior file"
        )
    return source


def reconstruction_examples(
    path: str | Path | Source,
    request: PruneRequest,
    result: PruneResult,
    *,
    images: int = 8,
    device: str = "auto",
) -> Tensor:
    """Fig. 4 cells (n, 1 + R, C, H, W): the first ``images`` of the split, then their
    reconstructions at each row of ``result`` (same ranking and k as the table)."""
    source = _checkpoint_source(path, device)
    data = source_data(source, request.data)
    feed = source_feed(source, data, request.split, images)
    assert source.model is not None
    masks = keep_masks(result.order, result.counts, source.latents)
    return reconstruction_grid(source.model, next(feed.batches(images)), masks)
