"""Commands whose issues have not landed yet: they say so and exit 1."""

from __future__ import annotations

from typing import Annotated

import typer

from vaetool.cli._options import CheckpointArg

mi_app = typer.Typer(help="Mutual information I(x; z_h) per latent factor (q*(z) and mixture).",
                     no_args_is_help=True)  # fmt: skip


def _pending(command: str, issue: int) -> None:
    from vaetool.errors import VaetoolError

    raise VaetoolError(f"`vaetool {command}` is not available yet in this version (issue {issue})")


@mi_app.command("fit")
def mi_fit(checkpoint: CheckpointArg) -> None:
    """Fit q*(z) on a data split and store it beside the checkpoint."""
    _pending("mi fit", 4)


@mi_app.command("rank")
def mi_rank(checkpoint: CheckpointArg) -> None:
    """Rank latent factors by the information they carry about the data."""
    _pending("mi rank", 4)


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
