"""`vaetool quickstart`: train on the embedded MNIST digits, then every analysis on one q* fit."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from vaetool.config import DataConfig, TrainConfig
from vaetool.progress import StageProgress
from vaetool.store.atomic import write_atomic
from vaetool.training.session import BatchCallback, EpochRecord
from vaetool.workflows.mi import FitRequest, FitResult, RankRequest, RankResult, fit, rank
from vaetool.workflows.prune import PruneRequest, PruneResult, prune
from vaetool.workflows.report import REPORT_ESTIMATORS, prepare_report_dir, write_report
from vaetool.workflows.source import open_source
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
    progress: StageProgress | None = None,
) -> QuickstartResult:
    """Train -> q* sidecar (for later commands) -> ranking (q*, the mixture beside it) + pulse
    plot -> prune table + Fig. 4 -> HTML report, all on one opened checkpoint (loaded, hashed
    and its data read once)."""
    from vaetool.report.figures import pulse_png

    out = request.out
    train = TrainRequest(
        out,
        DataConfig("mnist5k"),
        TrainConfig(options={"beta": request.beta}, epochs=request.epochs),
        threads=request.threads,
        force=request.force,
        device=request.device,
    )
    trained = train_run(train, on_batch, on_epoch)
    folder = prepare_report_dir(out / "report", force=True)
    source = open_source(trained.checkpoint, request.device)
    ranked = rank(RankRequest(source.path, estimators=REPORT_ESTIMATORS), progress, source)
    fitted = fit(FitRequest(source.path), progress, source)  # the ranking's pass, saved
    write_atomic(out / "pulse.png", pulse_png(ranked.ranking))
    prune_request = PruneRequest(source.path, plot=out / "reconstructions.png", force=True)
    pruned = prune(prune_request, progress, source, ranked.ranking)
    report = write_report(source, folder, ranked, progress)
    return QuickstartResult(trained, fitted, ranked, pruned, report)
