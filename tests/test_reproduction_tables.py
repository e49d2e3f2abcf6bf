"""examples/reproduction.py recomputes docs/reproduction.md's tables and tests from the committed
campaign (docs/studies/): every study that has results prints its tables."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "examples" / "reproduction.py"
STUDIES = ["paper000-table1", "paper000-beta", "paper001", "paper001-pursuit",
           "paper001-gaussian", "paper002", "paper003-cpu"]  # fmt: skip


@pytest.mark.parametrize("study", STUDIES)
def test_each_committed_study_prints_its_tables(study: str) -> None:
    pytest.importorskip("scipy")
    if not (ROOT / "docs" / "studies" / study / "results.csv").is_file():
        pytest.skip(f"docs/studies/{study} has no results yet")
    done = subprocess.run([sys.executable, str(SCRIPT), study], capture_output=True, text=True,
                          timeout=120, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "| --- |" in done.stdout and "nan ±" not in done.stdout


def test_an_unknown_study_is_refused() -> None:
    done = subprocess.run([sys.executable, str(SCRIPT), "paper9"], capture_output=True,
                          text=True, timeout=60, check=False)  # fmt: skip
    assert done.returncode == 1 and "usage:" in done.stderr
