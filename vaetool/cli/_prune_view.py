"""Glue between `vaetool prune` and vaetool.prune: checks, tables, the saved model, the plot."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.text import Text

from vaetool.cli import _console
from vaetool.cli._render import check_format, emit_renderables, emit_text, rich_table

TASKS = ("reconstruct", "classify")


@dataclass(frozen=True)
class PruneView:
    task: str = "reconstruct"
    compare: bool = False
    refit: bool = False
    repeats: int = 3
    save: Path | None = None
    plot: Path | None = None
    fmt: str = "table"
    output: Path | None = None
    force: bool = False


def run_prune(checkpoint: Path, request: Any, view: PruneView, device: str) -> None:
    from vaetool.analysis.pruning import RANKERS, parse_top
    from vaetool.errors import CheckpointError, ConfigError
    from vaetool.prune import prune_table, save_pruned

    check_format(view.fmt)
    if view.task not in TASKS:
        raise ConfigError(f"--task {view.task!r}: expected one of {', '.join(TASKS)}")
    RANKERS.get(request.rank_by)
    if view.save is not None:
        if len(parse_top(request.top)) != 1:
            raise ConfigError("--save keeps one model: give a single --top (e.g. --top 10%)")
        if view.save.exists() and not view.force:
            raise CheckpointError(f"--save {view.save}: exists; pass --force to overwrite it")
    with _console.busy("ranking, pruning, decoding"):
        result = prune_table(
            checkpoint,
            request,
            compare=view.compare,
            device=device,
            classify=view.task == "classify",
            refit=view.refit,
            repeats=view.repeats,
        )
    if view.save is not None:
        if result.counts[0] == 0:
            raise ConfigError("--save: --top keeps 0 factors; a model needs at least one")
        saved = save_pruned(checkpoint, result.kept[0], view.save, force=view.force, device=device)
        _console.err.print(f"wrote {saved} (H = {result.counts[0]})", markup=False, highlight=False)
    if view.plot is not None:
        _write_plot(checkpoint, request, result, view.plot, device)
    _emit(result, view)


def _write_plot(checkpoint: Path, request: Any, result: Any, path: Path, device: str) -> None:
    from vaetool.prune import reconstruction_examples
    from vaetool.report.prune_figure import reconstruction_sheet

    grid = reconstruction_examples(checkpoint, request, result, device=device)
    reconstruction_sheet(grid, [spec.label for spec in result.specs], path)
    _console.err.print(f"wrote {path}", markup=False, highlight=False)


def _emit(result: Any, view: PruneView) -> None:
    from vaetool.report.prune_tables import classification_frame, reconstruction_frame, rows_json
    from vaetool.report.tables import format_frame

    frame = (
        classification_frame(result) if view.task == "classify" else reconstruction_frame(result)
    )
    if view.fmt == "json":
        emit_text(json.dumps(rows_json(frame, result), indent=2) + "\n", view.output)
    elif view.fmt == "table":
        title = _title(result, view)
        caption = Text(_caption(result, view))
        emit_renderables([rich_table(_display(frame), title=title), caption], view.output)
    else:
        emit_text(format_frame(frame, view.fmt), view.output)


def _caption(result: Any, view: PruneView) -> str:
    from vaetool.analysis.pruning import ROUNDING_RULE

    rule = f"k rule: {ROUNDING_RULE}, H = {len(result.order)}; I in nats; "
    if view.task == "classify":
        return rule + (
            f"accuracy on {result.n_test} test images, mean ± std over {view.repeats} probe "
            "seeds; Fano bound from Σ I_h and the label entropy (a probability)"
        )
    return rule + f"errors on [0, 1] pixels over {result.n_test} test images"


def _title(result: Any, view: PruneView) -> str:
    by = f"ranked by {result.rank_by}"
    if view.task == "classify":
        return f"classification with the top-k factors ({by}; pruned factors = 0 at test time)"
    return f"reconstruction with the top-k factors ({by}; pruned factors = 0)"


DISPLAY = {
    "mi_used": "Σ I_h used",
    "sse": "SSE / image",
    "mse_pixel": "MSE / pixel",
    "fano_error_lb": "Fano error ≥",
}


def _display(frame: Any) -> Any:
    """Table mode: mean ± std columns merged, friendlier headers."""
    shown = frame.copy()
    for column in [c for c in frame.columns if c.endswith("_mean")]:
        stem = column[: -len("_mean")]
        std = frame[f"{stem}_std"]
        pairs = zip(frame[column], std, strict=True)
        shown[stem.replace("_", " ")] = [f"{m:.3f} ± {s:.3f}" for m, s in pairs]
        shown = shown.drop(columns=[column, f"{stem}_std"])
    return shown.rename(columns=DISPLAY)
