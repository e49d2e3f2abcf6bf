"""`vaetool report CKPT --out DIR`: a static HTML page of the whole analysis."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from vaetool.cli import _console
from vaetool.cli._options import CheckpointArg, DeviceOpt, ForceOpt


def report(
    checkpoint: CheckpointArg,
    out: Annotated[Path | None, typer.Option(help="Folder (default: <stem>-report beside it).")] = (
        None
    ),
    device: DeviceOpt = "auto",
    force: ForceOpt = False,
) -> None:
    """Write DIR/index.html: summary, ranking, pulse plot, prune tables, traversals."""
    from vaetool.html_report import build_report

    folder = out or checkpoint.with_name(f"{checkpoint.stem}-report")
    with _console.busy("building the report") as status:
        update = getattr(status, "update", None)  # a spinner on a terminal, else nothing
        page = build_report(checkpoint, folder, force=force, device=device, on_step=update)
    _console.out.print(str(page), markup=False, highlight=False)
