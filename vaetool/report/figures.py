"""Figures (matplotlib, Agg, no display): written atomically as PNG."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from vaetool.analysis.ranking import Ranking
from vaetool.errors import ConfigError
from vaetool.store.atomic import write_atomic

INFLUENTIAL_COLOR = "#c0392b"
OTHER_COLOR = "#95a5a6"
VARIANCE_COLOR = "#2874a6"
MAX_DPI = 150  # the PNG resolution of `mi rank --plot`
MIN_DPI = 60  # the smallest resolution that keeps the labels legible
MAX_BARS = 2000  # more factors are drawn as lines (bars cost a patch each)
MAX_LABELS = 200  # influential factors labelled with their index


# Lower panel of the pulse plot: what it shows and its axis label.
PULSE_VARIANCES = {
    "aggregate": ("aggregate_variance", "− s²_h  (aggregate variance)"),
    "posterior": ("mean_posterior_variance", "− mean σ²_h  (posterior variance)"),
}


FIGURE_FORMATS = {".png": "png", ".pdf": "pdf", ".svg": "svg"}  # suffix -> matplotlib format


def figure_format(path: str | Path) -> str:
    """The format a figure file's suffix asks for; ConfigError for any other suffix."""
    suffix = Path(path).suffix.lower()
    if suffix not in FIGURE_FORMATS:
        raise ConfigError(
            f"‹plot› {path}: expected a file name ending in {', '.join(FIGURE_FORMATS)}"
        )
    return FIGURE_FORMATS[suffix]


def pulse_plot(
    ranking: Ranking, path: str | Path, title: str | None = None, variance: str = "aggregate"
) -> Path:
    """Write the pulse plot to ``path`` atomically in the format its suffix names (PNG at
    150 dpi, or PDF / SVG); returns ``path``."""
    return write_atomic(path, pulse_png(ranking, title, variance=variance, fmt=figure_format(path)))


def pulse_png(
    ranking: Ranking,
    title: str | None = None,
    width_px: int | None = None,
    variance: str = "aggregate",
    fmt: str = "png",
) -> bytes:
    """Paper 000, Fig. 1 as PNG bytes (RGBA; ``fmt`` "pdf" or "svg" for those): I_h bars up, a
    variance per factor bars down.

    Influential factors (I_h above the threshold, dashed line) are drawn in red and labelled
    with their index. The lower panel shows, as the paper does, the aggregate variance s²_h of
    q* (``variance="aggregate"``: the paper's σ²_{z_h}, MATH.md §2), or the mean posterior
    variance E_n sigma²[n,h] (``"posterior"``: near 1 for an ignored factor). ``width_px`` asks
    for about that width (the resolution is kept between 60 and 150 dpi).
    """
    if variance not in PULSE_VARIANCES:
        raise ConfigError(
            f"‹pulse_variance› {variance!r}: expected one of {', '.join(PULSE_VARIANCES)}"
        )
    fig = _pulse_figure(ranking, title, variance)
    dpi = float(MAX_DPI)
    if width_px is not None:
        dpi = min(max(width_px / fig.get_figwidth(), MIN_DPI), MAX_DPI)
    buffer = io.BytesIO()
    fig.savefig(buffer, format=fmt, dpi=dpi)
    return buffer.getvalue()


def _bars(axes: Axes, index: np.ndarray, values: np.ndarray, color: object) -> None:
    """Bars per factor; past MAX_BARS factors one vertical line each (one collection, so the
    plot of 200,000 factors draws in about a second)."""
    if len(index) <= MAX_BARS:
        axes.bar(index, values, width=0.8, color=color)
    else:
        axes.vlines(index, 0, values, colors=color, linewidth=0.5)


def _pulse_figure(ranking: Ranking, title: str | None, which: str) -> Figure:
    field, label = PULSE_VARIANCES[which]
    mi = ranking.mi.double().numpy()
    variance = getattr(ranking.indicators, field).cpu().double().numpy()
    influential = ranking.influential.numpy()
    index = np.arange(len(mi))
    fig = Figure(figsize=(min(max(8.0, 0.07 * len(mi)), 24.0), 5.0), layout="constrained")
    top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=(3, 2))
    colors = np.where(influential, INFLUENTIAL_COLOR, OTHER_COLOR)
    _bars(top, index, mi, colors)
    top.axhline(ranking.threshold, color="black", linestyle="--", linewidth=0.8)
    top.set_ylabel("I(x; z_h)  [nats]")
    for h in index[influential][:MAX_LABELS]:
        top.annotate(str(h), (h, mi[h]), ha="center", va="bottom", fontsize=6)
    _bars(bottom, index, -variance, VARIANCE_COLOR)
    bottom.set_ylim(-max(1.05, float(variance.max()) * 1.05), 0)
    bottom.set_ylabel(label, fontsize=8)
    bottom.set_xlabel("latent factor h")
    bottom.set_xlim(-1, len(mi))
    n_inf = int(influential.sum())
    top.set_title(
        title or f"{n_inf} influential of {len(mi)} factors ({ranking.estimator})", fontsize=10
    )
    return fig


