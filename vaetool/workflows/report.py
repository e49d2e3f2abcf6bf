"""`vaetool report` as a typed request -> result function: one static page of the whole analysis.

The checkpoint is opened, its data loaded and its factors ranked once; the prune tables, Fig. 4
and the traversal sheet reuse them. The folder gets ``index.html`` and the PNGs it shows, each
written atomically; ``index.html`` is written last, so a page that exists is complete.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from vaetool.analysis.ranking import Ranking
from vaetool.analysis.traversal_plan import TraversalPlan
from vaetool.errors import ConfigError
from vaetool.progress import StageProgress
from vaetool.store.atomic import write_atomic
from vaetool.workflows.mi import RankRequest, RankResult, rank
from vaetool.workflows.prune import PruneRequest, PruneResult, prune
from vaetool.workflows.source import Points, Source, open_source
from vaetool.workflows.traverse import decode_traversal

INDEX = "index.html"
SHEET_FALLBACK_TOP = 8  # factors shown when none is influential
# The paper's ranking, with the consistent estimate, I(x; z) and TC beside it (MATH.md §1, §3).
REPORT_ESTIMATORS = ("qstar", "mixture")


@dataclass(frozen=True)
class ReportRequest:
    """Write ``out``/index.html for ``checkpoint`` (default ``out``: ``<stem>-report`` beside)."""

    checkpoint: Path
    out: Path | None = None
    force: bool = False
    device: str = "auto"
    vmi: bool = False  # also paper 001's lower bound, and the bracket figure

    @property
    def folder(self) -> Path:
        ckpt = self.checkpoint
        return self.out or ckpt.with_name(f"{ckpt.stem}-report")


def build_report(request: ReportRequest, progress: StageProgress | None = None) -> Path:
    """Rank, prune (reconstruction; classification when labelled), traverse; write the page."""
    folder = prepare_report_dir(request.folder, request.force)
    source = open_source(request.checkpoint, request.device)
    model, _ = source.checkpoint("a report")
    estimators = REPORT_ESTIMATORS if model.latent.factorised else ("qstar",)
    estimators += ("vmi",) if request.vmi else ()
    ranked = rank(RankRequest(source.path, estimators=estimators), progress, source)
    return write_report(source, folder, ranked, progress)


def write_report(
    source: Source, folder: Path, ranked: RankResult, progress: StageProgress | None = None
) -> Path:
    """The page for an opened, ranked checkpoint in a prepared ``folder``; its path."""
    from vaetool.report.figures import (
        bracket_png,
        factor_information_png,
        history_png,
        pulse_png,
    )
    from vaetool.report.html_report import report_page
    from vaetool.report.images import png_bytes
    from vaetool.report.traversal_sheets import code_sheet, factor_sheet

    _, info = source.checkpoint("a report")
    write_atomic(folder / "pulse.png", pulse_png(ranked.ranking))
    tables = _prune_tables(source, ranked.ranking, folder, progress)
    _stage(progress, "traversals of the influential factors")
    traversal = decode_traversal(source, _sheet_plan(ranked.ranking), ranked.ranking)
    write_atomic(folder / "traversals.png", png_bytes(factor_sheet(traversal)))
    extras = []
    if ranked.ranking.estimate("vmi") is not None:
        write_atomic(folder / "bracket.png", bracket_png(ranked.ranking))
        extras.append("bracket")
    if ranked.ranking.code is not None:
        _stage(progress, "traversals of the categorical code")
        code_plan = TraversalPlan(code=True)
        sheet = decode_traversal(source, code_plan, ranked.ranking)
        write_atomic(folder / "code.png", png_bytes(code_sheet(sheet)))  # type: ignore[arg-type]
        extras.append("code")
    truth = ground_truth_view(source, ranked.ranking)
    if truth is not None:
        write_atomic(folder / "factors.png", factor_information_png(truth))
    model, _ = source.checkpoint("a report")
    history = history_png(source.path.parent / "history.csv", model.likelihood.noise_names)
    if history is not None:
        write_atomic(folder / "history.png", history)
    page = report_page(
        source.path, info, ranked.ranking, ranked.summary(), [t.table for t in tables], truth,
        history is not None, tuple(extras),
    )  # fmt: skip
    return write_atomic(folder / INDEX, page.encode())


@dataclass(frozen=True)
class GroundTruthView:
    """The codes against the data's true factors on the ranked points: I(z_h; v_k) (H, K) in
    nats (dlib's 20-bin plug-in MI, MATH.md §13), H(v_k), the MIG gaps, and q*'s I(x; z_h)."""

    mi_matrix: np.ndarray
    entropy: np.ndarray
    gaps: np.ndarray
    mig: float
    information: np.ndarray
    factor_names: tuple[str, ...]
    points: int = 0

    @property
    def bias(self) -> np.ndarray:
        """The plug-in MI's upward bias per factor, ≈ (bins − 1)(n_k − 1)/(2N) nats (Miller)."""
        sizes = np.exp(self.entropy)  # ≥ the effective number of values; n_k for uniform v_k
        return 19 * (np.round(sizes) - 1) / (2 * max(self.points, 1))


def ground_truth_view(source: Source, ranking: Ranking) -> GroundTruthView | None:
    """None when the data set has no factors (or fewer than 2 codes); else the view above."""
    from vaetool.analysis.disentanglement import mig
    from vaetool.analysis.encode import encode
    from vaetool.data import factor_classes

    data = source.data()
    classes = factor_classes(data)
    model, _ = source.checkpoint("a report")
    if classes is None or classes.shape[1] == 0 or model.config.latents < 2:
        return None
    points = Points()
    rows = source.rows(points)
    posterior = encode(model, source.feed(points))
    assert posterior is not None
    v = torch.from_numpy(np.ascontiguousarray(classes[rows].T))
    if bool((v.max(1).values == v.min(1).values).any()):
        return None  # a factor constant on these points: MI and MIG undefined
    result = mig(posterior.mu.double().T.cpu(), v)
    names = tuple(data.factor_names) or tuple(f"v{k}" for k in range(v.shape[0]))
    return GroundTruthView(result["mi_matrix"].numpy(), result["entropy"].numpy(),
                           result["mig_per_factor"].numpy(), float(result["mig"]),
                           np.asarray(ranking.mi, dtype=np.float64), names,
                           int(v.shape[1]))  # fmt: skip


def _prune_tables(
    source: Source, ranking: Ranking, folder: Path, progress: StageProgress | None
) -> list[PruneResult]:
    """The reconstruction table with every comparison and Fig. 4; classification if labelled."""
    _stage(progress, "pruning: reconstruction table")
    request = PruneRequest(
        source.path, compare=True, plot=folder / "reconstructions.png", force=True
    )
    tables = [prune(request, progress, source, ranking)]
    if source.data().labels is not None:
        _stage(progress, "pruning: classification table")
        classify = PruneRequest(source.path, task="classify")
        tables.append(prune(classify, progress, source, ranking))
    return tables


def _sheet_plan(ranking: Ranking) -> TraversalPlan:
    """Every influential factor, or the top 8 when none is."""
    if int(ranking.influential.sum()):
        return TraversalPlan()
    return TraversalPlan(top=min(SHEET_FALLBACK_TOP, len(ranking.mi)))


def prepare_report_dir(folder: Path, force: bool = False) -> Path:
    """Create ``folder``; refuse if it holds a report (unless force) or cannot be written."""
    if folder.exists() and not folder.is_dir():
        raise ConfigError(f"‹out› {folder}: is a file; expected a folder for the report")
    if (folder / INDEX).exists() and not force:
        raise ConfigError(f"‹out› {folder}: holds a report already; pass ‹force› to overwrite it")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ConfigError(f"‹out› {folder}: cannot create the folder ({err.strerror})") from None
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ConfigError(f"‹out› {folder}: folder is not writable")
    return folder


def _stage(progress: StageProgress | None, stage: str) -> None:
    if progress is not None:
        progress(stage, 0, None)


@dataclass(frozen=True)
class StudyReportRequest:
    """Write ``out`` (default ``study/report``)/index.html for a study folder: ``columns``
    (default: ELBO and information columns) against the swept option ``x``, per ``group``."""

    study: Path
    out: Path | None = None
    x: str | None = None
    columns: tuple[str, ...] = ()
    group: str | None = None
    kind: str = "line"
    force: bool = False

    @property
    def folder(self) -> Path:
        return self.out or self.study / "report"


COMPARISONS = "comparisons.csv"  # a study report's rank tests (lines and violins)


def build_study_report(request: StudyReportRequest) -> Path:
    """The cross-run page of a study: one figure per column, the comparisons of each x value
    with the first (lines and violins), then the whole results table."""
    from vaetool.report.study import (
        StudyFigure,
        check_axes,
        comparison_table,
        study_figure,
        study_frame,
        study_page,
    )
    from vaetool.workflows.study import RESULTS_NAME, check_study_folder

    plan = check_study_folder(request.study)
    frame = study_frame(request.study / RESULTS_NAME)
    swept = [name for name in plan.swept if name in frame.columns]
    if len(plan.seeds) > 1 and not swept:
        swept = ["seed"]
    if request.kind == "code":
        return _code_report(request, frame, swept)
    x, columns, group = check_axes(frame, swept, request.x, request.columns, request.group,
                                   request.kind)  # fmt: skip
    folder = prepare_report_dir(request.folder, request.force)
    images = []
    for column in columns:
        png = study_figure(frame, column, x, group, request.kind)
        name = f"{column}-by-{x}.png"
        write_atomic(folder / name, png)
        images.append((name, StudyFigure(column, x, group, request.kind, png)))
    comparisons = None
    if request.kind != "scatter":
        comparisons = comparison_table(frame, columns, x, group)
        write_atomic(folder / COMPARISONS, comparisons.to_csv(index=False).encode())
    page = study_page(frame, request.study, images, swept, comparisons)
    return write_atomic(folder / INDEX, page.encode())


def _code_report(request: StudyReportRequest, frame: object, swept: list[str]) -> Path:
    """`--kind code`: paper 001 Figs. 6 and 9–10 from the runs' summaries, then the table."""
    from vaetool.report.study import StudyFigure, study_page
    from vaetool.report.study_code import class_figure, code_groups, probability_figure
    from vaetool.workflows.study import read_summaries

    x = request.x or (swept[0] if swept else "seed")
    groups = code_groups(read_summaries(request.study), x)
    folder = prepare_report_dir(request.folder, request.force)
    images = []
    for name, draw in (("code_probabilities", probability_figure), ("code_classes", class_figure)):
        png = draw(groups, x)
        write_atomic(folder / f"{name}-by-{x}.png", png)
        images.append((f"{name}-by-{x}.png", StudyFigure(name, x, None, "code", png)))
    page = study_page(frame, request.study, images, swept)  # type: ignore[arg-type]
    return write_atomic(folder / INDEX, page.encode())
