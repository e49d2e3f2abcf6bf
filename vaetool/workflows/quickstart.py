"""`vaetool quickstart`: train on the embedded MNIST digits, then every analysis on one q* fit."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from vaetool.atomic import write_atomic
from vaetool.config import DataConfig, TrainConfig
from vaetool.training import BatchCallback, EpochRecord
from vaetool.workflows.mi import FitRequest, FitResult, RankRequest, RankResult, fit, rank_opened
from vaetool.workflows.prune import PruneRequest, PruneResult, prune_opened
from vaetool.workflows.report import ReportRequest, build_report
from vaetool.workflows.source import Progress, open_source
from vaetool.workflows.train import TrainOutcome, TrainRequest, train_run


@dataclass(frozen=True)
class QuickstartRequest:
    out: Path = Path("vaetool-quickstart")
    epochs: int = 30
    beta: float = 1.0
    threads: int | None = None
    force: bool = False
    device: str = "auto"


@dataclass(frozen=True, eq=False)
class QuickstartResult:
    trained: TrainOutcome
    fitted: FitResult
    ranked: RankResult
    pruned: PruneResult
    report: Path


def quickstart(
    request: QuickstartRequest,
    on_batch: BatchCallback | None = None,
    on_epoch: Callable[[EpochRecord], None] | None = None,
    progress: Progress | None = None,
) -> QuickstartResult:
    """Train -> q* sidecar -> ranking + pulse plot -> prune table + Fig. 4 -> HTML report."""
    from vaetool.report.figures import pulse_png

    out = request.out
    train = TrainRequest(
        out,
        DataConfig("mnist5k"),
        TrainConfig(beta=request.beta, epochs=request.epochs),
        threads=request.threads,
        force=request.force,
        device=request.device,
    )
    trained = train_run(train, on_batch, on_epoch)
    fitted = fit(FitRequest(trained.checkpoint, device=request.device), progress)
    source = open_source(trained.checkpoint, request.device)
    ranked = rank_opened(source, RankRequest(source.path), progress)
    write_atomic(out / "pulse.png", pulse_png(ranked.ranking))
    prune = PruneRequest(source.path, plot=out / "reconstructions.png", force=True)
    pruned = prune_opened(source, prune, ranked.ranking, progress)
    report = ReportRequest(trained.checkpoint, out / "report", force=True, device=request.device)
    return QuickstartResult(trained, fitted, ranked, pruned, build_report(report, progress))
