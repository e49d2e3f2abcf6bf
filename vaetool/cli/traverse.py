"""`vaetool traverse`: traversal montages of latent factors, ordered by information."""

from __future__ import annotations

from typing import Annotated

import typer

from vaetool.cli._options import CheckpointArg


def traverse(
    checkpoint: CheckpointArg,
    factor: Annotated[list[int] | None, typer.Option(help="Factor index (repeatable).")] = None,
) -> None:
    """Traversal montages of latent factors, ordered by information."""
    from vaetool.errors import VaetoolError

    raise VaetoolError("`vaetool traverse` is not available yet in this version (issue 6)")
