"""`vaetool traverse` and the traversal core on real checkpoints (MATH.md §6)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from PIL import Image

from vaetool.analysis.traversal import sweep_change
from vaetool.analysis.traversal_plan import TraversalPlan
from vaetool.report.images import BLOCK_GAP_PX, LABEL_PX, SEPARATOR_PX
from vaetool.report.traversal_sheets import factor_sheet
from vaetool.workflows import RankRequest, decode_traversal, open_source, rank

CELL = 56  # 28 px MNIST at the default scale 2
GAP, SEP = BLOCK_GAP_PX, SEPARATOR_PX


@pytest.fixture()
def checkpoint(trained_run: Path, tmp_path: Path) -> Path:
    """A private copy of the session checkpoint (conftest: trained past the early posterior
    collapse, so factors carry information), so that default outputs land in tmp_path."""
    return Path(shutil.copy(trained_run / "model.safetensors", tmp_path / "model.safetensors"))


def _size(path: Path) -> tuple[int, int]:
    with Image.open(path) as image:
        return image.size


def _block_height(seeds: int, cell: int = CELL) -> int:
    return LABEL_PX + seeds * cell + (seeds - 1) * SEP


def test_lowest_information_factor_barely_changes_the_images(checkpoint: Path) -> None:
    source = open_source(checkpoint, "cpu")
    ranking = rank(RankRequest(checkpoint), None, source).ranking
    traversal = decode_traversal(source, TraversalPlan(top=16), ranking)
    change = sweep_change(traversal.images)  # (16,), most informative factor first
    assert traversal.factors[0] == int(ranking.order[0])
    assert traversal.factors[-1] == int(ranking.order[-1])
    assert change[-1] < 0.5 * change[0], change


@pytest.mark.slow  # 1.2 s
def test_default_sheet_shows_influential_factors_by_information_with_pulse_plot(
    checkpoint: Path, tmp_path: Path, cli
) -> None:
    source = open_source(checkpoint, "cpu")
    ranking = rank(RankRequest(checkpoint), None, source).ranking
    traversal = decode_traversal(source, TraversalPlan(), ranking)
    expected = [int(h) for h in ranking.order if ranking.mi[h] > 0.5]
    assert list(traversal.factors) == expected and expected
    assert list(traversal.mi) == sorted(traversal.mi, reverse=True)
    out = tmp_path / "sheet.png"
    code, stdout, _ = cli("traverse", str(checkpoint), "--device", "cpu", "--out", str(out))
    assert code == 0 and stdout.strip() == str(out)
    blocks_alone = LABEL_PX + GAP + len(expected) * (_block_height(8) + GAP) - GAP
    width, height = _size(out)
    assert (width, height) == (10 * CELL + 9 * SEP, factor_sheet(traversal, pulse=ranking).shape[0])
    assert height > blocks_alone + 100  # the pulse plot is on top


def test_factor_sheet_size_and_default_output_name(checkpoint: Path, cli) -> None:
    args = ["--factor", "3", "--factor", "0", "--steps", "5", "--seeds", "2"]
    code, stdout, _ = cli("traverse", str(checkpoint), "--device", "cpu", *args)
    out = checkpoint.with_name("model.traverse.png")
    assert code == 0 and stdout.strip() == str(out)
    assert _size(out) == (5 * CELL + 4 * SEP, LABEL_PX + GAP + 2 * _block_height(2) + GAP)
    assert sorted(os.listdir(checkpoint.parent)) == ["model.safetensors", "model.traverse.png"]


def test_gif_has_one_frame_per_step(checkpoint: Path, cli) -> None:
    code, stdout, _ = cli("traverse", str(checkpoint), "--device", "cpu", "--top", "2",
                          "--steps", "7", "--seeds", "3", "--gif", "--scale", "1")  # fmt: skip
    gif = checkpoint.with_name("model.traverse.gif")
    assert code == 0 and stdout.split() == [str(gif.with_suffix(".png")), str(gif)]
    with Image.open(gif) as image:
        assert image.n_frames == 7
        assert image.size == (
            3 * 28 + 2 * SEP,
            LABEL_PX + GAP + 2 * (_block_height(1, 28) + GAP) - GAP,
        )


def test_pair_grid_size(checkpoint: Path, cli) -> None:
    args = [
        "--pair",
        "0",
        "1",
        "--steps",
        "4",
        "--seeds",
        "2",
        "--scale",
        "1",
        "--range",
        "-2",
        "2",
    ]
    code, stdout, _ = cli("traverse", str(checkpoint), "--device", "cpu", *args)
    out = checkpoint.with_name("model.pair-0-1.png")
    assert code == 0 and stdout.strip() == str(out)
    grid = 4 * 28 + 3 * SEP
    assert _size(out) == (2 * grid + GAP, LABEL_PX + GAP + LABEL_PX + grid)


def test_relative_traversal_is_centred_on_each_seed(trained_run: Path) -> None:
    source = open_source(trained_run / "model.safetensors", "cpu")
    ranking = rank(RankRequest(source.path), None, source).ranking
    plan = TraversalPlan(factors=(2, 5), seed_indices=(4, 0, 9), relative=True, steps=5)
    traversal = decode_traversal(source, plan, ranking)
    assert traversal.seed_rows == (4, 0, 9) and traversal.images.shape == (2, 3, 5, 1, 28, 28)
    centre = traversal.values.mean(dim=-1)  # (F, S)
    assert (centre - traversal.seed_mu[:, [2, 5]].T).abs().max() < 1e-5
    assert float(traversal.images.min()) >= 0 and float(traversal.images.max()) <= 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--factor", "16"], "from 0 to 15"),
        (["--factor", "-1"], "from 0 to 15"),
        (["--steps", "0"], "--steps 0"),
        (["--steps", "1"], "expected 2 to 100"),
        (["--steps", "101"], "expected 2 to 100"),
        (["--range", "-inf", "inf"], "finite"),
        (["--range", "3", "-3"], "LO < HI"),
        (["--range", "1", "1"], "LO < HI"),
        (["--seed-index", "0,1000"], "expected indices from 0 to 999"),
        (["--seed-index", "a"], "comma-separated"),
        (["--seeds", "0"], "--seeds 0"),
        (["--pair", "2", "2"], "two different"),
        (["--pair", "0", "16"], "from 0 to 15"),
        (["--min-mi", "100"], "--min-mi 100: no factor has I_h above it (the largest is"),
        (["--pair", "0", "1", "--top", "2"], "--pair"),
        (["--factor", "1", "--top", "2"], "give one"),
        (["--seeds", "2", "--seed-index", "1"], "--seed-index"),
        (["--pair", "0", "1", "--gif"], "--gif"),
        (["--top", "17"], "--top 17"),
        (["--scale", "0"], "--scale 0"),
    ],
)
def test_bad_input_is_one_line_and_writes_nothing(
    checkpoint: Path, tmp_path: Path, fails, args: list[str], message: str
) -> None:
    err = fails("traverse", str(checkpoint), "--device", "cpu", *args)
    assert message in err
    assert os.listdir(tmp_path) == ["model.safetensors"]


def test_bad_output_paths(checkpoint: Path, tmp_path: Path, fails) -> None:
    run = [str(checkpoint), "--device", "cpu", "--top", "1", "--out"]
    assert "does not exist" in fails("traverse", *run, str(tmp_path / "no" / "t.png"))
    assert ".png" in fails("traverse", *run, str(tmp_path / "t.jpg"))
    assert "is a folder" in fails("traverse", *run, str(tmp_path))
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert "not a folder" in fails("traverse", *run, str(blocker / "t.png"))
    if os.geteuid() != 0:  # root writes anywhere
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        assert "not writable" in fails("traverse", *run, str(locked / "t.png"))
        locked.chmod(0o700)
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == [
        "file",
        "model.safetensors",
    ]


def test_existing_output_needs_force_and_writes_atomically(checkpoint: Path, cli, fails) -> None:
    out = checkpoint.with_name("model.traverse.png")
    out.write_bytes(b"keep")
    run = ["traverse", str(checkpoint), "--device", "cpu", "--top", "1", "--steps", "3"]
    assert "--force" in fails(*run, "--gif")
    assert out.read_bytes() == b"keep" and not out.with_suffix(".gif").exists()
    code, _, _ = cli(*run, "--force", "--gif")
    assert code == 0 and out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    names = sorted(os.listdir(checkpoint.parent))
    assert names == ["model.safetensors", "model.traverse.gif", "model.traverse.png"]  # no temp
