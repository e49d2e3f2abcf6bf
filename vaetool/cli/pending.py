"""Commands whose issues have not landed yet: they say so and exit 1."""

from __future__ import annotations

from typing import Annotated

import typer

from vaetool.cli._options import CheckpointArg


def _pending(command: str, issue: int) -> None:
    from vaetool.errors import VaetoolError

    raise VaetoolError(f"`vaetool {command}` is not available yet in this version (issue {issue})")


def prune(
    checkpoint: CheckpointArg,
    top: Annotated[str, typer.Option(help="Percent (10%), count (13) or list.")] = "",
) -> None:
    """Keep the top-k factors: reconstruction/classification tables, smaller model."""
    _pending("prune", 5)


def traverse(
    checkpoint: CheckpointArg,
    factor: Annotated[list[int] | None, typer.Option(help="Factor index (repeatable).")] = None,
) -> None:
    """Traversal montages of latent factors, ordered by information."""
    _pending("traverse", 6)
