"""The `prune` outputs as DataFrames: reconstruction (paper 000, Table 1) with the ranking
comparison, and classification (Table 2). Information in nats, errors on [0, 1] pixels."""

from __future__ import annotations

from functools import singledispatch
from typing import Any

import pandas as pd
from torch import Tensor

from vaetool.analysis.pruning import (
    KEEP_RULE,
    ClassificationTable,
    PruneRows,
    ReconstructionTable,
)

KEPT_SHOWN = 6

# Column -> header in table mode.
DISPLAY = {
    "mi_used": "Σ I_h kept",
    "sse": "SSE / image",
    "mse_pixel": "MSE / pixel",
    "fano_error_lb": "Fano: sampled error ≥",
}


def shorten(indices: list[int], shown: int = KEPT_SHOWN) -> str:
    """``0, 99, 82, …(+5)`` for long lists; ``-`` for none."""
    if not indices:
        return "-"
    head = ", ".join(str(i) for i in indices[:shown])
    return head if len(indices) <= shown else f"{head}, … (+{len(indices) - shown})"


def _base(rows: PruneRows) -> dict[str, Any]:
    return {
        "top": [spec.label for spec in rows.specs],
        "k": rows.counts,
        "kept": [shorten(kept) for kept in rows.kept],
        "mi_used": rows.mi_used.tolist(),
    }


@singledispatch
def prune_frame(table: Any) -> pd.DataFrame:
    """The DataFrame of a prune table (one method per task's table type)."""
    raise TypeError(f"no frame for {type(table).__name__}")


@prune_frame.register
def reconstruction_frame(table: ReconstructionTable) -> pd.DataFrame:
    """top, k, kept, mi_used (Σ_kept I_h, nats), sse (per-image sum of squared errors),
    mse_pixel (per-pixel mean), and sse_<order> for every other order with --compare."""
    columns = _base(table.rows)
    columns["sse"] = table.sse.tolist()
    columns["mse_pixel"] = table.mse_pixel.tolist()
    for name, sse in table.compare_sse.items():
        columns[f"sse_{name}"] = sse.tolist()
    return pd.DataFrame(columns)


@prune_frame.register
def classification_frame(table: ClassificationTable) -> pd.DataFrame:
    """top, k, kept, mi_used, then per probe: <probe>_acc_mean/std (trained on train means,
    tested on test means with pruned factors zeroed: the paper's protocol),
    <probe>_refit_mean/std (--refit), <probe>_sampled_mean/std (fed z ~ q(z|x)), and
    fano_error_lb: Fano's lower bound on the error of any classifier fed z ~ q(z|x)."""
    columns = _base(table.rows)
    acc = table.accuracy
    runs = {"acc": acc.zero_fill, "refit": acc.refit or {}, "sampled": acc.sampled or {}}
    for kind in acc.zero_fill:
        for label, accuracies in runs.items():
            if kind in accuracies:
                columns[f"{kind}_{label}_mean"] = accuracies[kind].mean(1).tolist()
                columns[f"{kind}_{label}_std"] = _std(accuracies[kind]).tolist()
    columns["fano_error_lb"] = table.fano.tolist()
    return pd.DataFrame(columns)


def _std(values: Tensor) -> Tensor:
    """Population std over repeats (R, repeats) -> (R,); 0 for a single repeat."""
    return values.std(1, unbiased=False)


def rows_json(frame: pd.DataFrame, rows: PruneRows) -> list[dict[str, Any]]:
    """JSON rows: the frame's records plus the full ``kept_factors`` list of each row."""
    from vaetool.report.tables import frame_records

    records = frame_records(frame)
    for record, kept in zip(records, rows.kept, strict=True):
        record["kept_factors"] = kept
    return records


def display_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """Table mode: mean ± std columns merged, friendlier headers."""
    shown = frame.copy()
    for column in [c for c in frame.columns if c.endswith("_mean")]:
        stem = column[: -len("_mean")]
        pairs = zip(frame[column], frame[f"{stem}_std"], strict=True)
        shown[stem.replace("_", " ")] = [f"{m:.3f} ± {s:.3f}" for m, s in pairs]
        shown = shown.drop(columns=[column, f"{stem}_std"])
    return shown.rename(columns=DISPLAY)


def prune_title(table: ReconstructionTable | ClassificationTable) -> str:
    by = f"ranked by {table.rows.rank_by}"
    if isinstance(table, ClassificationTable):
        return f"classification with the top-k factors ({by}; pruned factors = 0)"
    return f"reconstruction with the top-k factors ({by}; pruned factors = 0)"


def prune_caption(table: ReconstructionTable | ClassificationTable, repeats: int) -> str:
    """What the table's numbers are, with the keep-count rule (MATH.md §5)."""
    rule = f"k rule: {KEEP_RULE}; H = {len(table.rows.order)}; I in nats. "
    if isinstance(table, ClassificationTable):
        return rule + (
            f"Probes trained on {table.n_train} training codes; accuracy on {table.n_test} test "
            f"images, mean ± std over {repeats} probe seeds. acc: fed the posterior mean with "
            "pruned factors = 0 (paper protocol); sampled: fed z ~ q(z|x). Fano bounds the "
            "sampled error only (a mean-fed probe is not covered: MATH.md §5)."
        )
    others = ", ".join(table.compare_sse) if table.compare_sse else ""
    compare = f" sse_<order>: factors kept by {others} instead." if others else ""
    return rule + f"Errors on [0, 1] pixels over {table.n_test} test images.{compare}"
