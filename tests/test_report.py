"""`vaetool report`: the page is complete, self-contained, and loads in a real browser."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # trains nothing, but ranks, prunes, classifies and draws (~20 s)

CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--virtual-time-budget=5000", "--dump-dom",
]  # fmt: skip


def chromium() -> str:
    """Path of headless Chromium; CI (VAETOOL_REQUIRE_BROWSER=1) fails instead of skipping."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        if os.environ.get("VAETOOL_REQUIRE_BROWSER"):
            pytest.fail("chromium is required for the report test (apt-get install chromium)")
        pytest.skip("chromium not installed")
    return found


def rendered_dom(page: Path, profile: Path) -> str:
    """The page's DOM after load, as headless Chromium ran it from file://."""
    command = [chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", page.as_uri()]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=True)
    return done.stdout


@pytest.fixture(scope="module")
def report_dir(trained_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from vaetool.cli import main

    out = tmp_path_factory.mktemp("report") / "site"
    assert main(["report", str(trained_run / "model.safetensors"), "--out", str(out),
                 "--device", "cpu"]) == 0  # fmt: skip
    return out


def test_report_writes_page_and_images(report_dir: Path) -> None:
    names = sorted(p.name for p in report_dir.iterdir())
    assert names == ["history.png", "index.html", "pulse.png", "reconstructions.png",
                     "traversals.png"]  # fmt: skip
    text = (report_dir / "index.html").read_text()
    assert "http://" not in text and "https://" not in text  # no CDN, nothing remote
    assert 'id="classify"' in text  # mnist5k has labels: the Table-2 section is there
    # the consistent estimate beside the paper's bound, with its cap ratio (MATH.md §3)
    assert "Σ_h I_h [nats] (≥ I(x; z): an upper bound)" in text
    assert "mixture: I(x; z) / log N" in text and "± s.e. (mixture)" in text


def test_headless_chromium_loads_every_image_and_all_rows(report_dir: Path, tmp_path: Path) -> None:
    dom = rendered_dom(report_dir / "index.html", tmp_path / "profile")
    loaded = re.search(r'data-images-loaded="(\d+)/(\d+)"', dom)
    assert loaded is not None, "the page's load handler did not run"
    assert loaded.group(1) == loaded.group(2) == "4"
    ranking = re.search(r'<table id="ranking">.*?<tbody>(.*?)</tbody>', dom, re.S)
    assert ranking is not None and ranking.group(1).count("<tr>") == 16  # H rows


def test_missing_image_is_detected_by_the_browser_check(report_dir: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    shutil.copytree(report_dir, broken)
    (broken / "traversals.png").unlink()
    dom = rendered_dom(broken / "index.html", tmp_path / "profile")
    assert 'data-images-loaded="3/4"' in dom


def test_report_refuses_to_overwrite(report_dir: Path, trained_run: Path, cli) -> None:
    before = (report_dir / "index.html").read_bytes()
    code, _, err = cli("report", str(trained_run / "model.safetensors"), "--out", str(report_dir))
    assert code == 1 and "--force" in err and err.count("\n") == 1
    assert (report_dir / "index.html").read_bytes() == before


def test_report_bad_output_path(trained_run: Path, cli, tmp_path: Path) -> None:
    target = tmp_path / "file.txt"
    target.write_text("x")
    code, _, err = cli("report", str(trained_run / "model.safetensors"), "--out", str(target))
    assert code == 1 and "is a file" in err
