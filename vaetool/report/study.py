"""The report of a study (`vaetool report DIR`): any results.csv column against any swept option,
one line (mean ± standard deviation over seeds) or violin per group, or a scatter of the runs
against any numeric column (paper 002's indicators against the normalised variance β·σ², a
log axis when it spans decades); beside lines and violins, the comparisons of each x value
with the first one per group (median and quartiles, exact rank test; MATH.md §15); the table.

pandas and matplotlib live here, at the reporting edge; the rows come from results.csv.
"""

from __future__ import annotations

import io
import itertools
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.axes import Axes as PlotAxes
from matplotlib.figure import Figure

from vaetool.analysis.compare import Spread, rank_test, spread
from vaetool.errors import ConfigError
from vaetool.options import comma_list
from vaetool.report.html import ReportPage, Section, render_page

# Columns drawn when none is asked for (those present): the ELBO, the information, its count.
DEFAULT_COLUMNS = ("val_elbo", "sum_mi", "n_influential", "val_recon", "val_kl")
KINDS = ("line", "violin", "scatter", "code")  # code: report/study_code.py
LOG_SPAN = 20.0  # a scatter's x axis is logarithmic when max/min of positive x exceeds this


@dataclass(frozen=True)
class StudyFigure:
    column: str
    x: str
    group: str | None
    kind: str
    png: bytes


def study_frame(results: Path) -> pd.DataFrame:
    """results.csv as a DataFrame (finished runs and failed ones alike)."""
    return pd.read_csv(results)


Axes = tuple[str, tuple[str, ...], str | None]  # x option, columns, group


def check_axes(frame: pd.DataFrame, swept: list[str], x: str | None, columns: tuple[str, ...],
               group: str | None, kind: str) -> Axes:  # fmt: skip
    """The x option, the columns and the grouping to draw; a bad name is one ConfigError."""
    if kind not in KINDS:
        raise ConfigError(f"‹kind› {kind!r}: expected one of {', '.join(KINDS)}")
    options = swept or ["seed"]
    x = x or options[0]
    if x not in frame.columns:
        raise ConfigError(f"‹x› {x!r}: not a column of results.csv (swept: {', '.join(options)})")
    if group is None and len(swept) > 1:
        group = next(o for o in swept if o != x)
    for name in () if group is None else _group_names(group):  # "objective,encoder": both
        if name not in frame.columns:
            raise ConfigError(f"‹group› {name!r}: not a column of results.csv")
    numeric = [c for c in frame.columns if pd.api.types.is_numeric_dtype(frame[c])]
    if kind == "scatter" and x not in numeric:
        raise ConfigError(f"‹x› {x!r}: a scatter needs a numeric column of results.csv")
    chosen = columns or tuple(c for c in DEFAULT_COLUMNS if c in numeric)
    for column in chosen:
        if column not in numeric:
            raise ConfigError(f"‹y› {column!r}: not a numeric column of results.csv "
                              f"(numeric: {', '.join(numeric)})")  # fmt: skip
    return x, chosen, group


def study_figure(frame: pd.DataFrame, column: str, x: str, group: str | None, kind: str) -> bytes:
    """One PNG: ``column`` against ``x``; per group a line of means with ±1 sd bars over
    the seeds (line), or the seeds' distribution (violin)."""
    figure = Figure(figsize=(6.4, 4.0), dpi=110)
    axes = figure.add_subplot()
    groups = _groups(frame, group)
    if kind == "scatter":
        _scatter(axes, groups, column, x, group)
        return _png(figure, axes, column, x, group)
    xs = sorted(frame[x].dropna().unique(), key=_order)
    positions = np.arange(len(xs), dtype=float)
    width = 0.8 / max(len(groups), 1)
    for i, (label, part) in enumerate(groups):
        stats = part.groupby(x)[column].agg(["mean", "std", "count"])
        if kind == "line":
            at = [xs.index(v) for v in stats.index]
            axes.errorbar(np.asarray(at, float), stats["mean"], yerr=stats["std"].fillna(0),
                          marker="o", capsize=3, label=label)  # fmt: skip
        else:
            data = [part.loc[part[x] == v, column].dropna().to_numpy() for v in xs]
            keep = [j for j, d in enumerate(data) if len(d)]
            if keep:
                offset = positions[keep] - 0.4 + width * (i + 0.5)
                body = axes.violinplot([data[j] for j in keep], offset, widths=width * 0.9,
                                       showmeans=True)  # fmt: skip
                body["bodies"][0].set_label(label)
                for at, j in zip(offset, keep, strict=True):  # each run, over its violin
                    axes.plot(np.full(len(data[j]), at), data[j], "k.", markersize=4)
    axes.set_xticks(positions, [str(v) for v in xs])
    return _png(figure, axes, column, x, group)


