"""`vaetool report CKPT --out DIR`: a static HTML page of the whole analysis."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from vaetool.cli import _console
from vaetool.cli._options import DeviceOpt, ForceOpt
from vaetool.options import comma_list


def report(
    checkpoint: Annotated[
        Path,
        typer.Argument(
            help="A checkpoint (.safetensors), or a study folder.",
            show_default=False,
            metavar="CKPT|STUDY",
        ),
    ],
    out: Annotated[
        Path | None,
        typer.Option(help="Folder.", show_default="<stem>-report beside CKPT, STUDY/report"),
    ] = None,
    x: Annotated[
        str | None,
        typer.Option(help="Study: the swept option on the x axis.", show_default="the first swept"),
    ] = None,
    y: Annotated[
        str | None,
        typer.Option(
            help="Study: results.csv columns to draw, a,b,c.", show_default="val_elbo,sum_mi,…"
        ),
    ] = None,
    group: Annotated[
        str | None,
        typer.Option(help="Study: one line or violin per value.", show_default="the second swept"),
    ] = None,
    kind: Annotated[
        str,
        typer.Option(
            help="Study: line (mean ± sd over seeds), violin, scatter (runs), or code "
            "(a categorical code's histograms, paper 001 Figs. 6, 9–10)."
        ),
    ] = "line",
    vmi: Annotated[
        bool,
        typer.Option("--vmi", help="Also paper 001's lower bound (fits Q) and the bracket figure."),
    ] = False,
    device: DeviceOpt = "auto",
    force: ForceOpt = False,
) -> None:
    """Write DIR/index.html: summary, ranking, pulse plot, prune tables, traversals; for a
    study folder, each results.csv column against a swept option, and the table.

    Example: vaetool report runs/mnist/model.safetensors --out runs/mnist/report
    """
    from vaetool.workflows import ReportRequest, build_report

    if checkpoint.is_dir():
        from vaetool.workflows.report import StudyReportRequest, build_study_report

        columns = comma_list("y", y, "column names of results.csv, e.g. mig,val_recon") if y else ()
        request = StudyReportRequest(checkpoint, out, x, columns, group, kind, force)
        _console.result_line(str(build_study_report(request)))
        return
    with _console.stages(log_when_piped=True) as progress:
        page = build_report(ReportRequest(checkpoint, out, force, device, vmi), progress)
    _console.result_line(str(page))
