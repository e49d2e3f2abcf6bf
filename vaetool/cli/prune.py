"""`vaetool prune`: keep the top-k factors; reconstruction and classification tables."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from vaetool.cli._options import CheckpointArg, DeviceOpt, ForceOpt, FormatOpt, OutputOpt

PAPER_RATIOS = "100,20,10,7,5,4,3,2,1,0"  # paper 000, Table 1 (% of H); = analysis.pruning's


def prune(
    checkpoint: CheckpointArg,
    top: Annotated[
        str, typer.Option(help="Percent (10%), count (13) or a list of percents.")
    ] = PAPER_RATIOS,
    task: Annotated[str, typer.Option(help="reconstruct (Table 1) or classify (Table 2).")] = (
        "reconstruct"
    ),
    rank_by: Annotated[str, typer.Option(help="mi, variance, kl, active or random.")] = "mi",
    compare: Annotated[bool, typer.Option(help="Beside MI: variance, active, random.")] = False,
    refit: Annotated[bool, typer.Option(help="Classify: also refit probes per k.")] = False,
    repeats: Annotated[int, typer.Option(help="Classify: probe seeds (mean ± std).")] = 3,
    seed: Annotated[int, typer.Option(help="Seed of --rank-by random and the probes.")] = 0,
    data: Annotated[str | None, typer.Option(help="Dataset spec (default: the checkpoint's).")] = (
        None
    ),
    split: Annotated[str, typer.Option(help="Evaluation split.")] = "test",
    samples: Annotated[int, typer.Option(help="Points of the split used.")] = 10_000,
    save: Annotated[Path | None, typer.Option(help="Write the smaller model (one --top).")] = None,
    plot: Annotated[Path | None, typer.Option(help="Fig. 4: reconstructions per ratio (PNG).")] = (
        None
    ),
    fmt: FormatOpt = "table",
    output: OutputOpt = None,
    device: DeviceOpt = "auto",
    force: ForceOpt = False,
) -> None:
    """Keep the top-k factors by information: what reconstruction and classification cost."""
    from vaetool.cli._prune_view import PruneView, run_prune
    from vaetool.prune import PruneRequest

    request = PruneRequest(top, rank_by, seed, data, split, samples)
    view = PruneView(task, compare, refit, repeats, save, plot, fmt, output, force)
    run_prune(checkpoint, request, view, device)
