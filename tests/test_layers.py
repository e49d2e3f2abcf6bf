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


# Layers, bottom to top (docs/design.md): a module may import modules of its own layer or
# below, never above. Prefixes name a package or a module; the longest matching prefix wins.
LAYERS = (
    ("vaetool.errors", "vaetool._version", "vaetool.progress"),
    ("vaetool.registry", "vaetool.options", "vaetool.config"),
    ("vaetool.device", "vaetool.distributed"),
    ("vaetool.store.atomic", "vaetool.store.locks"),
    ("vaetool.data",),
    ("vaetool.likelihoods",),
    ("vaetool.models",),
    ("vaetool.analysis",),
    ("vaetool.objectives",),
    ("vaetool.store",),
    ("vaetool.importers",),
    ("vaetool.training",),
    ("vaetool.report",),
    ("vaetool.workflows",),
    ("vaetool.cli", "vaetool.__main__", "vaetool"),
)


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _graph() -> dict[str, set[str]]:
    """Module -> the vaetool modules it imports at run time (``from pkg import sub`` names the
    submodule, not the package's __init__)."""
    names = {_module_name(p) for p in _modules("")}
    graph = {}
    for path in _modules(""):
        tree = ast.parse(path.read_text(), str(path))
        found = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                subs = {f"{node.module}.{a.name}" for a in node.names} & names
                found |= subs
                if len(subs) < len(node.names):
                    found.add(node.module)
        runtime = _imports(path)  # drops TYPE_CHECKING blocks
        found = {m for m in found if any(m == r or m.startswith(r + ".") for r in runtime)}
        found |= {r for r in runtime if r in names and not any(
            f.startswith(r + ".") for f in found)}  # fmt: skip
        graph[_module_name(path)] = (found & names) - {_module_name(path)}
    return graph


def _layer(module: str) -> int:
    best = max((len(prefix), i) for i, layer in enumerate(LAYERS) for prefix in layer
               if module == prefix or module.startswith(prefix + "."))  # fmt: skip
    return best[1]


def test_every_import_goes_down_or_sideways() -> None:
    graph = _graph()
    upward = [f"{m} (layer {_layer(m)}) imports {o} (layer {_layer(o)})"
              for m in graph for o in sorted(graph[m]) if _layer(o) > _layer(m)]  # fmt: skip
    assert upward == []


def test_the_import_graph_has_no_cycle() -> None:
    graph = _graph()
    state: dict[str, int] = {}  # 1 on the path, 2 done
    cycles: list[list[str]] = []

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                cycles.append([*path[path.index(nxt) :], nxt])
            elif nxt not in state:
                visit(nxt, [*path, nxt])
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    assert cycles == []


def test_modules_are_readable_in_one_sitting() -> None:
    """No module of vaetool exceeds 400 lines (issue 23)."""
    long = {str(p.relative_to(PACKAGE)): n for p in _modules("")
            if (n := len(p.read_text().splitlines())) > 400}  # fmt: skip
    assert long == {}
