"""The registries are the only source of component names (issue 23): `vaetool components` lists
every family's, and no command's help repeats them."""

from __future__ import annotations

import pytest

from vaetool.workflows.components import components, families

HELPS = [("train",), ("metrics",), ("import",), ("prune",), ("mi", "rank")]


def test_every_registry_is_listed_with_its_names(cli) -> None:
    code, out, _ = cli("components")
    assert code == 0
    for family, registry in families().items():
        for name in registry.names():
            assert any(line.split()[:2] == [family, name] for line in out.splitlines()), name
    listed = components("objective")
    assert [c.name for c in listed] == families()["objective"].names()
    assert all(c.doc for c in listed)  # every objective says what it is


def test_an_unknown_family_is_one_line(fails) -> None:
    assert "--family 'objectives': expected one of dataset" in fails("components", "objectives")


@pytest.mark.parametrize("command", HELPS)
def test_help_copies_no_list_of_names(cli, command: tuple[str, ...]) -> None:
    """Help points at `vaetool components` instead of copying a registry's list of names (an
    option may still name the one component it belongs to)."""
    code, out, _ = cli(*command, "--help")
    assert code == 0
    words = set(out.replace(",", " ").replace(".", " ").replace(":", " ").split())
    for family, registry in families().items():
        named = words & set(registry.names())
        assert len(named) < 3, (family, named)
