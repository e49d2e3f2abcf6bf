"""A study's categorical codes (`vaetool report DIR --kind code`; paper 001 Figs. 6, 9–10), drawn
from the histograms each run's summary.json holds: the distribution of the code's
probabilities π_k(x) (Fig. 6) and which digits each code class takes (Figs. 9–10), per value of
the swept option, summed over seeds (classes matched to labels first: their numbers are
arbitrary per seed).
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from vaetool.analysis.categorical import PROBABILITY_BINS, matched_confusion
from vaetool.errors import ConfigError

PROBABILITIES, CONFUSION = "code_probability_counts", "code_confusion"


def code_groups(summaries: list[dict[str, Any]], x: str) -> dict[Any, list[dict[str, Any]]]:
    """The finished runs holding code histograms, by their value of ``x`` (sorted)."""
    runs = [s for s in summaries if s.get("status") == "finished" and CONFUSION in s]
    if not runs:
        raise ConfigError("‹kind› code: no run of this study holds a categorical code's "
                          "histograms (models trained with ‹categories› K)")  # fmt: skip
    if any(x not in run for run in runs):
        raise ConfigError(f"‹x› {x!r}: not a setting of the study's runs")
    groups: dict[Any, list[dict[str, Any]]] = {}
    for run in sorted(runs, key=lambda r: (str(type(r[x])), r[x])):
        groups.setdefault(run[x], []).append(run)
    return groups


def probability_figure(groups: dict[Any, list[dict[str, Any]]], x: str) -> bytes:
    """Fig. 6: the share of π_k(x) values per bin over [0, 1], one line per value of ``x``."""
    figure = Figure(figsize=(6.4, 4.0), dpi=110)
    axes = figure.add_subplot()
    edges = np.linspace(0.0, 1.0, PROBABILITY_BINS + 1)
    for value, runs in groups.items():
        counts = np.sum([r[PROBABILITIES] for r in runs], axis=0).astype(float)
        axes.stairs(counts / counts.sum(), edges, label=f"{x} = {value} ({len(runs)} runs)")
    axes.set_yscale("log")
    axes.set_xlabel("π_k(x): the code's class probabilities on the test images")
    axes.set_ylabel("share of values")
    axes.set_title("Categorical code probabilities (paper 001 Fig. 6)")
    axes.legend(fontsize="small")
    axes.grid(alpha=0.3)
    return _png(figure)


def class_figure(groups: dict[Any, list[dict[str, Any]]], x: str) -> bytes:
    """Figs. 9–10: per value of ``x``, rows = code classes matched to digits 0…9, columns =
    digits; each row's share, summed over seeds; the mean accuracy in the title."""
    figure = Figure(figsize=(3.2 * len(groups), 3.6), dpi=110)
    for i, (value, runs) in enumerate(groups.items()):
        axes = figure.add_subplot(1, len(groups), i + 1)
        total = np.sum([matched_confusion(np.asarray(r[CONFUSION])) for r in runs], axis=0)
        share = total / np.maximum(total.sum(1, keepdims=True), 1)
        axes.imshow(share, vmin=0, vmax=1, cmap="Greys")
        accuracy = [r["categorical_accuracy"] for r in runs if "categorical_accuracy" in r]
        title = f"{x} = {value}"
        if accuracy:
            title += f"\naccuracy {np.mean(accuracy):.3f} ({len(runs)} runs)"
        axes.set_title(title, fontsize="small")
        axes.set_xlabel("digit")
        axes.set_ylabel("code class (matched)" if i == 0 else "")
        axes.set_xticks(range(share.shape[1]))
        axes.set_yticks(range(share.shape[0]))
        axes.tick_params(labelsize=6)
    figure.tight_layout()
    return _png(figure)


def _png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()
