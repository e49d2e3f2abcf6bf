"""The layering of docs/design.md, checked on the source: imports go downward only.

Module-level and function-level imports both count (a lazy import is still a dependency);
imports under ``if TYPE_CHECKING:`` do not (they exist for type checkers only).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "vaetool"


def _imports(path: Path) -> set[str]:
    """Top-level names of every module ``path`` imports at run time."""
    tree = ast.parse(path.read_text(), str(path))
    skipped = {
        id(node)
        for block in ast.walk(tree)
        if isinstance(block, ast.If) and "TYPE_CHECKING" in ast.unparse(block.test)
        for stmt in block.body
        for node in ast.walk(stmt)
    }
    names = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def _modules(folder: str) -> list[Path]:
    return sorted((PACKAGE / folder).rglob("*.py")) if folder else sorted(PACKAGE.rglob("*.py"))


def _offenders(files: list[Path], banned: tuple[str, ...]) -> list[str]:
    return [
        f"{path.relative_to(PACKAGE)} imports {name}"
        for path in files
        for name in sorted(_imports(path))
        if any(name == b or name.startswith(b + ".") for b in banned)
    ]


def test_analysis_is_pure_tensors() -> None:
    """No checkpoint, data-set, file or reporting imports in analysis/ (a DeviceFeed of batches
    is a tensor stream, allowed)."""
    banned = ("vaetool.store.checkpoint", "vaetool.store.sidecar", "vaetool.store.posterior_file",
              "vaetool.workflows", "vaetool.report", "vaetool.cli", "vaetool.data.idx",
              "vaetool.data.npz", "vaetool.data.folder", "vaetool.data.dsprites",
              "vaetool.data.mnist5k", "pandas", "matplotlib", "typer", "rich", "PIL")  # fmt: skip
    assert _offenders(_modules("analysis"), banned) == []
    loaders = [p for p in _modules("analysis") if "load_dataset" in p.read_text()]
    assert loaders == []


@pytest.mark.parametrize(
    ("library", "home"),
    [("pandas", "report"), ("matplotlib", "report"), ("typer", "cli"), ("rich", "cli")],
)
def test_library_lives_in_one_layer(library: str, home: str) -> None:
    elsewhere = [p for p in _modules("") if p.relative_to(PACKAGE).parts[0] != home]
    assert _offenders(elsewhere, (library,)) == []


def test_nothing_imports_the_cli_and_the_core_does_not_import_workflows() -> None:
    outside_cli = [p for p in _modules("") if p.relative_to(PACKAGE).parts[0] != "cli"]
    outside_cli = [p for p in outside_cli if p.name != "__main__.py"]  # python -m vaetool
    assert _offenders(outside_cli, ("vaetool.cli",)) == []
    core = [p for p in outside_cli if p.relative_to(PACKAGE).parts[0] not in ("workflows",)]
    core = [p for p in core if p.name != "__init__.py" or p.parent != PACKAGE]
    assert _offenders(core, ("vaetool.workflows",)) == []


def test_cli_calls_workflows_not_the_core_controllers() -> None:
    """CLI modules parse and render: they may import workflows, report (rendering), errors,
    config (option types) and registries' names, never data loading or estimators' internals."""
    banned = ("vaetool.data", "vaetool.store.checkpoint", "vaetool.training.loop",
              "vaetool.store.sidecar", "vaetool.store.posterior_file", "vaetool.analysis.encode",
              "vaetool.analysis.qstar", "vaetool.analysis.mixture", "vaetool.models")  # fmt: skip
    assert _offenders(_modules("cli"), banned) == []
