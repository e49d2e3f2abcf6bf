"""`vaetool prune` as a typed request -> result function (paper 000, Tables 1-2, Fig. 4; §5).

The checkpoint is opened and ranked once; the task (a registry: ``reconstruct``, ``classify``)
measures what keeping the top-k factors costs; ``save`` writes the sliced model and ``plot`` Fig. 4.
Every output is checked before any work starts.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Protocol

import torch

from vaetool.analysis.classify import (
    PROBES,
    LabelledCodes,
    classification_accuracies,
    fano_error_lower_bound,
    label_entropy,
)
from vaetool.analysis.encode import encode
from vaetool.analysis.pruning import (
    FACTOR_ORDERS,
    PAPER_TOP,
    ClassificationTable,
    PruneRows,
    ReconstructionTable,
    check_order,
    parse_top,
    prune_rows,
    reconstruction_errors,
    reconstruction_grid,
)
from vaetool.analysis.ranking import Ranking
from vaetool.config import check_seed
from vaetool.errors import CheckpointError, ConfigError, DataError
from vaetool.models.slicing import slice_latents
from vaetool.progress import StageProgress
from vaetool.registry import Registry
from vaetool.store.atomic import is_special, write_atomic
from vaetool.store.checkpoint import save_checkpoint
from vaetool.workflows.mi import RankRequest, rank
from vaetool.workflows.source import Points, Source, open_source

FIG4_IMAGES = 8  # rows of Fig. 4
MAX_REPEATS = 100  # probe seeds: all train at once, so this bounds memory and time


@dataclass(frozen=True)
class PruneRequest:
    """Keep the top-k factors of ``checkpoint`` for each ``top`` row and measure ``task``.

    ``top``: percents and/or counts (parse_top); ``rank_by``: a FACTOR_ORDERS name;
    ``compare``: also every other order (reconstruct); ``probes``, ``refit``, ``repeats``:
    the classify task's probes; ``seed``: random order and probes; ``save``: write the sliced
    model (one ``top`` row); ``plot``: write Fig. 4 (PNG).
    """

    checkpoint: Path
    top: str = PAPER_TOP
    task: str = "reconstruct"
    rank_by: str = "mi"
    compare: bool = False
    probes: tuple[str, ...] = ("logreg", "mlp")
    refit: bool = False
    repeats: int = 3
    seed: int = 0
    points: Points = field(default_factory=Points)
    save: Path | None = None
    plot: Path | None = None
    force: bool = False
    device: str = "auto"
    drop_code: bool = False  # prune a categorical code too (decoded at 1/K; saved without it)

    def check(self) -> None:
        """Everything that can be checked without loading the model."""
        TASKS.get(self.task)
        check_order(self.rank_by)
        specs = parse_top(self.top)
        for probe in self.probes:
            PROBES.get(probe)
        if not 1 <= self.repeats <= MAX_REPEATS:
            raise ConfigError(f"‹repeats› {self.repeats}: expected 1 to {MAX_REPEATS}")
        check_seed("‹seed›", self.seed)
        if self.compare and self.task != "reconstruct":
            raise ConfigError("‹compare› compares reconstruction errors: use ‹task› reconstruct")
        if self.save is not None:
            _check_save(self, len(specs))
        if self.plot is not None and self.plot.suffix.lower() != ".png":
            raise ConfigError(f"‹plot› {self.plot}: expected a file name ending in .png")
        if (
            self.plot is not None
            and self.plot.exists()
            and not self.force
            and not is_special(self.plot)
        ):
            raise ConfigError(f"‹plot› {self.plot}: exists; pass ‹force› to overwrite it")


@dataclass(frozen=True, eq=False)
class PruneResult:
    table: ReconstructionTable | ClassificationTable
    task: str
    saved: Path | None = None
    plot: Path | None = None


@dataclass(frozen=True, eq=False)
class TaskInputs:
    source: Source
    request: PruneRequest
    rows: PruneRows
    progress: StageProgress | None


class Task(Protocol):
    """A prune task: ``check`` fails fast on an opened source (before ranking), the call
    computes the table."""

    def check(self, source: Source, request: PruneRequest) -> None: ...

    def __call__(self, inputs: TaskInputs) -> ReconstructionTable | ClassificationTable: ...


TASKS: Registry[Task] = Registry("task", "‹task›")


@dataclass(frozen=True)
class _Task:
    run: Callable[[TaskInputs], ReconstructionTable | ClassificationTable]
    check: Callable[[Source, PruneRequest], None] = lambda source, request: None

    def __call__(self, inputs: TaskInputs) -> ReconstructionTable | ClassificationTable:
        return self.run(inputs)


def prune(
    request: PruneRequest,
    progress: StageProgress | None = None,
    source: Source | None = None,
    ranking: Ranking | None = None,
) -> PruneResult:
    """The table of ``request.task``, then save and plot. ``source`` and ``ranking``: the
    checkpoint already opened and ranked by a caller that reuses them; else opened and ranked
    here, once. The request is checked once, before any file."""
    request.check()
    source = source or open_source(request.checkpoint, request.device)
    source.checkpoint("pruning")
    TASKS.get(request.task).check(source, request)
    _check_code(source, request)
    if ranking is None:
        ranking = rank(RankRequest(source.path, request.points), progress, source).ranking
    rows = prune_rows(ranking, parse_top(request.top), request.rank_by, request.seed)
    table = TASKS.get(request.task)(TaskInputs(source, request, rows, progress))
    saved = _save(source, request, rows) if request.save is not None else None
    plot = _plot(source, request, rows) if request.plot is not None else None
    return PruneResult(table, request.task, saved, plot)


def _check_code(source: Source, request: PruneRequest) -> None:
    if request.drop_code and not (source.model is not None and source.model.categories):
        raise ConfigError(f"‹drop_code›: {source.path.name} has no categorical code")


def reconstruct(inputs: TaskInputs) -> ReconstructionTable:
    """Paper 000, Table 1: per-image SSE with the top-k factors (pruned = 0), one pass per
    order; with ``compare``, every other registered order at the same k."""
    source, request, rows = inputs.source, inputs.request, inputs.rows
    model, _ = source.checkpoint("pruning")
    feed = source.feed(request.points)
    keep_code = not request.drop_code
    sse, mse = reconstruction_errors(model, feed, rows.masks, keep_code)
    compare = {}
    if request.compare:
        for name in FACTOR_ORDERS.names():
            if name != rows.rank_by:
                other = prune_rows(rows.ranking, rows.specs, name, request.seed)
                compare[name] = reconstruction_errors(model, feed, other.masks, keep_code)[0]
    return ReconstructionTable(rows, sse, mse, len(feed), compare)


def classify(inputs: TaskInputs) -> ClassificationTable:
    """Paper 000, Table 2: probes on the training split's codes, tested with the top-k factors;
    Fano's bound for the probes fed z ~ q(z|x) (MATH.md §5)."""
    source, request, rows = inputs.source, inputs.request, inputs.rows
    train = _codes(source, replace(request.points, split="train", samples=None), everything=True)
    test = _codes(source, request.points)
    model, _ = source.checkpoint("classification")
    factorised = model.latent.factorised  # Fano's chain needs q(z|x) to factorise (MATH.md §5)
    accuracy = classification_accuracies(
        train,
        test,
        rows.masks.to(source.device),
        probes=request.probes,
        repeats=request.repeats,
        refit=request.refit,
        sampled=factorised,
        seed=request.seed,
    )
    entropy = label_entropy(test.labels)
    classes = int(max(train.labels.max(), test.labels.max())) + 1
    bounds = [fano_error_lower_bound(mi, entropy, classes) for mi in rows.mi_used.tolist()]
    fano = torch.tensor(bounds if factorised else [math.nan] * len(bounds), dtype=torch.float64)
    return ClassificationTable(
        rows, accuracy, entropy, classes, len(train.labels), len(test.labels), fano
    )


