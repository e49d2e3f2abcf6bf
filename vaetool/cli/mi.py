"""`vaetool mi fit` and `vaetool mi rank`: per-factor information I(x; z_h)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from vaetool.cli import _console
from vaetool.cli._options import DeviceOpt, FormatOpt, OutputOpt
from vaetool.cli._render import check_format, emit_renderables, emit_text, rich_table
from vaetool.options import comma_ints, comma_list

if TYPE_CHECKING:
    from vaetool.workflows.mi import RankResult

mi_app = typer.Typer(
    help="Mutual information I(x; z_h) of each latent factor (q*(z) and mixture estimators).",
    no_args_is_help=True,
    rich_markup_mode=None,
)

DEFAULT_ROWS = 40  # table rows that fit a terminal

SourceArg = Annotated[
    Path,
    typer.Argument(
        help="A vaetool checkpoint, or a (mu, logvar) file (.safetensors or .npz).",
        show_default=False,
    ),
]
DataOpt = Annotated[
    str | None,
    typer.Option("--data", help="Dataset spec.", show_default="the checkpoint's own"),
]
SplitOpt = Annotated[str | None, typer.Option(help="train, val or test.", show_default="test")]
SamplesOpt = Annotated[
    int | None, typer.Option(help="Points of the split used.", show_default="10000 (paper)")
]
VariantOpt = Annotated[
    str, typer.Option(help="q* variant (`vaetool components variant`; zero_mean: the paper's).")
]


@mi_app.command("fit")
def fit(
    source: SourceArg,
    data: DataOpt = None,
    split: SplitOpt = None,
    samples: SamplesOpt = None,
    variant: VariantOpt = "zero_mean",
    device: DeviceOpt = "auto",
) -> None:
    """Fit q*(z) in one encoder pass and store it beside the input (.qstar.safetensors).

    Example: vaetool mi fit runs/mnist/model.safetensors
    """
    from vaetool.workflows import FitRequest, Points, fit

    request = FitRequest(source, Points(data, split, samples), variant, device)
    with _console.stages() as progress:
        result = fit(request, progress)
    record = result.record
    _console.result_line(
        f"q* ({record.variant}) fitted on {record.n} points of {record.data} "
        f"[{record.split}] -> {result.sidecar}"
    )


@mi_app.command("rank")
def rank(
    source: SourceArg,
    data: DataOpt = None,
    split: SplitOpt = None,
    samples: SamplesOpt = None,
    variant: VariantOpt = "zero_mean",
    estimator: Annotated[
        str,
        typer.Option(
            help="Estimators (`vaetool components estimator`), a list (the first ranks), or "
            "all: [lower, consistent, upper] per factor."
        ),
    ] = "qstar",
    threshold: Annotated[float, typer.Option(help="Influential if I_h > this (nats).")] = 0.5,
    mc_samples: Annotated[int, typer.Option(help="Mixture: samples per point.")] = 1,
    mc_points: Annotated[
        int | None,
        typer.Option(
            help="Mixture: evaluation points.", show_default="min(N, 10000), within ~2 min"
        ),
    ] = None,
    seed: Annotated[int, typer.Option(help="Mixture and VMI: Monte Carlo seed.")] = 0,
    vmi_steps: Annotated[int, typer.Option(help="VMI: Adam steps fitting Q.")] = 3000,
    vmi_samples: Annotated[int, typer.Option(help="VMI: fresh pairs of the bound.")] = 10_000,
    vmi_subset: Annotated[
        str | None, typer.Option(help="VMI: also bound I(z_S; x) for factors S, e.g. 0,1.")
    ] = None,
    vmi_refit: Annotated[
        bool, typer.Option("--vmi-refit", help="VMI: fit Q again, ignoring its sidecar.")
    ] = False,
    qstar: Annotated[Path | None, typer.Option(help="Use this q* sidecar (must match).")] = None,
    bits: Annotated[bool, typer.Option("--bits", help="Also show I_h in bits.")] = False,
    rows: Annotated[
        int, typer.Option(help="Table format: rows shown (csv, json: every factor).")
    ] = DEFAULT_ROWS,
    plot: Annotated[
        Path | None, typer.Option(help="Write the pulse plot here (.png, .pdf or .svg).")
    ] = None,
    pulse_variance: Annotated[
        str, typer.Option(help="Pulse plot's lower panel: aggregate (s²_h) or posterior (E σ²).")
    ] = "aggregate",
    fmt: FormatOpt = "table",
    output: OutputOpt = None,
    device: DeviceOpt = "auto",
) -> None:
    """Rank latent factors by the information they carry about the data (docs/mi.md).

    Example: vaetool mi rank runs/mnist/model.safetensors --estimator qstar,mixture
    """
    from vaetool.analysis.estimators import MixtureOptions
    from vaetool.analysis.vmi import VMIOptions
    from vaetool.workflows import Points, RankRequest, rank

    check_format(fmt)
    if plot is not None:
        from vaetool.report.figures import figure_format

        figure_format(plot)
    if rows < 1:
        raise typer.BadParameter(f"{rows}: expected at least 1", param_hint="--rows")
    request = RankRequest(
        source,
        Points(data, split, samples),
        variant,
        comma_list("estimator", estimator, "estimator names, e.g. qstar,mixture"),
        threshold,
        MixtureOptions(mc_samples, mc_points, seed),
        qstar,
        device,
        VMIOptions(steps=vmi_steps, eval_samples=vmi_samples, seed=seed),
        vmi_refit,
        _subset(vmi_subset),
    )
    with _console.stages() as progress:
        result = rank(request, progress)
    if plot is not None:
        from vaetool.report.figures import pulse_plot

        pulse_plot(result.ranking, plot, variance=pulse_variance)
        _console.note(f"wrote {plot}")
    emit_ranking(result, fmt, output, bits=bits, rows=rows)


def _subset(text: str | None) -> tuple[int, ...]:
    if text is None:
        return ()
    return comma_ints("vmi_subset", text, "factor indices, e.g. 0,1")


def emit_ranking(
    result: RankResult,
    fmt: str,
    output: Path | None,
    *,
    bits: bool = False,
    rows: int = DEFAULT_ROWS,
) -> None:
    """The ranking in ``fmt`` (table: the first ``rows`` factors and the summary; the other
    formats every factor), warnings on stderr."""
    from vaetool.report.mi_tables import TABLE_HEADERS, summary_frame, summary_warnings
    from vaetool.report.tables import format_frame, frame_records, json_value

    frame, summary = result.frame(bits=bits), result.summary()
    for line in summary_warnings(summary):
        _console.note(f"warning: {line}")
    if fmt == "json":
        doc = {
            "summary": {k: json_value(v) for k, v in summary.items()},
            "factors": frame_records(frame),
        }
        emit_text(json.dumps(doc, indent=2) + "\n", output)
    elif fmt == "table":
        shown = (frame.drop(columns=["mi"]) if bits else frame).rename(columns=TABLE_HEADERS)
        title = f"factors ranked by I(x; z_h) ({result.ranking.estimator})"
        if rows < len(shown):
            title = f"top {rows} of {len(shown)} factors by I(x; z_h) (--rows; -f csv for all)"
            shown = shown.head(rows)
        emit_renderables(
            [rich_table(shown, title=title), rich_table(summary_frame(summary), "summary")],
            output,
        )
    else:
        emit_text(format_frame(frame, fmt), output)
