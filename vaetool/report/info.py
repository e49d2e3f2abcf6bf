"""A checkpoint's metadata as a (section, key, value) table."""

from __future__ import annotations

import json
from typing import Any

import pandas as pd

from vaetool.store.checkpoint import CheckpointInfo


def info_frame(details: CheckpointInfo) -> pd.DataFrame:
    """One row per setting; nested summary values are flattened with dotted keys."""
    doc = details.to_document()
    rows = [("vaetool", "version", doc["vaetool_version"])]
    for section in ("model", "data", "train", "summary", "extra"):
        rows += [(section, key, _text(value)) for key, value in _flatten(doc[section])]
    return pd.DataFrame(rows, columns=["section", "key", "value"])


def _flatten(mapping: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    items: list[tuple[str, Any]] = []
    for key, value in mapping.items():
        if isinstance(value, dict):
            items += _flatten(value, f"{prefix}{key}.")
        else:
            items.append((f"{prefix}{key}", value))
    return items


def _text(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, (list, tuple)):
        return json.dumps(list(value))
    return str(value)