def factor_information_png(truth: Any) -> bytes:
    """Heat map of I(z_h; v_k) (codes × true factors, nats), with q*'s I(x; z_h) per code on
    the left: does the information sit in the codes that capture a factor? PNG bytes."""
    matrix, names = np.asarray(truth.mi_matrix), truth.factor_names
    H, K = matrix.shape
    figure = Figure(figsize=(2.6 + 0.9 * K, 1.4 + 0.28 * H), dpi=110)
    grid = figure.add_gridspec(1, 2, width_ratios=(1, max(K, 1)), wspace=0.05)
    left, axes = figure.add_subplot(grid[0]), figure.add_subplot(grid[1])
    left.barh(np.arange(H), truth.information, color=INFLUENTIAL_COLOR)
    left.set_ylim(H - 0.5, -0.5)
    left.invert_xaxis()
    left.set_yticks(np.arange(H), [f"z{h}" for h in range(H)], fontsize="small")
    left.set_xlabel("I(x; z_h)", fontsize="small")
    image = axes.imshow(matrix, aspect="auto", cmap="viridis", vmin=0)
    axes.set_xticks(np.arange(K), names, rotation=30, ha="right", fontsize="small")
    axes.set_yticks([])
    for h in range(H):
        for k in range(K):
            axes.text(k, h, f"{matrix[h, k]:.2f}", ha="center", va="center", fontsize=7,
                      color="white" if matrix[h, k] < 0.6 * matrix.max() else "black")  # fmt: skip
    axes.set_title(f"I(z_h; v_k), nats — MIG {truth.mig:.3f}", fontsize="small")
    figure.colorbar(image, ax=axes, fraction=0.04)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", bbox_inches="tight")
    return buffer.getvalue()


def history_png(path: Path, noise: tuple[str, ...]) -> bytes | None:
    """Training per epoch from a run's history.csv: train and validation ELBO; the likelihood's
    learned noise values ``noise`` (their ``val_`` columns, log scale) when it learns any (paper
    002's σ², mixture weights and variances); a categorical code's KL (its upper bound on I(x;
    c)) and the VMI term (paper 001 Figs. 7–8) when the run has them. PNG bytes; None when the
    file is absent (a checkpoint moved out of its run folder) or lacks those columns."""
    import pandas as pd

    try:
        history = pd.read_csv(path)
    except (OSError, ValueError):
        return None
    needed = {"epoch", "train_elbo", "val_elbo", *(f"val_{n}" for n in noise)}
    if not needed <= set(history.columns) or not len(history):
        return None
    information = [c for c in ("val_kl_code", "val_mi_vmi") if c in history.columns]
    panels = 1 + bool(noise) + bool(information)
    figure = Figure(figsize=(4.2 * panels, 3.0), dpi=110)
    epochs = history["epoch"].to_numpy()
    elbo = figure.add_subplot(1, panels, 1)
    for split, style in (("train", "-"), ("val", "--")):
        elbo.plot(epochs, history[f"{split}_elbo"], style, marker=".", color=INFLUENTIAL_COLOR,
                  label=split)  # fmt: skip
    elbo.set_xlabel("epoch")
    elbo.set_ylabel("ELBO (β = 1) [nats/image]")
    elbo.legend(fontsize="small")
    if noise:
        axes = figure.add_subplot(1, panels, 2)
        for name in noise:
            axes.plot(epochs, history[f"val_{name}"], marker=".", label=name)
        axes.set_yscale("log")
        axes.set_xlabel("epoch")
        axes.set_ylabel("learned noise (end of epoch)")
        axes.legend(fontsize="small")
    if information:
        axes = figure.add_subplot(1, panels, panels)
        labels = {"val_kl_code": "KL(q(c|x) ‖ U_K): upper", "val_mi_vmi": "VMI term H + E log Q"}
        for column in information:
            axes.plot(epochs, history[column], marker=".", label=labels[column])
        axes.set_xlabel("epoch")
        axes.set_ylabel("validation [nats]")
        axes.legend(fontsize="small")
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def bracket_png(ranking: Ranking) -> bytes:
    """Per factor (most informative first), the information bracket: the VMI lower bound
    (paper 001) with ± 2 s.e., the mixture's consistent estimate, the q* upper bound (paper
    000); a categorical code, when the model has one, as the last column "c" with its cap
    log K (MATH.md §1, §3, §12)."""
    estimates = {e.name: e for e in ranking.estimates}
    order = ranking.order.numpy()
    labels = [str(h) for h in order]
    columns = {name: e.mi.numpy()[order] for name, e in estimates.items()}
    errors = {name: (e.mi_stderr.numpy()[order] if e.mi_stderr is not None else None)
              for name, e in estimates.items()}  # fmt: skip
    code = ranking.code
    if code is not None:
        labels.append("c")
        for name in columns:
            value = code.lower if name == "vmi" else code.mi
            columns[name] = np.append(columns[name], np.nan if value is None else value)
            if errors[name] is not None:
                se = code.lower_stderr if name == "vmi" else 0.0
                errors[name] = np.append(errors[name], np.nan if se is None else se)
    x = np.arange(len(labels))
    fig = Figure(figsize=(min(2.0 + 0.32 * len(labels), 16.0), 3.6), layout="constrained")
    axes = fig.add_subplot()
    if "vmi" in columns and "qstar" in columns:
        axes.vlines(x, columns["vmi"], columns["qstar"], color="0.75", lw=5, label="bracket")
    styles = {"vmi": ("^", "tab:blue", "lower (VMI)"), "mixture": ("o", "black", "consistent "
              "(mixture)"), "qstar": ("v", "tab:red", "upper (q*)")}  # fmt: skip
    for name, (marker, color, label) in styles.items():
        if name in columns:
            axes.errorbar(x, columns[name], yerr=None if errors[name] is None else 2 * errors[name],
                          fmt=marker, color=color, ms=5, capsize=2, label=label)  # fmt: skip
    if code is not None:
        axes.hlines(code.cap, x[-1] - 0.4, x[-1] + 0.4, color="tab:green", label="log K")
    axes.set_xticks(x, labels, fontsize=7)
    axes.set_xlabel("factor (most informative first)")
    axes.set_ylabel("I [nats]")
    axes.axhline(0.0, color="0.6", lw=0.6)
    axes.legend(fontsize=7, loc="best")
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=MAX_DPI)
    return buffer.getvalue()
