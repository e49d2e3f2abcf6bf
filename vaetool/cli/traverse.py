"""`vaetool traverse`: traversal montages of latent factors, ordered by information."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from vaetool.cli import _console
from vaetool.cli._options import CheckpointArg, DeviceOpt, ForceOpt


def traverse(
    checkpoint: CheckpointArg,
    factor: Annotated[
        list[int] | None, typer.Option("--factor", help="Factor index (repeatable).")
    ] = None,
    top: Annotated[int | None, typer.Option(help="The K most informative factors.")] = None,
    min_mi: Annotated[
        float | None,
        typer.Option(
            help="Every factor with I_h above this (nats), by I_h; the pulse plot on top.",
            show_default="0.5 when no --factor, --top or --pair",
        ),
    ] = None,
    pair: Annotated[
        tuple[int, int] | None, typer.Option(help="A 2-D grid over two factors F1 F2.")
    ] = None,
    code: Annotated[
        bool,
        typer.Option("--code", help="The categorical code's K classes per seed (paper 001)."),
    ] = False,
    seeds: Annotated[
        int | None, typer.Option(help="The first N test images as seeds.", show_default="8")
    ] = None,
    seed_index: Annotated[
        str | None, typer.Option(help="Seed positions in the test split, e.g. 0,5,9.")
    ] = None,
    value_range: Annotated[
        tuple[float, float], typer.Option("--range", help="LO HI of the swept z_h.")
    ] = (-3.0, 3.0),
    steps: Annotated[int, typer.Option(help="Values per traversal (at least 2).")] = 10,
    relative: Annotated[
        bool, typer.Option("--relative", help="Sweep mu_h + [LO, HI] around each seed.")
    ] = False,
    gif: Annotated[
        bool,
        typer.Option(
            "--gif", help="Also an animated GIF, one frame per step (the PNG's name, .gif)."
        ),
    ] = False,
    scale: Annotated[
        int | None,
        typer.Option(help="Integer upscale of each image.", show_default="cells of >= 48 px"),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(
            help="Output PNG.",
            show_default="<stem>.traverse.png, .pair-F1-F2.png or .code.png beside CKPT",
        ),
    ] = None,
    force: ForceOpt = False,
    device: DeviceOpt = "auto",
) -> None:
    """Traversal montages of latent factors, ordered by information (docs/math.md §6).

    Example: vaetool traverse runs/mnist/model.safetensors --top 5 --gif
    """
    from vaetool.analysis.traversal_plan import TraversalPlan
    from vaetool.workflows import TraverseRequest, traverse

    plan = TraversalPlan(
        factors=tuple(factor or ()),
        top=top,
        min_mi=min_mi,
        pair=pair,
        seeds=seeds,
        seed_indices=parse_indices(seed_index),
        value_range=value_range,
        steps=steps,
        relative=relative,
        code=code,
    )
    request = TraverseRequest(checkpoint, plan, out, gif, scale, force, device)
    with _console.stages() as progress:
        result = traverse(request, progress)
    for path in result.written:
        _console.result_line(str(path))


def parse_indices(text: str | None) -> tuple[int, ...]:
    """``"0,5,9"`` -> (0, 5, 9); ConfigError on anything but comma-separated integers."""
    from vaetool.options import comma_ints

    if text is None:
        return ()
    return comma_ints("seed_index", text, "comma-separated integers, e.g. 0,5,9")
