"""The core names settings by their fields, never by command-line flags; the CLI shows each
field as its flag through one table (vaetool.cli._fields) (issue 23)."""

from __future__ import annotations

import ast
import re
import warnings
from pathlib import Path

import pytest

from vaetool.cli._fields import flag, shown
from vaetool.config import ModelConfig
from vaetool.errors import ConfigError, VaetoolWarning, field, fields_in, marked
from vaetool.options import comma_ints, comma_list

PACKAGE = Path(__file__).resolve().parents[1] / "vaetool"
FLAG = re.compile(r"(?<![\w-])--[a-z]")


def _messages(path: Path) -> list[tuple[int, str]]:
    """String constants inside ``raise …`` and ``warnings.warn(…)`` of one module."""
    tree = ast.parse(path.read_text(), str(path))
    found = []
    for node in ast.walk(tree):
        call = isinstance(node, ast.Call) and ast.unparse(node.func).endswith("warnings.warn")
        if isinstance(node, ast.Raise) or call:
            found += [(c.lineno, c.value) for c in ast.walk(node)
                      if isinstance(c, ast.Constant) and isinstance(c.value, str)]  # fmt: skip
    return found


def test_no_error_or_warning_outside_the_cli_names_a_flag() -> None:
    core = [p for p in sorted(PACKAGE.rglob("*.py")) if p.relative_to(PACKAGE).parts[0] != "cli"]
    offenders = [f"{p.relative_to(PACKAGE)}:{line}: {text!r}" for p in core
                 for line, text in _messages(p) if FLAG.search(text)]  # fmt: skip
    assert offenders == []
    assert sum(len(_messages(p)) for p in core) > 200  # the scan sees the messages


def test_library_messages_name_fields_and_the_cli_their_flags() -> None:
    error = ConfigError(
        f"{field('categories')} 5000: expected K from 2 to 1000; see {field('top')}"
    )
    assert str(error) == "categories 5000: expected K from 2 to 1000; see top"
    assert shown(marked(error)) == "--latent-categorical 5000: expected K from 2 to 1000; see --top"
    assert fields_in(marked(error)) == ["categories", "top"]
    assert flag("noise_warmup") == "--noise-warmup" and flag("spec") == "--data"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        warnings.warn(f"use more points ({field('samples')})", VaetoolWarning, stacklevel=1)
    assert str(caught[0].message) == "use more points (samples)"


def test_a_config_error_names_its_field(fails) -> None:
    try:
        ModelConfig("mlp", (1, 8, 8), categories=5000)
    except ConfigError as error:
        assert str(error).startswith("categories 5000: expected")
    else:  # pragma: no cover - the config must refuse it
        raise AssertionError("categories 5000 was accepted")
    line = fails("train", "--latent-categorical", "5000", "--out", "x")
    assert line.startswith("error: --latent-categorical 5000")


@pytest.mark.parametrize(
    ("argv", "start"),
    [
        (
            ["mi", "rank", "{ckpt}", "--vmi-subset", "0,x"],
            "error: --vmi-subset '0,x': expected factor",
        ),
        (["mi", "rank", "{ckpt}", "--estimator", "qstar,,mixture"], "error: --estimator 'qstar,,"),
        (["prune", "{ckpt}", "--top", "10%,,5"], "error: --top '10%,,5': expected percents"),
        (["traverse", "{ckpt}", "--seed-index", "1,two"], "error: --seed-index '1,two': expected"),
        (
            ["train", "--seeds", "0,,1", "--out", "{tmp}/r"],
            "error: --seeds '0,,1': expected distinct",
        ),
    ],
)
def test_every_comma_list_is_parsed_one_way(fails, trained_run, tmp_path, argv, start) -> None:
    """Comma lists (options.comma_list / comma_ints): an empty or non-integer item is one error
    line naming the flag, whichever command reads the list."""
    ckpt = str(trained_run / "model.safetensors")
    line = fails(*[a.format(ckpt=ckpt, tmp=tmp_path) for a in argv])
    assert line.startswith(start), line
    assert not (tmp_path / "r").exists()


def test_comma_lists_strip_items_and_refuse_empty_ones() -> None:
    assert comma_list("group", " objective, encoder ", "names") == ("objective", "encoder")
    assert comma_ints("seeds", "0, 5,9", "ints") == (0, 5, 9)
    for text in ("", " ", "a,", ",a", "a,,b"):
        with pytest.raises(ConfigError, match="expected names"):
            comma_list("group", text, "names")
    with pytest.raises(ConfigError, match=r"^seeds '1\.5': expected ints$"):
        comma_ints("seeds", "1.5", "ints")