def comparison_table(
    frame: pd.DataFrame, columns: tuple[str, ...], x: str, group: str | None
) -> pd.DataFrame:
    """Per column and group, each x value's runs against the first x value's (the baseline):
    n, median [q1, q3], mean ± sd of each, and the exact two-sided rank test's p (MATH.md §15)."""
    xs = sorted(frame[x].dropna().unique(), key=_order)
    rows = []
    for column, (label, part) in itertools.product(columns, _groups(frame, group)):
        values = {v: part.loc[part[x] == v, column].dropna().to_numpy(float) for v in xs}
        base = values[xs[0]]
        for other in xs[1:]:
            if len(base) == 0 or len(values[other]) == 0:
                continue
            a, b = spread(base), spread(values[other])
            rows.append({"column": column, **({"group": label} if group else {}),
                         "baseline": f"{x} = {xs[0]}", "against": f"{x} = {other}",
                         "baseline median [q1, q3]": _quartiles(a), "median [q1, q3]":
                         _quartiles(b), "baseline mean ± sd": _mean_sd(a),
                         "mean ± sd": _mean_sd(b), "n": f"{a.n} vs {b.n}",
                         "p (exact, two-sided)": rank_test(values[other], base).p})  # fmt: skip
    return pd.DataFrame(rows)


def _quartiles(s: Spread) -> str:
    return f"{s.median:.4g} [{s.q1:.4g}, {s.q3:.4g}]"


def _mean_sd(s: Spread) -> str:
    return f"{s.mean:.4g} ± {s.sd:.2g}" if s.n > 1 else f"{s.mean:.4g}"


def _groups(frame: pd.DataFrame, group: str | None) -> list[tuple[str | None, pd.DataFrame]]:
    """(legend label, rows) per group; ``group`` is one column or several, comma-separated."""
    if group is None:
        return [(None, frame)]
    names = list(_group_names(group))
    found = []
    for key, part in frame.groupby(names, sort=True):
        values = key if isinstance(key, tuple) else (key,)
        found.append((", ".join(f"{n} = {v}" for n, v in zip(names, values, strict=True)), part))
    return found


def _scatter(axes: PlotAxes, groups: list, column: str, x: str, group: str | None) -> None:
    """Each run a point (x, column), one colour per group; x on a log axis across decades."""
    for label, part in groups:
        axes.scatter(part[x], part[column], s=18, label=label)
    values = pd.concat([part[x] for _, part in groups]).dropna()
    positive = values[values > 0]
    if len(positive) == len(values) and len(values) and positive.max() > LOG_SPAN * positive.min():
        axes.set_xscale("log")


def _png(figure: Figure, axes: PlotAxes, column: str, x: str, group: str | None) -> bytes:
    """Labels, legend and grid on ``axes``; the figure as PNG bytes."""
    axes.set_xlabel(x)
    axes.set_ylabel(column)
    axes.set_title(f"{column} by {x}" + (f", per {group}" if group else ""))
    if group is not None:
        axes.legend(fontsize="small")
    axes.grid(alpha=0.3)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def _order(value: object) -> tuple[int, float | str]:
    return (0, float(value)) if isinstance(value, int | float | np.number) else (1, str(value))


def study_page(frame: pd.DataFrame, folder: Path, images: list[tuple[str, StudyFigure]],
               swept: list[str], comparisons: pd.DataFrame | None = None) -> str:  # fmt: skip
    """The HTML page: the study's counts, each figure, the comparisons, the whole table."""
    status = frame["status"].value_counts().to_dict() if "status" in frame else {}
    summary = {"study": str(folder), "runs": len(frame), "swept": ", ".join(swept) or "none",
               **{f"runs {k}": v for k, v in status.items()}}  # fmt: skip
    sections = [
        Section(f"{fig.column} by {fig.x}", note=_figure_note(fig), image=name)
        for name, fig in images
    ]
    if comparisons is not None and len(comparisons):
        sections.append(Section("Comparisons with the first value (comparisons.csv)",
                                note="runs of each value against the first value's, per group: "
                                "median [quartiles], mean ± sd over seeds, and the exact "
                                "Mann–Whitney p (two-sided; no normality assumed; 3 against 3 "
                                "runs cannot go below p = 0.1)", table=comparisons,
                                table_id="comparisons", scroll=True))  # fmt: skip
    sections.append(Section("All runs (results.csv)", table=frame, table_id="results",
                            scroll=True))  # fmt: skip
    page = ReportPage("vaetool study report", "one row per run: its settings, the final "
                      "validation terms (nats) and its factors' information summary (MATH.md §1)",
                      summary, tuple(sections))  # fmt: skip
    return render_page(page)


def _figure_note(fig: StudyFigure) -> str:
    how = {"line": "mean over seeds, bars ±1 standard deviation",
           "violin": "the seeds' distribution, mean marked, each run a dot",
           "scatter": "one point per run",
           "code": "the test images' codes, summed over seeds"}[fig.kind]  # fmt: skip
    return f"{how}" + (f"; one {fig.kind} per {fig.group}" if fig.group else "")


def _group_names(group: str) -> tuple[str, ...]:
    """``--group objective,encoder`` -> the columns that together name a group."""
    return comma_list("group", group, "column names of results.csv, e.g. objective,encoder")
