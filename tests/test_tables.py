"""Every --format renders one DataFrame: csv and json parse back, markdown and latex are valid."""

from __future__ import annotations

import io
import json

import pandas as pd
import pytest

from vaetool.errors import ConfigError
from vaetool.report.tables import format_frame

FRAME = pd.DataFrame(
    {"factor": [3, 0], "mi": [1.25, float("nan")], "name": ["a_b", "50%"], "flag": [True, False]}
)


def test_csv_round_trips() -> None:
    back = pd.read_csv(io.StringIO(format_frame(FRAME, "csv")))
    assert back["factor"].tolist() == [3, 0] and back["mi"].iloc[0] == 1.25


def test_json_is_records_with_null_for_nan() -> None:
    records = json.loads(format_frame(FRAME, "json"))
    assert records[0] == {"factor": 3, "mi": 1.25, "name": "a_b", "flag": True}
    assert records[1]["mi"] is None


def test_markdown_has_header_rule_and_rows() -> None:
    lines = format_frame(FRAME, "markdown").splitlines()
    assert lines[0] == "| factor | mi | name | flag |" and lines[1].count("---") == 4
    assert lines[2] == "| 3 | 1.25 | a_b | yes |" and len(lines) == 4


def test_latex_escapes_specials() -> None:
    text = format_frame(FRAME, "latex")
    assert text.startswith("\\begin{tabular}{rrlr}") and "a\\_b" in text and "50\\%" in text


def test_unknown_format_is_an_error() -> None:
    with pytest.raises(ConfigError, match="format 'xml'"):
        format_frame(FRAME, "xml")
