"""The benchmarks cannot rot between the rare runs on a GPU: the GPU suite's dry pass runs every
figure at a toy size here (collecting the GPU tests without running them), and every benchmark
script imports (issue 25)."""

from __future__ import annotations

import importlib
import json
import math
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture(scope="module")
def suite():
    sys.path.insert(0, str(BENCHMARKS))
    try:
        yield importlib.import_module("gpu_suite")
    finally:
        sys.path.remove(str(BENCHMARKS))


@pytest.mark.parametrize("script", sorted(p.stem for p in BENCHMARKS.glob("*.py")))
def test_every_benchmark_script_imports(suite, script: str) -> None:
    module = importlib.import_module(script)
    assert module.__doc__, f"benchmarks/{script}.py says what it measures"


def test_the_gpu_suites_dry_pass_measures_every_figure(suite, tmp_path: Path) -> None:
    suite.main(["--dry", "--out", str(tmp_path), "--device", "cpu"])
    report = json.loads((tmp_path / "gpu_suite.json").read_text())
    assert report["dry"] is True and report["device"].startswith("CPU")
    figures = {f["name"]: f for f in report["figures"]}
    gpu = figures.pop("pytest -m gpu")
    assert gpu["value"] == 0.0 and "collected" in gpu["extra"]["summary"]  # collected, not run
    expected = {f"train, {m} {p}" for m in ("eager", "graph") for p in ("fp32", "bf16")}
    expected |= {"2 seeds stacked", "encoder pass fp32", "encoder pass bf16", "mixture estimator"}
    expected |= {f"paper 003 step, {o}, {e} encoder" for o in ("beta_vae", "factor_vae",
                 "beta_tcvae") for e in ("paper", "split")}  # fmt: skip
    assert expected <= set(figures)
    for name in expected:
        value = figures[name]["value"]
        assert value is not None and math.isfinite(value) and value > 0, name
    peer = figures["train, pythae 0.1.2 fp32"]["value"]
    assert peer is None or peer > 0  # measured where pythae is installed
    table = (tmp_path / "gpu_suite.md").read_text()
    assert table.count("\n| ") == len(report["figures"]) + 2  # header, rule, a row per figure
