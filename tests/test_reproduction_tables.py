"""examples/reproduction.py recomputes docs/reproduction.md's tables and tests from the committed
campaign (docs/studies/): every study that has results prints its tables."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "examples" / "reproduction.py"
STUDIES = ["paper000-table1", "paper000-beta", "paper001", "paper001-pursuit", "paper001-best",
           "paper001-gaussian", "paper002", "paper003-cpu"]  # fmt: skip


@pytest.fixture(scope="module")
def script() -> ModuleType:
    pytest.importorskip("scipy")
    spec = importlib.util.spec_from_file_location("reproduction", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_study_has_a_command(script: ModuleType) -> None:
    assert sorted(script.COMMANDS) == sorted(STUDIES)


@pytest.mark.parametrize("study", STUDIES)
def test_each_committed_study_prints_its_tables(script: ModuleType, study: str, capsys) -> None:
    if not (ROOT / "docs" / "studies" / study / "results.csv").is_file():
        pytest.skip(f"docs/studies/{study} has no results yet")
    script.COMMANDS[study]()
    out = capsys.readouterr().out
    assert "| --- |" in out and "nan ±" not in out
