"""The metrics table: one row per reported value (pandas at the reporting edge)."""

from __future__ import annotations

import pandas as pd


def metrics_frame(values: dict[str, float]) -> pd.DataFrame:
    return pd.DataFrame({"metric": list(values), "value": list(values.values())})
