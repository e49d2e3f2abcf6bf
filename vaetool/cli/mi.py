"""`vaetool mi fit` and `vaetool mi rank`: per-factor information I(x; z_h)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from vaetool.cli._options import DeviceOpt, FormatOpt, OutputOpt

mi_app = typer.Typer(
    help="Mutual information I(x; z_h) of each latent factor (q*(z) and mixture estimators).",
    no_args_is_help=True,
)

SourceArg = Annotated[
    Path,
    typer.Argument(
        help="A vaetool checkpoint, or a (mu, logvar) file (.safetensors or .npz).",
        show_default=False,
    ),
]
DataOpt = Annotated[
    str | None, typer.Option("--data", help="Dataset spec (default: the checkpoint's own).")
]
SplitOpt = Annotated[str, typer.Option(help="train, val or test.")]
SamplesOpt = Annotated[int, typer.Option(help="Points of the split used (paper: 10000).")]
VariantOpt = Annotated[str, typer.Option(help="q* variant: zero_mean (paper) or free_mean.")]


@mi_app.command("fit")
def fit(
    source: SourceArg,
    data: DataOpt = None,
    split: SplitOpt = "test",
    samples: SamplesOpt = 10_000,
    variant: VariantOpt = "zero_mean",
    device: DeviceOpt = "auto",
) -> None:
    """Fit q*(z) in one encoder pass and store it beside the checkpoint (.qstar.safetensors)."""
    from vaetool.cli._mi_view import run_fit

    run_fit(source, data=data, split=split, samples=samples, variant=variant, device=device)


@mi_app.command("rank")
def rank(
    source: SourceArg,
    data: DataOpt = None,
    split: SplitOpt = "test",
    samples: SamplesOpt = 10_000,
    variant: VariantOpt = "zero_mean",
    estimator: Annotated[str, typer.Option(help="qstar (paper), mixture, or both.")] = "qstar",
    threshold: Annotated[float, typer.Option(help="Influential if I_h > this (nats).")] = 0.5,
    mc_samples: Annotated[int, typer.Option(help="Mixture: samples per point.")] = 1,
    mc_points: Annotated[
        int | None, typer.Option(help="Mixture: evaluation points (default: min(N, 10000)).")
    ] = None,
    seed: Annotated[int, typer.Option(help="Mixture: Monte Carlo seed.")] = 0,
    qstar: Annotated[Path | None, typer.Option(help="Use this q* sidecar (must match).")] = None,
    bits: Annotated[bool, typer.Option("--bits", help="Also show I_h in bits.")] = False,
    plot: Annotated[Path | None, typer.Option(help="Write the pulse plot (PNG) here.")] = None,
    fmt: FormatOpt = "table",
    output: OutputOpt = None,
    device: DeviceOpt = "auto",
) -> None:
    """Rank latent factors by the information they carry about the data."""
    from vaetool.cli._mi_view import RankView, run_rank

    view = RankView(fmt=fmt, output=output, bits=bits, plot=plot)
    run_rank(
        source,
        view,
        data=data,
        split=split,
        samples=samples,
        variant=variant,
        estimator=estimator,
        threshold=threshold,
        mc_samples=mc_samples,
        mc_points=mc_points,
        seed=seed,
        qstar=qstar,
        device=device,
    )
