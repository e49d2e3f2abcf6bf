"""docs/library.md: the Python pipeline shown there is examples/library.py, and it runs."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_docs_show_the_example_verbatim() -> None:
    doc = (ROOT / "docs" / "library.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", doc, flags=re.S)
    example = (ROOT / "examples" / "library.py").read_text()
    assert blocks and blocks[-1] == example[example.index("import sys") :]


@pytest.mark.slow
def test_the_example_runs(tmp_path: Path) -> None:
    out = tmp_path / "run"
    done = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "library.py"), str(out)],
        capture_output=True, text=True, timeout=600, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Σ_h I_h =" in done.stdout and "upper bound on I(x; z)" in done.stdout
    for name in ("model.safetensors", "history.csv", "fig4.png", "model.traverse.png",
                 "model-report/index.html"):  # fmt: skip
        assert (out / name).is_file(), name
