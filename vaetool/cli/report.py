"""`vaetool report CKPT --out DIR`: a static HTML page of the whole analysis."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from vaetool.cli import _console
from vaetool.cli._options import CheckpointArg, DeviceOpt, ForceOpt


def report(
    checkpoint: CheckpointArg,
    out: Annotated[
        Path | None, typer.Option(help="Folder.", show_default="<stem>-report beside CKPT")
    ] = None,
    device: DeviceOpt = "auto",
    force: ForceOpt = False,
) -> None:
    """Write DIR/index.html: summary, ranking, pulse plot, prune tables, traversals.

    Example: vaetool report runs/mnist/model.safetensors --out runs/mnist/report
    """
    from vaetool.workflows import ReportRequest, build_report

    with _console.stages(log_when_piped=True) as progress:
        page = build_report(ReportRequest(checkpoint, out, force, device), progress)
    _console.result_line(str(page))
