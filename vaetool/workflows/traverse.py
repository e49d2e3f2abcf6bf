"""`vaetool traverse` as a typed request -> result function (MATH.md §6).

Seed images come from the test split of the checkpoint's own data (the split `mi rank` encodes);
factors are chosen and ordered by the ranking's I_h; the pictures are rendered in full before
anything is written, and every output is checked before any work starts.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from vaetool.analysis.ranking import Ranking
from vaetool.analysis.traversal import (
    CodeTraversal,
    FactorTraversal,
    PairTraversal,
    code_traversal,
)
from vaetool.analysis.traversal_plan import (
    DEFAULT_SEEDS,
    TraversalPlan,
    select_factors,
    traverse_plan,
)
from vaetool.errors import ConfigError
from vaetool.progress import StageProgress
from vaetool.store.atomic import is_special, write_atomic
from vaetool.store.checkpoint import read_info
from vaetool.workflows.mi import RankRequest, rank
from vaetool.workflows.source import Points, Source, open_source

MAX_SCALE = 32


@dataclass(frozen=True)
class TraverseRequest:
    """Traverse ``checkpoint`` as ``plan`` says; write a PNG sheet (and a GIF when ``gif``).

    ``out`` defaults to ``<stem>.traverse.png`` (``<stem>.pair-F1-F2.png``) beside the
    checkpoint; ``scale`` is the integer upscale of each image (None: cells of at least 48 px).
    """

    checkpoint: Path
    plan: TraversalPlan = field(default_factory=TraversalPlan)
    out: Path | None = None
    gif: bool = False
    scale: int | None = None
    force: bool = False
    device: str = "auto"


@dataclass(frozen=True, eq=False)
class TraverseResult:
    traversal: FactorTraversal | PairTraversal | CodeTraversal
    ranking: Ranking
    written: tuple[Path, ...]


@dataclass(frozen=True, eq=False)
class Seeds:
    """Seed images: ``rows`` (S,) positions in the test split, ``images`` (S, C, H, W) float32
    in [0, 1] on the CPU, ``mu`` (S, H + K) their decoder inputs at the posterior mode (means,
    then a categorical code's one-hot) on the model's device."""

    rows: tuple[int, ...]
    images: torch.Tensor
    mu: torch.Tensor


def traverse(request: TraverseRequest, progress: StageProgress | None = None) -> TraverseResult:
    """Check the outputs, rank (reusing a q* sidecar), decode, render, then write."""
    model = read_info(request.checkpoint).model
    request.plan.check_latents(model.latents)
    if request.plan.code and not model.categories:
        raise ConfigError(f"‹code›: {request.checkpoint.name} has no categorical code "
                          "(train with ‹categories› K)")  # fmt: skip
    paths = output_paths(request)
    source = open_source(request.checkpoint, request.device)
    ranked = rank(RankRequest(source.path, threshold=request.plan.threshold), progress, source)
    ranking = ranked.ranking
    traversal = decode_traversal(source, request.plan, ranking, request.scale)
    files = _render(traversal, ranking if request.plan.by_threshold else None, request)
    for path, data in zip(paths, files, strict=True):
        write_atomic(path, data)
    return TraverseResult(traversal, ranking, tuple(paths))


def decode_traversal(
    source: Source, plan: TraversalPlan, ranking: Ranking, scale: int | None = None
) -> FactorTraversal | PairTraversal | CodeTraversal:
    """Encode the plan's seeds from the source's test split and decode its grid."""
    model, info = source.checkpoint("a traversal")
    seeds = load_seeds(source, plan.seeds, plan.seed_indices)
    if plan.code:
        mi = ranking.code.mi if ranking.code is not None else None
        return code_traversal(model, seeds.images, seed_rows=seeds.rows, mi=mi)
    check_sheet_size(plan, ranking, len(seeds.rows), info.model.image_shape, scale)
    return traverse_plan(model, plan, seeds.mu, ranking.mi, seeds.rows)


def check_sheet_size(
    plan: TraversalPlan,
    ranking: Ranking,
    seeds: int,
    image_shape: tuple[int, int, int],
    scale: int | None,
) -> None:
    """Refuse, before decoding, a picture too large to draw or look at."""
    from vaetool.report.images import default_scale
    from vaetool.report.traversal_sheets import MAX_SHEET_PIXELS, PAIR_COLUMNS, sheet_pixels

    _, h, w = image_shape
    scale = scale or default_scale(h, w)
    if plan.code:
        pixels = sheet_pixels(1, seeds, 1 + info_categories(ranking), (h, w), scale)
    elif plan.pair is not None:
        per_row = min(seeds, PAIR_COLUMNS)
        rows_of_blocks = -(-seeds // per_row)
        pixels = sheet_pixels(rows_of_blocks, plan.steps, plan.steps * per_row, (h, w), scale)
    else:
        pixels = sheet_pixels(
            len(select_factors(ranking.mi, plan)), seeds, plan.steps, (h, w), scale
        )
    if pixels > MAX_SHEET_PIXELS:
        raise ConfigError(
            f"the traversal sheet would have {pixels / 1e6:.0f} megapixels (at most "
            f"{MAX_SHEET_PIXELS / 1e6:.0f}); show fewer factors (‹top›), seeds (‹seeds›), "
            "steps (‹steps›) or a smaller ‹scale›"
        )


def info_categories(ranking: Ranking) -> int:
    return ranking.code.categories if ranking.code is not None else 1


def load_seeds(source: Source, count: int | None = None, indices: Sequence[int] = ()) -> Seeds:
    """The first ``count`` (default 8) test images of the checkpoint's own split, or the
    test-split positions ``indices``, encoded to their posterior means."""
    model, _ = source.checkpoint("a traversal")
    data = source.data()
    test = source.rows(Points(split="test", samples=len(data)))
    positions = _seed_positions(len(test), count, indices, data.spec)
    images = data.images(test[positions])  # (S, C, H, W)
    with torch.no_grad():
        model.eval()
        codes = model.mode(images.to(source.device))
    return Seeds(tuple(int(p) for p in positions), images, codes)


def _seed_positions(
    n_test: int, count: int | None, indices: Sequence[int], spec: str
) -> np.ndarray:
    """Positions (S,) int64 in a test split of ``n_test`` images, checked."""
    if indices:
        for index in indices:
            if not 0 <= index < n_test:
                raise ConfigError(
                    f"‹seed_index› {index}: the test split of {spec} has {n_test} images; "
                    f"expected indices from 0 to {n_test - 1}"
                )
        return np.asarray(indices, dtype=np.int64)
    wanted = DEFAULT_SEEDS if count is None else count
    if not 1 <= wanted <= n_test:
        raise ConfigError(
            f"‹seeds› {wanted}: the test split of {spec} has {n_test} images; "
            f"expected 1 to {n_test}"
        )
    return np.arange(wanted, dtype=np.int64)


def output_paths(request: TraverseRequest) -> list[Path]:
    """The PNG (and GIF) to write, checked: .png name, writable folder, no overwrite."""
    pair = request.plan.pair
    if pair is not None and request.gif:
        raise ConfigError("‹gif› animates one-factor traversals; it cannot be used with ‹pair›")
    if request.scale is not None and not 1 <= request.scale <= MAX_SCALE:
        raise ConfigError(f"‹scale› {request.scale}: expected an integer from 1 to {MAX_SCALE}")
    if request.plan.code and request.gif:
        raise ConfigError("‹gif› animates one-factor traversals; it cannot be used with ‹code›")
    name = f"pair-{pair[0]}-{pair[1]}" if pair is not None else "traverse"
    name = "code" if request.plan.code else name
    ckpt = request.checkpoint
    png = request.out or ckpt.with_name(f"{ckpt.stem}.{name}.png")
    if png.is_dir():
        raise ConfigError(f"‹out› {png}: is a folder; expected a .png file name")
    if png.suffix.lower() != ".png":
        raise ConfigError(f"‹out› {png}: expected a file name ending in .png")
    paths = [png, png.with_suffix(".gif")] if request.gif else [png]
    for path in paths:
        _check_writable(path, request.force)
    return paths


def _check_writable(path: Path, force: bool) -> None:
    folder = path.parent
    if folder.exists() and not folder.is_dir():
        raise ConfigError(f"‹out› {path}: {folder} is not a folder")
    if not folder.is_dir():
        raise ConfigError(f"‹out› {path}: folder {folder} does not exist; create it first")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ConfigError(f"‹out› {path}: folder {folder} is not writable")
    if path.exists() and not force and not is_special(path):
        raise ConfigError(f"{path} exists; pass ‹force› to overwrite it or choose another ‹out›")


def _render(
    traversal: FactorTraversal | PairTraversal | CodeTraversal,
    pulse: Ranking | None,
    request: TraverseRequest,
) -> list[bytes]:
    """PNG bytes of the sheet, then the GIF's when asked; all encoded before anything is written."""
    from vaetool.report.images import gif_bytes, png_bytes
    from vaetool.report.traversal_sheets import code_sheet, factor_frames, factor_sheet, pair_sheet

    if isinstance(traversal, CodeTraversal):
        return [png_bytes(code_sheet(traversal, request.scale))]
    if isinstance(traversal, PairTraversal):
        return [png_bytes(pair_sheet(traversal, request.scale))]
    files = [png_bytes(factor_sheet(traversal, request.scale, pulse))]
    if request.gif:
        files.append(gif_bytes(factor_frames(traversal, request.scale)))
    return files
