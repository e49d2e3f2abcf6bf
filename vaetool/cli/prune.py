"""`vaetool prune`: keep the top-k factors; reconstruction and classification tables."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from vaetool.cli import _console
from vaetool.cli._options import CheckpointArg, DeviceOpt, ForceOpt, FormatOpt, OutputOpt
from vaetool.cli._render import check_format, emit_renderables, emit_text, rich_table

if TYPE_CHECKING:
    from vaetool.workflows.prune import PruneResult

PAPER_TOP = "100%,20%,10%,7%,5%,4%,3%,2%,1%,0%"  # paper 000, Table 1; = analysis.pruning's


def prune(
    checkpoint: CheckpointArg,
    top: Annotated[
        str, typer.Option(help="Percents (10%), counts (13) or a comma list of them.")
    ] = PAPER_TOP,
    task: Annotated[
        str, typer.Option(help="Table 1 or 2's task (`vaetool components task`).")
    ] = "reconstruct",
    rank_by: Annotated[
        str,
        typer.Option(
            help="The order factors are kept in (`vaetool components rank-by`).",
        ),
    ] = "mi",
    compare: Annotated[
        bool, typer.Option("--compare", help="Also keep factors in every other order.")
    ] = False,
    refit: Annotated[
        bool, typer.Option("--refit", help="Classify: also refit probes per k.")
    ] = False,
    repeats: Annotated[int, typer.Option(help="Classify: probe seeds (mean ± std).")] = 3,
    seed: Annotated[int, typer.Option(help="Seed of --rank-by random and the probes.")] = 0,
    data: Annotated[
        str | None, typer.Option(help="Dataset spec.", show_default="the checkpoint's own")
    ] = None,
    split: Annotated[str | None, typer.Option(help="Evaluation split.", show_default="test")] = (
        None
    ),
    samples: Annotated[
        int | None, typer.Option(help="Points of the split used.", show_default="10000")
    ] = None,
    save: Annotated[Path | None, typer.Option(help="Write the smaller model (one --top).")] = None,
    plot: Annotated[Path | None, typer.Option(help="Fig. 4: reconstructions per row (PNG).")] = (
        None
    ),
    drop_code: Annotated[
        bool,
        typer.Option("--drop-code", help="Prune the categorical code too (decoded at 1/K)."),
    ] = False,
    fmt: FormatOpt = "table",
    output: OutputOpt = None,
    device: DeviceOpt = "auto",
    force: ForceOpt = False,
) -> None:
    """Keep the top-k factors by information: what reconstruction and classification cost.

    Example: vaetool prune runs/mnist/model.safetensors --compare --plot fig4.png
    """
    from vaetool.workflows import Points, PruneRequest, prune

    check_format(fmt)
    request = PruneRequest(
        checkpoint, top, task, rank_by, compare, refit=refit, repeats=repeats, seed=seed,
        points=Points(data, split, samples), save=save, plot=plot, force=force, device=device,
        drop_code=drop_code,
    )  # fmt: skip
    with _console.stages() as progress:
        result = prune(request, progress)
    for path in (result.saved, result.plot):
        if path is not None:
            _console.note(f"wrote {path}")
    emit_prune(result, fmt, output, repeats)


def emit_prune(result: PruneResult, fmt: str, output: Path | None, repeats: int = 3) -> None:
    """The prune table in ``fmt``; in table mode with its title and caption."""
    from rich.text import Text

    from vaetool.report.prune_tables import (
        display_frame,
        prune_caption,
        prune_frame,
        prune_title,
        rows_json,
    )
    from vaetool.report.tables import format_frame

    frame = prune_frame(result.table)
    if fmt == "json":
        emit_text(json.dumps(rows_json(frame, result.table.rows), indent=2) + "\n", output)
    elif fmt == "table":
        table = rich_table(display_frame(frame), title=prune_title(result.table))
        emit_renderables([table, Text(prune_caption(result.table, repeats))], output)
    else:
        emit_text(format_frame(frame, fmt), output)
