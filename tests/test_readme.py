"""The README's walkthrough works as written: its train line gives a model with influential
factors, and its traverse line draws them (docs/training.md: the first release's β = 4 line
collapsed)."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def readme_command(name: str) -> list[str]:
    """The README's first `vaetool NAME …` line in its "Use" block, split, comment dropped."""
    for line in README.read_text().splitlines():
        if re.match(rf"vaetool {name} ", line):
            return shlex.split(line.split("#")[0])[1:]
    raise AssertionError(f"README has no `vaetool {name}` line")


@pytest.mark.slow
def test_readme_train_line_gives_influential_factors(tmp_path: Path, cli) -> None:
    args = readme_command("train")
    assert args[args.index("--out") + 1] == "runs/mnist"
    out = tmp_path / "runs" / "mnist"
    args[args.index("--out") + 1] = str(out)
    code, _, err = cli(*args, "--device", "cpu")
    assert code == 0, err
    assert "posterior collapse" not in err
    code, stdout, _ = cli("mi", "rank", str(out / "model.safetensors"), "-f", "json")
    summary = json.loads(stdout)["summary"]
    assert summary["n_influential"] >= 3, summary  # measured: 9-10 over three seeds
    sheet = readme_command("traverse")  # the sheet of influential factors
    assert sheet == ["traverse", "runs/mnist/model.safetensors"]
    code, stdout, err = cli("traverse", str(out / "model.safetensors"), "--device", "cpu")
    assert code == 0, err
    assert Path(stdout.strip()).is_file()
