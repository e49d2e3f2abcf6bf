"""Glue between the `mi` commands and vaetool.mi: progress, tables, summary, plot."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.progress import Progress

from vaetool.cli import _console
from vaetool.cli._render import check_format, emit_renderables, emit_text, rich_table

SUMMARY_LABELS = {
    "total_mi": "total I(x; z) = Σ I_h [nats]",
    "total_rate": "total rate Σ KLprior_h [nats]",
    "kl_aggregate": "KL(q(z) ‖ p(z)) [nats]",
    "n_influential": "influential factors",
    "n_active": "active units (Var μ > 0.01)",
    "n": "points N",
    "latents": "factors H",
    "estimator": "estimator",
    "qstar_variant": "q* variant",
    "mixture_mi_joint": "mixture: joint I(x; z) [nats]",
    "mixture_tc": "mixture: TC(z) [nats]",
    "mixture_log_n_cap": "mixture: cap log N [nats]",
}


TABLE_HEADERS = {
    "mi": "I_h [nats]",
    "mi_bits": "I_h [bits]",
    "share_pct": "share %",
    "cumulative_pct": "cum. %",
    "mi_qstar": "I_h q*",
    "mi_mixture": "I_h mixture",
    "kl_prior": "KLprior",
    "kl_agg": "KLagg",
    "mean_posterior_variance": "mean σ²",
    "var_posterior_mean": "Var μ",
    "influential": "influential",
}


@dataclass(frozen=True)
class RankView:
    fmt: str = "table"
    output: Path | None = None
    bits: bool = False
    plot: Path | None = None
    top: int | None = None  # table mode: show only the first rows


def _progress() -> Progress:
    return _console.progress_bar()


def run_fit(source: Path, **options: Any) -> None:
    from vaetool.mi import FitRequest, fit_file, save_fit

    device = options.pop("device")
    with _progress() as progress:
        task = progress.add_task("encoding", total=None)
        qstar, record, _, src = fit_file(
            source, FitRequest(**options), device=device, on_progress=_updater(progress, task)
        )
    path = save_fit(qstar, record, src)
    _console.out.print(
        f"q* ({record.variant}) fitted on {record.n} points of {record.data} "
        f"[{record.split}] -> {path}",
        markup=False,
        highlight=False,
    )


def run_rank(source: Path, view: RankView, **options: Any) -> None:
    from vaetool.mi import FitRequest, MixtureOptions, rank_file
    from vaetool.report.mi_tables import ranking_frame

    check_format(view.fmt)
    request = FitRequest(
        options.pop("data"), options.pop("split"), options.pop("samples"), options.pop("variant")
    )
    mixture = MixtureOptions(
        options.pop("mc_samples"), options.pop("mc_points"), options.pop("seed")
    )
    with _progress() as progress:
        task = progress.add_task("encoding", total=None)
        ranking, summary = rank_file(
            source,
            request,
            mixture=mixture,
            qstar_file=options.pop("qstar"),
            on_progress=_updater(progress, task),
            **options,
        )
    frame = ranking_frame(ranking, bits=view.bits)
    if view.plot is not None:
        from vaetool.report.figures import pulse_plot

        pulse_plot(ranking, view.plot)
        _console.err.print(f"wrote {view.plot}", markup=False, highlight=False)
    _emit(frame, summary, view)


def _emit(frame: Any, summary: dict[str, Any], view: RankView) -> None:
    from vaetool.report.tables import format_frame, frame_records, json_value

    if view.fmt == "json":
        doc = {
            "summary": {k: json_value(v) for k, v in summary.items()},
            "factors": frame_records(frame),
        }
        emit_text(json.dumps(doc, indent=2) + "\n", view.output)
    elif view.fmt == "table":
        shown = (frame.drop(columns=["mi"]) if view.bits else frame).rename(columns=TABLE_HEADERS)
        title = "factors ranked by I(x; z_h)"
        if view.top is not None and view.top < len(shown):
            shown, title = (
                shown.head(view.top),
                f"top {view.top} of {len(shown)} factors by I(x; z_h)",
            )
        summary_table = rich_table(_summary_frame(summary), title="summary")
        emit_renderables([rich_table(shown, title=title), summary_table], view.output)
    else:
        emit_text(format_frame(frame, view.fmt), view.output)


def _summary_frame(summary: dict[str, Any]) -> Any:
    import pandas as pd

    rows = [(label, summary[key]) for key, label in SUMMARY_LABELS.items() if key in summary]
    if summary.get("mixture_near_cap"):
        rows.append(("mixture: warning", "joint I is within 5 % of log N: N limits it"))
    rows.append(("data", f"{summary.get('data')} [{summary.get('split')}]"))
    return pd.DataFrame(rows, columns=["quantity", "value"]).astype({"value": object})


def _updater(progress: Progress, task: Any) -> Any:
    def update(done: int, total: int) -> None:
        progress.update(task, completed=done, total=total)

    return update
