"""`vaetool metrics CKPT|CODES`: ground-truth disentanglement metrics, as disentanglement_lib."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from vaetool.cli._options import DeviceOpt, FormatOpt, OutputOpt
from vaetool.cli._render import check_format, emit_frame, emit_text


def metrics(
    source: Annotated[
        Path,
        typer.Argument(
            help="A checkpoint, or stored codes (.npz/.safetensors with mu and factors).",
            show_default=False,
            metavar="CKPT|CODES",
        ),
    ],
    metric: Annotated[
        str,
        typer.Option(help="Metric names, a,b (`vaetool components metric` lists them), or all."),
    ] = "all",
    data: Annotated[
        str | None,
        typer.Option(help="A data set with factors.", show_default="the checkpoint's, whole"),
    ] = None,
    samples: Annotated[
        int | None,
        typer.Option(
            help="Points drawn per metric, with replacement (test: half).",
            show_default="10000 (dlib); CODES: every row once, classifiers 2:1 train:test",
        ),
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of the sampling and classifiers.")] = 0,
    fmt: FormatOpt = "table",
    output: OutputOpt = None,
    device: DeviceOpt = "auto",
) -> None:
    """Disentanglement metrics (MIG, modularity/explicitness, SAP, DCI, BetaVAE, FactorVAE) of a
    model on a data set with ground-truth factors, computed as disentanglement_lib does, and
    paper 001's accuracy of a categorical code.

    Example: vaetool metrics runs/dsprites/model.safetensors --metric mig,factor_vae
    """
    import json

    from vaetool.report.metrics import metrics_frame
    from vaetool.workflows.metrics import MetricsRequest, compute

    check_format(fmt)
    result = compute(MetricsRequest(source, metric, data, samples, seed, device))
    if fmt == "json":
        document = {"source": str(result.source), "data": result.data, "points": result.points,
                    "seed": seed, "metrics": result.names, "values": result.values}  # fmt: skip
        emit_text(json.dumps(document, indent=2) + "\n", output)
        return
    emit_frame(metrics_frame(result.values), fmt, output, title=f"{source} on {result.data}")
