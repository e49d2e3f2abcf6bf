"""The `prune` outputs as DataFrames: reconstruction (paper 000 Table 1), classification
(Table 2) and the ranking comparison. Information in nats, errors on [0, 1] pixels."""

from __future__ import annotations

from typing import Any

import pandas as pd
from torch import Tensor

from vaetool.analysis.classify import PROBE_KINDS, fano_error_lower_bound
from vaetool.analysis.pruning import PruneResult

KEPT_SHOWN = 6


def shorten(indices: list[int], shown: int = KEPT_SHOWN) -> str:
    """``0, 99, 82, …(+5)`` for long lists; ``-`` for none."""
    if not indices:
        return "-"
    head = ", ".join(str(i) for i in indices[:shown])
    return head if len(indices) <= shown else f"{head}, … (+{len(indices) - shown})"


def _base(result: PruneResult) -> dict[str, Any]:
    return {
        "top": [spec.label for spec in result.specs],
        "k": result.counts,
        "kept": [shorten(kept) for kept in result.kept],
        "mi_used": result.mi_used.tolist(),
    }


def reconstruction_frame(result: PruneResult) -> pd.DataFrame:
    """top, k, kept, mi_used (Σ_kept I_h, nats), sse (per-image sum of squared errors),
    mse_pixel (per-pixel mean), and sse_<ranking> columns with --compare."""
    columns = _base(result)
    columns["sse"] = result.sse.tolist()
    columns["mse_pixel"] = result.mse_pixel.tolist()
    for name, sse in (result.compare_sse or {}).items():
        columns[f"sse_{name}"] = sse.tolist()
    return pd.DataFrame(columns)


def classification_frame(result: PruneResult) -> pd.DataFrame:
    """top, k, kept, mi_used, <probe>_acc_mean/std (pruned factors zeroed, paper protocol),
    <probe>_refit_mean/std (with --refit), and fano_error_lb: Fano's lower bound on the error
    rate from mi_used and the label entropy (a probability)."""
    assert result.accuracy is not None and result.label_entropy is not None
    columns = _base(result)
    runs = {"acc": result.accuracy.zero_fill, "refit": result.accuracy.refit or {}}
    for kind in PROBE_KINDS:
        for label, accuracies in runs.items():
            if kind in accuracies:
                columns[f"{kind}_{label}_mean"] = accuracies[kind].mean(1).tolist()
                columns[f"{kind}_{label}_std"] = _std(accuracies[kind]).tolist()
    columns["fano_error_lb"] = [
        fano_error_lower_bound(mi, result.label_entropy, result.num_classes)
        for mi in result.mi_used.tolist()
    ]
    return pd.DataFrame(columns)


def _std(values: Tensor) -> Tensor:
    """Population std over repeats (R, repeats) -> (R,); 0 for a single repeat."""
    return values.std(1, unbiased=False)


def rows_json(frame: pd.DataFrame, result: PruneResult) -> list[dict[str, Any]]:
    """JSON rows: the frame's records plus the full ``kept_factors`` list of each row."""
    from vaetool.report.tables import frame_records

    records = frame_records(frame)
    for record, kept in zip(records, result.kept, strict=True):
        record["kept_factors"] = kept
    return records
