"""`vaetool prune`: keep the top-k factors; reconstruction and classification tables."""

from __future__ import annotations

from typing import Annotated

import typer

from vaetool.cli._options import CheckpointArg


def prune(
    checkpoint: CheckpointArg,
    top: Annotated[str, typer.Option(help="Percent (10%), count (13) or list.")] = "",
) -> None:
    """Keep the top-k factors: reconstruction/classification tables, smaller model."""
    from vaetool.errors import VaetoolError

    raise VaetoolError("`vaetool prune` is not available yet in this version (issue 5)")
