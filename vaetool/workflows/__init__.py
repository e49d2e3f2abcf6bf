"""Typed request -> result functions: what the CLI and a notebook both call.

Each workflow opens a checkpoint, its data and its posterior once and composes the core
(analysis, report). See docs/library.md.
"""

from vaetool.store.checkpoint import read_info
from vaetool.workflows.mi import (
    FitRequest,
    FitResult,
    RankRequest,
    RankResult,
    fit,
    rank,
    rank_posterior,
)
from vaetool.workflows.prune import TASKS, PruneRequest, PruneResult, prune
from vaetool.workflows.quickstart import QuickstartRequest, QuickstartResult, quickstart
from vaetool.workflows.report import ReportRequest, build_report
from vaetool.workflows.source import Points, Source, open_source
from vaetool.workflows.train import (
    TrainOutcome,
    TrainRequest,
    resume_run,
    resume_seeds,
    train_request,
    train_run,
    train_seeds,
)
from vaetool.workflows.traverse import TraverseRequest, TraverseResult, decode_traversal, traverse

__all__ = [
    "TASKS",
    "FitRequest",
    "FitResult",
    "Points",
    "PruneRequest",
    "PruneResult",
    "QuickstartRequest",
    "QuickstartResult",
    "RankRequest",
    "RankResult",
    "ReportRequest",
    "Source",
    "TrainOutcome",
    "TrainRequest",
    "TraverseRequest",
    "TraverseResult",
    "build_report",
    "decode_traversal",
    "fit",
    "open_source",
    "prune",
    "quickstart",
    "rank",
    "rank_posterior",
    "read_info",
    "resume_run",
    "resume_seeds",
    "train_request",
    "train_run",
    "train_seeds",
    "traverse",
]
