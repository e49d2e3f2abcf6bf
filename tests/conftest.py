"""Shared fixtures: a real checkpoint trained once per session on the embedded MNIST digits."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from vaetool.cli import main


@pytest.fixture(scope="session", autouse=True)
def image_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The suite's own render cache folder (VAETOOL_CACHE, inherited by subprocesses), so tests
    never read or fill the user's ~/.cache/vaetool."""
    folder = tmp_path_factory.mktemp("cache")
    os.environ["VAETOOL_CACHE"] = str(folder)
    return folder


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run folder holding model.safetensors + history.csv: mnist5k, H = 16, CPU.

    3 epochs at batch 25 (360 Adam steps): past the early posterior collapse, so the latents
    carry real information (a linear probe reaches ~0.8 accuracy) in a few seconds.
    """
    out = tmp_path_factory.mktemp("run") / "r"
    code = main(["train", "--data", "mnist5k", "--epochs", "3", "--batch-size", "25",
                 "--latents", "16", "--device", "cpu", "--out", str(out)])  # fmt: skip
    assert code == 0
    return out


@pytest.fixture()
def cli(capsys: pytest.CaptureFixture[str]):
    """Run the vaetool CLI in-process: returns (exit code, stdout, stderr)."""

    def invoke(*args: str) -> tuple[int, str, str]:
        code = main(list(args))
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return invoke


def assert_one_line_error(code: int, err: str) -> str:
    """The project's rule for bad input: exit 1, one line on stderr starting "error: ", no
    traceback. Returns that line."""
    assert code == 1, f"exit {code}: {err}"
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert "Traceback" not in err
    return err


@pytest.fixture()
def fails(cli):
    """Run the CLI expecting one clear error line: fails(*args) -> the line (stderr)."""

    def invoke(*args: str) -> str:
        code, _, err = cli(*args)
        return assert_one_line_error(code, err)

    return invoke
