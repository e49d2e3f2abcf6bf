"""`vaetool import FORMAT SOURCE` and `vaetool encode CKPT`: models and posteriors across tools."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from vaetool.cli import _console
from vaetool.cli._options import CheckpointArg, DeviceOpt, ForceOpt


def import_model(
    fmt: Annotated[
        str,
        typer.Argument(
            metavar="FORMAT",
            help="The source's framework (`vaetool components import` lists them).",
            show_default=False,
        ),
    ],
    source: Annotated[
        Path,
        typer.Argument(help="The source's model folder (or its model.pt).", show_default=False),
    ],
    out: Annotated[Path, typer.Option(help="The vaetool checkpoint to write (.safetensors).")],
    data: Annotated[
        str | None,
        typer.Option(
            help="The data set it was trained on.", show_default="the source's, if it says"
        ),
    ] = None,
    force: ForceOpt = False,
) -> None:
    """Import another framework's trained VAE as a vaetool checkpoint (docs/foreign.md).

    Example: vaetool import disentangling-vae results/VAE_dsprites --out dsprites.safetensors
    """
    from vaetool.workflows.foreign import ImportRequest, import_model

    result = import_model(ImportRequest(fmt, source, out, data, force))
    model = result.info.model
    _console.note(
        f"{result.foreign.framework}: {model.architecture}, H = {model.latents}, "
        f"{model.likelihood} pixels, data {result.info.data.spec}; left unread: "
        f"{', '.join(result.foreign.left) or 'nothing'}"
    )
    _console.result_line(str(result.out))


def encode(
    checkpoint: CheckpointArg,
    out: Annotated[Path, typer.Option(help="The posterior file to write (.npz).")],
    data: Annotated[
        str | None, typer.Option(help="Dataset spec.", show_default="the checkpoint's own")
    ] = None,
    split: Annotated[
        str | None, typer.Option(help="train, val or test.", show_default="test")
    ] = None,
    samples: Annotated[
        int | None, typer.Option(help="Points of the split.", show_default="10000")
    ] = None,
    force: ForceOpt = False,
    device: DeviceOpt = "auto",
) -> None:
    """Write a model's posterior (mu, logvar; labels and factors when the data has them) to
    an .npz that `mi rank` and `metrics` read, here or on another machine.

    Example: vaetool encode runs/mnist/model.safetensors --out mnist-test.npz
    """
    from vaetool.workflows.foreign import EncodeRequest, encode_posterior
    from vaetool.workflows.source import Points

    request = EncodeRequest(checkpoint, out, Points(data, split, samples), force, device)
    with _console.stages() as progress:
        result = encode_posterior(request, progress)
    _console.note(f"{result.points} points: {', '.join(result.arrays)}")
    _console.result_line(str(result.out))
