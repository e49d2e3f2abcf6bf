"""The README's "Use" block works as written: every `vaetool` line of it, top to bottom, then its
Python snippet, in a fresh folder (issue 24: the block had lines that failed in order). Its train
line gives a model with influential factors (docs/training.md: the first release's β = 4 line
collapsed), and its two traverse lines write two files."""

from __future__ import annotations

import importlib.util
import json
import re
import shlex
import shutil
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"

# What the test runs in place of the README's sizes, so that the block takes minutes on a CPU:
# by a line's (command, the run folder it trains or the checkpoint it ranks), option -> value
# (added where the line leaves it at its default). runs/mnist keeps the README's own 20 epochs:
# the lines after it need its influential factors.
SMALLER = {
    ("train", "runs/dsprites"): {"--subset": "400", "--epochs": "1"},
    ("train", "runs/tcvae"): {"--subset": "400", "--epochs": "1"},
    ("train", "runs/vmi"): {"--epochs": "2"},
    ("train", "runs/mine"): {"--epochs": "2"},
    ("mi", "runs/vmi/model.safetensors"): {
        "--vmi-steps": "100",
        "--samples": "1000",
        "--vmi-samples": "1000",
    },
}


def use_block() -> tuple[list[list[str]], str]:
    """The README's "Use" section: its bash block's lines, split (comments dropped), in order,
    and its Python snippet."""
    section = README.read_text().split("\n## Use\n", 1)[1].split("\n## ", 1)[0]
    bash = re.search(r"```bash\n(.*?)```", section, re.S)
    python = re.search(r"```python\n(.*?)```", section, re.S)
    assert bash and python, "README's Use section lost its bash or python block"
    lines = [shlex.split(line, comments=True) for line in bash.group(1).splitlines()]
    return [line for line in lines if line], python.group(1)


def key(args: list[str]) -> tuple[str, str | None]:
    """(command, what it acts on) of a line without its leading ``vaetool``: a train line's
    --out (not --resume's folder), another command's first argument."""
    if args[0] == "train":
        return "train", args[args.index("--out") + 1] if "--out" in args else None
    words = 2 if args[0] == "mi" else 1
    return args[0], args[words] if len(args) > words else None


def smaller(args: list[str]) -> list[str]:
    """``args`` (a line without its leading ``vaetool``) with :data:`SMALLER`'s values."""
    args = list(args)
    for option, value in SMALLER.get(key(args), {}).items():
        if option in args:
            args[args.index(option) + 1] = value
        else:
            args += [option, value]
    return args


def test_the_block_is_vaetool_lines_and_sizes_map_onto_its_runs() -> None:
    lines, snippet = use_block()
    assert all(line[0] == "vaetool" for line in lines), [" ".join(x) for x in lines]
    keys = {key(line[1:]) for line in lines}
    assert set(SMALLER) <= keys  # a run renamed in the README would run at full size
    assert lines[0][:2] == ["vaetool", "train"] and "runs/mnist" in lines[0]
    assert "images =" in snippet


def _inputs(folder: Path) -> None:
    """What the block presumes the reader has: the repository's examples/, a disentangling-vae
    results folder and an .npz of their own images (array x)."""
    shutil.copytree(ROOT / "examples", folder / "examples")
    spec = importlib.util.spec_from_file_location("readme_import", ROOT / "tests/test_import.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.disvae_folder(folder / "results" / "VAE_dsprites", [1, 64, 64])
    images = np.random.default_rng(0).random((300, 16, 16)).astype(np.float32)
    np.savez(folder / "my_images.npz", x=images)


@pytest.mark.slow
def test_the_use_block_runs_top_to_bottom(
    tmp_path: Path, cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    _inputs(tmp_path)
    lines, snippet = use_block()
    for line in lines:
        args = smaller(line[1:])
        code, _, err = cli(*args)
        assert code == 0, f"README line `{' '.join(line)}` (run as {args}) exit {code}: {err}"
        if args[:1] == ["train"] and "runs/mnist" in args:
            assert "posterior collapse" not in err
            code, stdout, _ = cli("mi", "rank", "runs/mnist/model.safetensors", "-f", "json")
            summary = json.loads(stdout)["summary"]
            assert summary["n_influential"] >= 3, summary  # measured: 9-10 over three seeds
    for made in ("posterior.npz", "dsprites.safetensors", "runs/mnist/model.traverse.png",
                 "runs/mnist/factor73.png", "runs/mnist/factor73.gif",
                 "runs/mnist/report/index.html", "runs/mine/model.safetensors"):  # fmt: skip
        assert (tmp_path / made).is_file(), made
    namespace: dict[str, object] = {}
    exec(compile(snippet, str(README), "exec"), namespace)
    assert namespace["result"].summary()["sum_mi"] > 0  # type: ignore[attr-defined]
