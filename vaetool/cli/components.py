"""`vaetool components [FAMILY]`: every registered component, by family, name and what it is."""

from __future__ import annotations

from typing import Annotated

import typer

from vaetool.cli import _console


def components(
    family: Annotated[
        str | None,
        typer.Argument(
            help="One family (dataset, objective, likelihood, metric, …).", show_default="all"
        ),
    ] = None,
    options: Annotated[
        bool,
        typer.Option("--options", help="Also each component's options, as `train` takes them."),
    ] = False,
) -> None:
    """List the names every option that chooses a component accepts (the registries'), and with
    --options what each component takes (a flag of `train`, or `--option KEY=VALUE`).

    Example: vaetool components objective --options
    """
    from vaetool.workflows.components import components as listed

    for item in listed(family):
        _console.result_line(f"{item.family:<13} {item.name:<26} {item.doc}")
        for o in item.options if options else ():
            _console.result_line(f"{'':<16}{o.name} ({o.type}, default {o.default!r}): {o.doc}")
