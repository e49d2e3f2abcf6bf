"""Every output table goes through a pandas DataFrame and leaves as one of these formats.

``table`` is drawn by the CLI with rich; the others are plain text written here, without
optional pandas extras (tabulate, jinja2), so the output does not depend on what else is installed.
"""

from __future__ import annotations

import json
import math
from typing import Any

import pandas as pd

from vaetool.errors import ConfigError

FORMATS = ("table", "csv", "json", "markdown", "latex")
TEXT_FORMATS = FORMATS[1:]


def format_frame(frame: pd.DataFrame, fmt: str, digits: int = 6) -> str:
    """Render ``frame`` as csv, json (a list of records), markdown or latex text."""
    if fmt == "csv":
        return frame.to_csv(index=False, float_format=f"%.{digits}g")
    if fmt == "json":
        return json.dumps(frame_records(frame), indent=2) + "\n"
    if fmt == "markdown":
        return _markdown(frame, digits)
    if fmt == "latex":
        return _latex(frame, digits)
    raise ConfigError(f"‹format› {fmt!r}: expected one of {', '.join(TEXT_FORMATS)}")


def frame_records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """JSON-safe records: numpy scalars become Python numbers, NaN becomes null."""
    return [{k: json_value(v) for k, v in row.items()} for row in frame.to_dict("records")]


def json_value(value: Any) -> Any:
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def cell_text(value: Any, digits: int = 6) -> str:
    """One cell as text: floats to ``digits`` significant digits, booleans as yes/no."""
    value = json_value(value)
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return "" if value is None else str(value)


def _markdown(frame: pd.DataFrame, digits: int) -> str:
    header = "| " + " | ".join(str(c) for c in frame.columns) + " |"
    rule = "| " + " | ".join("---" for _ in frame.columns) + " |"
    rows = [
        "| " + " | ".join(cell_text(v, digits) for v in row) + " |"
        for row in frame.itertuples(index=False)
    ]
    return "\n".join([header, rule, *rows]) + "\n"


_LATEX_SPECIAL = {
    "\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
    "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\^{}",
}  # fmt: skip


def _latex_escape(text: str) -> str:
    return "".join(_LATEX_SPECIAL.get(ch, ch) for ch in text)


def _latex(frame: pd.DataFrame, digits: int) -> str:
    align = "".join("r" if pd.api.types.is_numeric_dtype(frame[c]) else "l" for c in frame.columns)
    lines = [f"\\begin{{tabular}}{{{align}}}", "\\hline"]
    lines.append(" & ".join(_latex_escape(str(c)) for c in frame.columns) + r" \\")
    lines.append("\\hline")
    for row in frame.itertuples(index=False):
        lines.append(" & ".join(_latex_escape(cell_text(v, digits)) for v in row) + r" \\")
    lines += ["\\hline", "\\end{tabular}"]
    return "\n".join(lines) + "\n"