def _require_labels(source: Source, request: PruneRequest) -> None:
    data = source.data(request.points.data)
    if data.labels is None:
        raise DataError(f"‹task› classify: dataset {data.spec} has no labels")


TASKS.register("reconstruct")(_Task(reconstruct))
TASKS.register("classify")(_Task(classify, _require_labels))


def _codes(source: Source, points: Points, everything: bool = False) -> LabelledCodes:
    """Posterior (mu, logvar) and integer labels of the chosen points (all of the split when
    ``everything``)."""
    model, _ = source.checkpoint("classification")
    data = source.data(points.data)
    if data.labels is None:
        raise DataError(f"‹task› classify: dataset {data.spec} has no labels")
    if everything:
        points = replace(points, samples=len(data))
    feed = source.feed(points)
    posterior = encode(model, feed)
    assert posterior is not None
    labels = torch.as_tensor(data.labels[feed.indices.numpy()], device=source.device)
    if bool((labels < 0).any()):
        raise DataError(f"‹task› classify: dataset {data.spec} has negative labels")
    return LabelledCodes(posterior.mu, posterior.logvar, labels.long())


def _check_save(request: PruneRequest, rows: int) -> None:
    save = request.save
    assert save is not None
    if rows != 1:
        raise ConfigError("‹save› keeps one model: give a single ‹top› (e.g. ‹top› 10%)")
    if save.exists() and request.checkpoint.exists() and save.samefile(request.checkpoint):
        raise CheckpointError(f"‹save› {save}: is the input checkpoint; choose another file")
    if save.exists() and not request.force:
        raise CheckpointError(f"‹save› {save}: exists; pass ‹force› to overwrite it")


def _save(source: Source, request: PruneRequest, rows: PruneRows) -> Path:
    """Write the model sliced to the first row's kept factors (original indices, in order)."""
    model, info = source.checkpoint("pruning")
    kept = rows.kept[0]
    if not kept:
        raise ConfigError("‹save›: ‹top› keeps 0 factors; a model needs at least one")
    smaller = slice_latents(model, kept, drop_code=request.drop_code)
    extra = dict(info.extra)
    extra["pruned"] = {
        "from": source.path.name,
        "from_sha256": source.sha256,
        "original_latents": source.latents,
        "kept_factors": list(kept),
        "kept_code": bool(model.categories and not request.drop_code),
    }
    new_info = replace(info, model=smaller.config, extra=extra)
    assert request.save is not None
    return save_checkpoint(request.save, smaller, new_info, overwrite=request.force)


def _plot(source: Source, request: PruneRequest, rows: PruneRows) -> Path:
    """Fig. 4: the first test images and their reconstructions at every row."""
    from vaetool.report.prune_figure import reconstruction_sheet_png

    model, _ = source.checkpoint("Fig. 4")
    feed = source.feed(replace(request.points, samples=FIG4_IMAGES))
    images = next(feed.batches(FIG4_IMAGES))
    grid = reconstruction_grid(model, images, rows.masks, not request.drop_code)
    assert request.plot is not None
    return write_atomic(request.plot, reconstruction_sheet_png(grid, [s.label for s in rows.specs]))
