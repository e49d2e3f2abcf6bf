"""Option aliases shared by several commands (typer ``Annotated`` style)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

CheckpointArg = Annotated[
    Path, typer.Argument(help="A vaetool checkpoint (.safetensors).", show_default=False)
]
DeviceOpt = Annotated[
    str, typer.Option("--device", help="auto (cuda if available), cpu, cuda or cuda:N.")
]
FormatOpt = Annotated[
    str, typer.Option("--format", "-f", help="table, csv, json, markdown or latex.")
]
OutputOpt = Annotated[
    Path | None,
    typer.Option("--output", "-o", help="Write the table to this file instead of stdout."),
]
ForceOpt = Annotated[bool, typer.Option("--force", help="Overwrite an existing output.")]
