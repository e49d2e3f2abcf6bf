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
) -> None:
    """List the names every option that chooses a component accepts (the registries').

    Example: vaetool components objective
    """
    from vaetool.workflows.components import components as listed

    for item in listed(family):
        _console.result_line(f"{item.family:<13} {item.name:<26} {item.doc}")
