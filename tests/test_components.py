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


def _optioned() -> list[tuple[str, str, str]]:
    """(family, component, option) for every option of every registered objective, likelihood,
    encoder and latent family (the families whose components take options)."""
    from dataclasses import fields

    return [(family, name, f.name) for family in ("objective", "likelihood", "encoder", "latent")
            for name in families()[family].names()
            for f in fields(families()[family].get(name).Options)]  # fmt: skip


@pytest.mark.parametrize("family,name,option", _optioned(), ids=lambda v: str(v))
def test_every_component_option_is_reachable(family: str, name: str, option: str) -> None:
    """Each option, given by name as a flag, `--option` or a config file gives it (one route:
    train_request), lands in the component's options, and each has a one-line doc."""
    from dataclasses import fields

    from vaetool.workflows.train import train_request

    options_type = families()[family].get(name).Options
    default = {f.name: f for f in fields(options_type)}[option]
    assert default.metadata.get("doc"), f"{name}.{option} has no doc"
    value = default.default if default.default is not None else 1.0
    request = train_request({family: name, option: value})
    held = (request.train.options if family == "objective"
            else getattr(request.model, f"{family}_options"))  # fmt: skip
    assert held[option] == value


def test_no_component_flag_without_an_option() -> None:
    """Every [model] and [objective] flag of `train` sets a model field or an option that a
    registered likelihood or objective declares; option names do not collide across families."""
    import inspect
    from dataclasses import fields

    from vaetool.cli.train import train
    from vaetool.config import ModelConfig
    from vaetool.workflows.train import MODEL_ALIASES

    parts = {name: str(p.default) for name, p in inspect.signature(train).parameters.items()}
    flags = {n for n, text in parts.items() if "[model]" in text or "[objective]" in text}
    by_family = {
        fam: {o for f, _, o in _optioned() if f == fam} for fam in ("objective", "likelihood")
    }
    assert not by_family["objective"] & by_family["likelihood"]
    model = {f.name for f in fields(ModelConfig)} | set(MODEL_ALIASES)
    assert flags - model - by_family["objective"] - by_family["likelihood"] - {"objective"} == set()
