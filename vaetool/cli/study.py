"""`vaetool study PLAN.toml --out DIR`: a grid × seeds of training runs, summarised."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from vaetool.cli import _console
from vaetool.cli._fields import shown
from vaetool.cli._options import DeviceOpt
from vaetool.cli.train import ThreadsOpt


def study(
    plan: Annotated[
        Path, typer.Argument(help="A study plan (TOML: seeds, [base], [grid]).", show_default=False)
    ],
    out: Annotated[Path, typer.Option(help="Study folder (runs/, results.csv).")],
    shard: Annotated[
        str,
        typer.Option(
            help="Take every N-th run starting at the K-th: K/N (no coordination "
            "needed; shards may run at once on one file system)."
        ),
    ] = "1/1",
    threads: ThreadsOpt = None,
    device: DeviceOpt = "auto",
) -> None:
    """Train every grid point × seed of PLAN into DIR/runs, each summarised in DIR/results.csv.

    Resumable: finished runs are skipped, unfinished ones resume. Draw it with
    `vaetool report DIR`. Plans for the papers' sweeps are in examples/ (docs/scale.md).

    Example: vaetool study examples/study-paper000-beta.toml --out studies/beta --shard 1/2
    """
    from vaetool.cli.train import training_display
    from vaetool.workflows.study import StudyRequest, run_study
    from vaetool.workflows.study_plan import parse_shard

    request = StudyRequest(plan, out, parse_shard(shard), device, threads)
    with training_display() as (on_batch, _, _):
        result = run_study(request, _announce, on_batch)
    _console.result_line(f"results  {result.results}")
    repaired = f", repaired {len(result.repaired)}" if result.repaired else ""
    _console.note(f"trained {len(result.trained)}, already done or running elsewhere "
                  f"{len(result.skipped)}, failed {len(result.failed)}{repaired}")  # fmt: skip
    for line in result.failed:
        _console.note(f"failed: {shown(line)}")
    for line in result.unreadable:  # another shard's, or held by a run elsewhere
        _console.note(f"unreadable summary (a row of results.csv says so): {shown(line)}")


def _announce(done: int, total: int, name: str) -> None:
    _console.note(f"run {done + 1}/{total}: {name}")
